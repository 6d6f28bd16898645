"""Set cover: greedy against its NumPy twin, exact against brute force, the reductions keep
the optimum, the LP bound is a bound, and run-time outcomes come back in the status."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from palmopt import _kernels, _reference
from palmopt.prune import covering_matrix, lp_lower_bound, minimal_rows, set_cover


@st.composite
def coverable(draw, max_rows=9, max_cols=7):
    """A 0/1 matrix in which every row has a column (built from booleans, so it shrinks)."""
    n, k = draw(st.integers(1, max_rows)), draw(st.integers(1, max_cols))
    rows = draw(st.lists(st.lists(st.booleans(), min_size=k, max_size=k), min_size=n, max_size=n))
    C = np.array(rows, dtype=np.uint8)
    C[~C.any(axis=1), draw(st.integers(0, k - 1))] = 1
    return C


def brute_force_minimum(C):
    k = C.shape[1]
    for size in range(1, k + 1):
        for cols in itertools.combinations(range(k), size):
            if C[:, list(cols)].any(axis=1).all():
                return size
    raise AssertionError("no cover")


@settings(max_examples=80)
@given(C=coverable())
def test_greedy_kernel_is_its_numpy_twin(C):
    np.testing.assert_array_equal(_kernels.greedy_cover(C), _reference.greedy_cover(C))


@settings(max_examples=80)
@given(C=coverable())
def test_exact_is_the_brute_force_minimum_and_greedy_covers(C):
    exact, greedy = set_cover(C, "exact"), set_cover(C, "greedy")
    for cover in (exact, greedy):
        assert C[:, cover.columns].any(axis=1).all() and cover.status == "success"
    assert exact.optimal and len(exact) == brute_force_minimum(C) <= len(greedy)
    assert lp_lower_bound(C) <= len(exact)
    assert np.array_equal(set_cover(C, "none").columns, np.arange(C.shape[1]))


@settings(max_examples=80)
@given(C=coverable())
def test_minimal_rows_keep_the_feasible_covers(C):
    M = minimal_rows(C)
    assert len(M) <= len(C) and len(np.unique(M, axis=0)) == len(M)
    for cols in itertools.product([False, True], repeat=C.shape[1]):
        cols = np.array(cols)
        assert C[:, cols].any(axis=1).all() == M[:, cols].any(axis=1).all()


def test_time_limit_is_a_status_with_the_greedy_cover():
    # a large random cover: HiGHS cannot prove optimality in a microsecond
    rng = np.random.default_rng(0)
    C = (rng.random((400, 60)) < 0.08).astype(np.uint8)
    C[~C.any(axis=1), 0] = 1
    cover = set_cover(C, "exact", time_limit=1e-6)
    assert cover.status == "time-limit" and not cover.optimal
    np.testing.assert_array_equal(cover.columns, set_cover(C, "greedy").columns)
    assert "status='time-limit'" in repr(cover)


def test_covering_matrix_uses_the_oracle_value_or_the_bound():
    lower = np.array([[1.0, 0.0], [0.5, 0.5]])
    V = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.6]])
    C = covering_matrix(lower, np.array([0, 2]), V, 0.0, 0.05)
    # point 0: OPT = l·V_0 = 1, only V_0 reaches 0.95; point 1: OPT = 0.6, V_2 alone reaches 0.55
    np.testing.assert_array_equal(C, [[1, 0, 0], [0, 0, 1]])
    C = covering_matrix(lower, np.array([0, -1]), V, 0.0, 0.05, opt_bound=np.array([np.nan, 0.55]))
    np.testing.assert_array_equal(C[1], [1, 1, 1])  # bound 0.55 - 0.05 = 0.5 <= l·V_j for each


@settings(max_examples=30)
@given(data=st.data(), eps2=st.floats(0.0, 0.5), delta2=st.floats(0.0, 0.2), chunk=st.integers(1, 5))
def test_covering_matrix_with_a_scalarization_score_is_the_rule_row_by_row(data, eps2, delta2, chunk):
    """``score=``: C[g, j] = [h(l_g, V_j) >= (1-eps2) h(l_g, V_own) - delta2], in chunks, by a loop."""
    from palmopt.scalarizations import Tchebycheff

    from .strategies import policy_values

    V = data.draw(policy_values(3, 1, 6))
    L = data.draw(policy_values(3, 1, 9))  # unnormalised corners, zeros included
    own = np.array(data.draw(st.lists(st.integers(0, len(V) - 1), min_size=len(L), max_size=len(L))))
    g = Tchebycheff()
    C = covering_matrix(L, own, V, eps2, delta2, chunk=chunk, score=g.rounding_score)
    for i, l in enumerate(L):
        vals = [min([l[c] * v[c] for c in range(3) if l[c] > 0], default=0.0) for v in V]
        need = (1 - eps2) * vals[own[i]] - delta2
        assert C[i].tolist() == [int(x >= need) for x in vals]
        assert C[i, own[i]] == 1


@pytest.mark.parametrize(
    "C, method, match",
    [
        (np.array([[1, 0], [0, 0]]), "greedy", "row 1 of the covering matrix is covered by no column"),
        (np.eye(2), "smallest", "`prune` must be one of"),
    ],
)
def test_bad_input(C, method, match):
    with pytest.raises(ValueError, match=match):
        set_cover(C, method)
