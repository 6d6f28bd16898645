import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import palmopt
from palmopt import minimum
from palmopt.minimum import MinimumPortfolio, minimum_portfolio

from .strategies import policy_values

TOL = 1e-9


def arrangement_vertices(T):
    """Every vertex of the arrangement of the hyperplanes ``w·t_a = w·t_b`` and ``w_i = 0`` in the
    simplex (d = 2 or 3).  On each cell every ``w·t`` keeps its rank, so ``(1-eps) OPT - delta -
    LB`` is linear there and its maximum over the simplex is attained at one of these points."""
    d = T.shape[1]
    normals = [T[a] - T[b] for a, b in itertools.combinations(range(len(T)), 2)] + list(np.eye(d))
    points = []
    for combo in itertools.combinations(normals, d - 1):
        A = np.vstack([*combo, np.ones(d)])
        if abs(np.linalg.det(A)) < 1e-12:
            continue
        w = np.linalg.solve(A, np.r_[np.zeros(d - 1), 1.0])
        if w.min() >= -1e-12:
            w = np.clip(w, 0.0, None)
            points.append(w / w.sum())
    return np.array(points)


def brute_force_minimum(T, eps, delta):
    """The size of the smallest subset of rows of ``T`` that serves every weight of the simplex."""
    W = arrangement_vertices(T)
    S = W @ T.T
    need = (1 - eps) * S.max(axis=1) - delta
    for size in range(1, len(T) + 1):
        for subset in itertools.combinations(range(len(T)), size):
            if (need - S[:, subset].max(axis=1)).max() <= TOL:
                return size
    raise AssertionError("the whole front always serves everyone")


def violation(U, T, eps, delta):
    W = arrangement_vertices(T)
    return ((1 - eps) * (W @ T.T).max(axis=1) - delta - (W @ U.T).max(axis=1)).max()


@settings(max_examples=30)
@given(
    d=st.integers(2, 3),
    eps=st.floats(0.0, 0.3),
    delta=st.floats(0.0, 0.2),
    grid_eps=st.sampled_from([None, 0.05, 0.3]),
    data=st.data(),
)
def test_matches_brute_force_over_all_subsets(d, eps, delta, grid_eps, data):
    T = data.draw(policy_values(d, 1, 10 if d == 3 else 12))
    m = minimum_portfolio(T, eps, delta, grid_eps=grid_eps)
    assert m.status == "success" and m.exact
    assert m.lower_bound == m.size == m.upper_bound == brute_force_minimum(T, eps, delta)
    assert m.certificate.holds and m.certificate.status == "success"
    np.testing.assert_array_equal(m.values, T[m.members])
    assert np.all(np.diff(m.members) > 0)
    # the members really serve everyone (independent of the certificate's LPs)
    assert violation(m.values, T, eps, delta) <= TOL
    # and palmopt.certify agrees
    assert palmopt.certify(m.values, T, eps, delta).holds


def spike_front():
    """Two corners with a kink at w1 = 0.7/1.7 = 0.41176..., and a spike there that beats them
    by 1e-7 beyond delta only on a window of width about 2.4e-7 -- between any two points of
    the default lattice (spacing 1/49999) or of a coarse one."""
    delta = 0.01
    w1 = 0.7 / 1.7
    x = w1 + delta + 1e-7
    return np.array([[1.0, 0.0], [0.0, 0.7], [x, x]]), delta, np.array([w1, 1 - w1])


@pytest.mark.parametrize("grid_eps", [None, 0.1])
def test_repair_loop_finds_the_narrow_spike(grid_eps):
    T, delta, w_star = spike_front()
    W = palmopt.cover(2, grid_eps or palmopt.lattice.covering_radius(2, palmopt.lattice.finest(2, minimum.DEFAULT_GRID_POINTS)), kind="additive").points
    corners_only = (1 - 0.0) * (W @ T.T).max(axis=1) - delta - (W @ T[:2].T).max(axis=1)
    assert corners_only.max() <= TOL  # the lattice misses the spike: the corners cover every row
    m = minimum_portfolio(T, 0.0, delta, grid_eps=grid_eps)
    assert m.status == "success" and m.exact and m.size == 3 and m.rounds == 2
    assert m.members.tolist() == [0, 1, 2]
    assert len(m.repair_weights) >= 1
    assert np.abs(m.repair_weights - w_star).sum(axis=1).min() < 1e-6  # the repair row is at the spike


def test_certificate_repairs_what_the_lp_step_misses(monkeypatch):
    # without the cheap LP separation, the certificate's worst weight must do the repair
    monkeypatch.setattr(minimum, "_lp_witnesses", lambda U, T, W, *args: np.empty((0, T.shape[1])))
    T, delta, w_star = spike_front()
    m = minimum_portfolio(T, 0.0, delta)
    assert m.status == "success" and m.size == 3 and m.rounds == 2
    assert np.abs(m.repair_weights - w_star).sum(axis=1).min() < 1e-6


def test_max_rounds_reports_bounds_without_a_certificate():
    T, delta, _ = spike_front()
    m = minimum_portfolio(T, 0.0, delta, max_rounds=1)
    assert m.status == "budget-exhausted" and not m.exact
    assert m.size == m.lower_bound == 2 and m.upper_bound == 3
    assert not m.certificate.holds and m.certificate.violation > 0
    assert "status='budget-exhausted'" in repr(m) and "exact=False" in repr(m)


def test_time_limit_reports_bounds_and_a_greedy_cover():
    from oracles.tabular.instances import many_policies

    T = many_policies(3, n_arms=60, rng=0).reference_front()
    full = minimum_portfolio(T, 0.05, 0.02)
    m = minimum_portfolio(T, 0.05, 0.02, time_limit=1e-9)
    assert m.status == "time-limit" and m.exact == (m.lower_bound == m.upper_bound)
    # the repaired greedy cover is certified: an upper bound; the LP dual bound a lower one
    assert m.certificate.holds and m.upper_bound == m.size
    assert 1 <= m.lower_bound <= full.size <= m.size
    # with one round only, the greedy cover of the lattice rows is returned as it is
    m1 = minimum_portfolio(T, 0.05, 0.02, time_limit=1e-9, max_rounds=1)
    assert m1.status == "time-limit" and m1.rounds == 1
    assert m1.lower_bound <= full.size <= m1.upper_bound
    assert m1.upper_bound == (m1.size if m1.certificate.holds else m1.n_candidates)


def test_a_generous_time_limit_changes_nothing():
    T, delta, _ = spike_front()
    m = minimum_portfolio(T, 0.0, delta, time_limit=60)
    assert m.status == "success" and m.size == 3 and m.exact


def test_duplicates_and_dominated_points_index_the_front_as_given():
    T = np.array([[0.2, 0.2], [1.0, 0.0], [0.9, 0.5], [0.5, 0.9], [0.9, 0.5], [0.0, 1.0], [0.5, 0.8]])
    m = minimum_portfolio(T, 0.1, 0.05)
    assert m.n_candidates == 4  # (0.2, 0.2) and (0.5, 0.8) are dominated, (0.9, 0.5) repeated
    assert m.members.tolist() == [2, 3]  # first occurrences
    np.testing.assert_array_equal(m.values, T[[2, 3]])
    assert m.size == brute_force_minimum(T, 0.1, 0.05)


def test_exact_oracle_reference_and_tabular_brute_force():
    from oracles.tabular.instances import many_policies

    mdp = many_policies(3, n_arms=9, rng=4)
    T = mdp.reference_front()
    for eps, delta in [(0.05, 0.0), (0.0, 0.05), (0.1, 0.02)]:
        m = minimum_portfolio(mdp, eps, delta)
        assert isinstance(m, MinimumPortfolio) and m.status == "success" and m.exact
        assert m.size == brute_force_minimum(T, eps, delta)
        np.testing.assert_array_equal(m.values, T[m.members])
        # Portfolio-like: certify and the metrics accept it
        assert palmopt.certify(m, T, eps, delta).holds
        assert len(m) == m.size and m.d == 3


def test_zero_tolerance_keeps_the_extreme_points_and_d1():
    T = np.array([[1.0, 0.0], [0.75, 0.75], [0.5, 1.0], [0.25, 1.0], [0.6, 0.6]])
    m = minimum_portfolio(T, 0.0, 0.0)
    assert m.members.tolist() == [0, 1, 2] and m.exact
    m1 = minimum_portfolio([[0.3], [0.5], [0.5]], 0.1, 0.0)
    assert m1.members.tolist() == [1] and m1.status == "success"


def test_larger_front_is_certified_in_few_rounds():
    from oracles.tabular.instances import many_policies

    T = many_policies(3, n_arms=60, rng=0).reference_front()
    m = minimum_portfolio(T, 0.05, 0.02)
    assert m.status == "success" and m.exact and m.rounds <= 5
    assert m.certificate.holds and m.certificate.status == "success"
    # no smaller subset covers even the lattice rows: the greedy cover of them is never smaller
    W = palmopt.cover(3, 0.02, kind="additive").points
    S = W @ T.T
    C = (S >= (1 - 0.05) * S.max(axis=1, keepdims=True) - 0.02 - TOL).astype(np.uint8)
    assert len(palmopt.prune.set_cover(C, "greedy")) >= m.size


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(reference="front", eps=0.1, delta=0.1), TypeError, "`reference`"),
        (dict(reference=[[1.5, 0.0]], eps=0.1, delta=0.1), ValueError, r"`reference` must lie in \[0, 1\]"),
        (dict(reference=[[-0.1, 0.0]], eps=0.1, delta=0.1), ValueError, "`reference`"),
        (dict(reference=[[np.nan, 0.0]], eps=0.1, delta=0.1), ValueError, "`reference` must be finite"),
        (dict(reference=np.eye(2), eps=1.5, delta=0.1), ValueError, "`eps`"),
        (dict(reference=np.eye(2), eps="0.1", delta=0.1), TypeError, "`eps`"),
        (dict(reference=np.eye(2), eps=0.1, delta=-0.1), ValueError, "`delta`"),
        (dict(reference=np.eye(2), eps=0.1, delta=0.1, max_rounds=0), ValueError, "`max_rounds`"),
        (dict(reference=np.eye(2), eps=0.1, delta=0.1, grid_eps=0.0), ValueError, "`grid_eps`"),
        (dict(reference=np.eye(3), eps=0.1, delta=0.1, grid_eps=1e-4), ValueError, "`grid_eps`"),
        (dict(reference=np.eye(2), eps=0.1, delta=0.1, time_limit=0), ValueError, "`time_limit`"),
        (dict(reference=np.eye(2), eps=0.1, delta=0.1, time_limit="1"), TypeError, "`time_limit`"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        minimum_portfolio(**kwargs)
