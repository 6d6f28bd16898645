import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import palmopt
from palmopt import certify

from .strategies import policy_values


def sampled_gaps(U, T, eps, delta, W):
    lb = (W @ U.T).max(axis=1)
    opt = (W @ T.T).max(axis=1)
    ratio_gap = np.where(opt > 0, 1 - lb / np.where(opt > 0, opt, 1.0), 0.0)  # OPT = 0 is served by anything
    return ((1 - eps) * opt - delta - lb).max(), ratio_gap.max(), (opt - lb).max()


@given(d=st.integers(2, 3), eps=st.floats(0, 0.5), delta=st.floats(0, 0.3), data=st.data())
def test_certificate_matches_dense_sampling(d, eps, delta, data):
    T = data.draw(policy_values(d, 2, 10))
    U = T[: data.draw(st.integers(1, len(T)))]
    cert = certify(U, T, eps, delta)
    W = palmopt.cover(d, 0.5, {2: 1e-4, 3: 0.01}[d], kind="additive").points  # a fine grid
    viol, eps_s, delta_s = sampled_gaps(U, T, eps, delta, W)
    # the LP maximum is over all of the simplex: never below the sample, and close to it
    lip = 2.0 * {2: 1e-4, 3: 0.01}[d]  # |gap(w) - gap(w')| <= 2 ||w - w'||_1 for V in [0, 1]
    assert viol <= cert.violation + 1e-9 <= viol + lip + 1e-9
    assert delta_s <= cert.delta_star + 1e-9 <= delta_s + lip + 1e-9
    assert eps_s <= cert.eps_star + 1e-9
    assert cert.holds == (cert.violation <= 1e-9)
    # the witness really attains the reported violation
    w = cert.worst_weight
    assert (1 - eps) * (T @ w).max() - delta - (U @ w).max() == pytest.approx(cert.violation, abs=1e-9)
    assert cert.status == "success"


def test_finds_the_violating_weight():
    T = np.array([[1.0, 0.0], [0.8, 0.8], [0.0, 1.0]])
    cert = certify(T[[0, 2]], T, eps=0.2, delta=0.0)
    assert not cert.holds
    assert cert.violation == pytest.approx(0.8 * 0.8 - 0.5)
    np.testing.assert_allclose(cert.worst_weight, [0.5, 0.5], atol=1e-9)
    assert cert.eps_star == pytest.approx(1 - 0.5 / 0.8)
    assert cert.delta_star == pytest.approx(0.3)


def test_violation_hidden_off_the_sampling_grid_is_found():
    """A thin spike of OPT between grid points of a coarse sample: the LPs still find it."""
    T = np.array([[1.0, 0.0], [0.0, 0.8], [0.5, 0.41]])  # LB has its kink at w = (4/9, 5/9)
    U = T[:2]
    coarse = np.c_[np.linspace(0, 1, 11), 1 - np.linspace(0, 1, 11)]
    assert sampled_gaps(U, T, 0.0, 0.0, coarse)[2] <= 0 < certify(U, T).delta_star
    cert = certify(U, T, 0.0, 0.0)
    assert cert.delta_star == pytest.approx(0.5 * 4 / 9 + 0.41 * 5 / 9 - 4 / 9)
    assert cert.worst_weight[0] == pytest.approx(4 / 9, abs=1e-9)


def test_certificate_roundtrips_through_a_dict():
    T = np.eye(3)
    cert = certify(T[:2], T, 0.1, 0.1)
    again = palmopt.Certificate.from_dict(cert.to_dict())
    assert again.violation == cert.violation and np.array_equal(again.worst_weight, cert.worst_weight)


def test_reference_may_be_an_exact_oracle():
    from oracles.tabular.instances import random_momdp

    mdp = random_momdp(3, 2, 2, rng=0)
    p = palmopt.palm(mdp, 0.2, progress=False)
    assert certify(p, mdp, 0.2, 0.2).holds


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: certify(np.eye(2), np.eye(3)), ValueError, "`reference` must have 2 columns"),
        (lambda: certify(np.eye(2), np.eye(2), eps=1.0), ValueError, "`eps` must be in"),
        (lambda: certify([[np.nan, 0]], np.eye(2)), ValueError, "`portfolio` must be finite"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_default_target_is_the_portfolios_own_whatever_its_number_type():
    T = np.array([[1.0, 0.0], [0.8, 0.8], [0.0, 1.0]])
    for eps, delta in [(0.2, 0), (np.float32(0.25), 0.0), (0.2, None)]:
        p = palmopt.Portfolio(values=T[[1]], weights=[[0.5, 0.5]], eps=eps, delta=delta)
        cert = certify(p, T)
        assert (cert.eps, cert.delta) == (p.eps, p.delta) and isinstance(p.eps, float)
    assert certify(p, T, eps=0.0, delta=0.0).eps == 0.0  # given targets win


def test_certificates_saved_before_kind_existed_still_load():
    T = np.array([[1.0, 0.0], [0.8, 0.8], [0.0, 1.0]])
    new = certify(T[[1]], T, 0.2, 0.0).to_dict()
    for old_status, kind in [("ok", "exact"), ("black-box", "black-box")]:
        old = {k: v for k, v in new.items() if k != "kind"} | {"status": old_status}
        cert = palmopt.Certificate.from_dict(old)
        assert cert.kind == kind and cert.status == "success" and cert.holds
    with pytest.raises(ValueError, match="`kind` must be one of"):
        palmopt.Certificate.from_dict(new | {"kind": "guess"})
    with pytest.raises(ValueError, match="needs the keys"):
        palmopt.Certificate.from_dict({"holds": True})
    assert not certify(T[[1]], T, 0.2, 0.0).worst_weight.flags.writeable


# ---------------------------------------------------------------------------------------
# The corner path (issue #13) against the plain per-vector LP path
# ---------------------------------------------------------------------------------------


@st.composite
def fronts_with_ties(draw, d):
    """A reference set with duplicate, dominated, scaled-down and tied vectors, and a subset of it."""
    T = draw(policy_values(d, 1, 9))
    extra = []
    if draw(st.booleans()):
        extra.append(T[: draw(st.integers(1, len(T)))])  # duplicates
    if draw(st.booleans()):
        extra.append(0.5 * T[:2])  # dominated
    if len(T) >= 2 and draw(st.booleans()):
        extra.append(0.5 * (T[:1] + T[1:2]))  # on a segment: tied, never a unique maximiser
    if draw(st.booleans()):
        extra.append(np.full((1, d), 0.5))  # ties with symmetric vectors
    T = np.vstack([T, *extra]) if extra else T
    pick = draw(st.lists(st.integers(0, len(T) - 1), min_size=1, max_size=len(T), unique=True))
    return T, T[np.sort(pick)]


@given(d=st.integers(2, 4), eps=st.sampled_from([0.0, 0.05, 0.3]), delta=st.sampled_from([0.0, 0.02]), data=st.data())
def test_corner_path_equals_the_lp_path(d, eps, delta, data):
    T, U = data.draw(fronts_with_ties(d))
    lp = certify(U, T, eps, delta, method="lp")
    fast = certify(U, T, eps, delta, method="corners")
    assert fast.status == lp.status == "success"
    assert fast.holds == lp.holds or abs(lp.violation) <= 1e-8
    assert fast.violation == pytest.approx(lp.violation, abs=1e-8)
    assert fast.delta_star == pytest.approx(lp.delta_star, abs=1e-8)
    assert fast.eps_star == pytest.approx(lp.eps_star, abs=1e-8)
    # the witnesses attain what is reported
    w = fast.worst_weight
    assert (1 - eps) * (T @ w).max() - delta - (U @ w).max() == pytest.approx(fast.violation, abs=1e-9)
    w = fast.delta_weight
    assert (T @ w).max() - (U @ w).max() == pytest.approx(fast.delta_star, abs=1e-9)
    if fast.eps_star > 0:
        w = fast.eps_weight
        assert 1 - (U @ w).max() / (T @ w).max() == pytest.approx(fast.eps_star, abs=1e-9)
    assert fast.max_lp_gap <= 1e-9


def test_corner_path_settles_a_large_front_without_lps():
    rng = np.random.default_rng(0)
    X = np.abs(rng.standard_normal((3000, 3)))
    T = X / np.linalg.norm(X, axis=1, keepdims=True)
    U = T[rng.choice(len(T), 12, replace=False)]
    fast = certify(U, T, 0.05, 0.0)
    assert fast.n_lps <= 5 and fast.status == "success"
    sub = np.vstack([U, T[::15]])  # a sub-front containing the portfolio: the maxima can only be lower
    lp, fast_sub = certify(U, sub, 0.05, 0.0, method="lp"), certify(U, sub, 0.05, 0.0)
    assert lp.violation <= fast.violation + 1e-9 and lp.delta_star <= fast.delta_star + 1e-9
    assert fast_sub.violation == pytest.approx(lp.violation, abs=1e-9)
    assert fast_sub.eps_star == pytest.approx(lp.eps_star, abs=1e-9)


def test_gaps_false_checks_only_the_target():
    T = np.array([[1.0, 0.0], [0.8, 0.8], [0.0, 1.0]])
    for method in ("lp", "corners"):
        cert = certify(T[[0, 2]], T, 0.2, 0.0, gaps=False, method=method)
        assert not cert.holds and cert.violation == pytest.approx(0.8 * 0.8 - 0.5)
        assert np.isnan(cert.eps_star) and np.isnan(cert.delta_star) and cert.eps_weight is None


def test_a_portfolio_that_beats_the_reference_is_reported():
    T = np.array([[1.0, 0.0], [0.8, 0.8], [0.0, 1.0]])
    U = np.array([[1.0, 0.0], [5.0, 5.0]])  # a corrupted stored value
    with pytest.warns(RuntimeWarning, match="beats the reference front"):
        cert = certify(U, T, 0.0, 0.0)
    assert cert.delta_star == pytest.approx(-4.0) and cert.holds
    assert "beats the reference front" in getattr(cert, "note", "beats the reference front")
    with pytest.warns(RuntimeWarning, match="beats the reference front"):
        certify(T[[1]] + [0.0, 1e-6], T, 0.1, 0.1)  # above OPT = 0.8 at w = (½, ½)
    certify(T[[1]] + [0.0, 1e-12], T, 0.1, 0.1)  # within tolerance: no warning (warnings are errors here)
    certify(np.array([[0.4, 0.4], [0.9, 0.0]]), T, 0.5, 0.0)  # below OPT everywhere: no warning


# ---------------------------------------------------------------------------------------
# Incremental corner weights
# ---------------------------------------------------------------------------------------


def _same_rows(A, B, tol=1e-8):
    D = np.abs(A[:, None, :] - B[None, :, :]).max(axis=2)
    return A.shape == B.shape and (D.min(axis=1) <= tol).all() and (D.min(axis=0) <= tol).all()


def _check_incremental(V):
    from palmopt.certify import Corners, corner_weights

    c = Corners(V[:1])
    assert _same_rows(c.weights, corner_weights(V[:1]))
    for i in range(1, len(V)):
        prev = c.weights.copy()
        removed, added = c.add(V[i])
        kept = np.delete(prev, removed, axis=0)
        # the contract: survivors keep their order, the new corners are appended
        np.testing.assert_array_equal(c.weights, np.vstack([kept, added]))
        assert _same_rows(c.weights, corner_weights(V[: i + 1])), i
        np.testing.assert_allclose(c.lb, (c.weights @ V[: i + 1].T).max(axis=1), atol=1e-12)
        assert _same_rows(c.sorted(), corner_weights(V[: i + 1]))
    return c


@pytest.mark.parametrize("d", [2, 3, 4, 5, 6])
def test_incremental_corners_equal_the_corners_from_scratch(d):
    rng = np.random.default_rng(d)
    for trial in range(4):
        X = np.abs(rng.standard_normal((14, d)))
        V = X / np.linalg.norm(X, axis=1, keepdims=True) if trial % 2 else rng.random((14, d))
        if trial == 3:  # duplicates, dominated members, a member tied on a segment
            V = np.vstack([V[:6], V[:2], 0.5 * V[2:3], 0.5 * (V[0] + V[1])[None, :], V[6:]])
        c = _check_incremental(V)
        assert c.n_rebuilt <= 2


@settings(max_examples=40, deadline=None)
@given(d=st.integers(2, 4), data=st.data())
def test_incremental_corners_on_tied_and_snapped_values(d, data):
    V = data.draw(policy_values(d, 2, 9))
    _check_incremental(V)


# ---------------------------------------------------------------------------------------
# The optimistic bound for many weights at once
# ---------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(d=st.integers(2, 6), data=st.data())
def test_warm_started_bound_equals_the_lp_per_weight(d, data):
    from palmopt.certify import OptimisticBound, upper_bound_opt
    from palmopt.tolerances import LP_SANDWICH

    from .strategies import simplex_points

    V = data.draw(policy_values(d, 1, 10))
    Q = data.draw(simplex_points(d, 1, 8))
    slack = data.draw(st.sampled_from([0.0, 0.01, -2.0]))  # -2: an infeasible LP (the box alone)
    b = (Q @ V.T).max(axis=1) + slack
    value_range = data.draw(st.sampled_from([(0.0, 1.0), (-0.5, 2.0)]))
    W = data.draw(simplex_points(d, 1, 12))
    ub_lp, gap_lp = upper_bound_opt(W, Q, b, value_range, method="lp")
    ub, gap = upper_bound_opt(W, Q, b, value_range)
    assert np.isinf(gap) == np.isinf(gap_lp)  # infeasible: the box alone, both ways
    assert np.isinf(gap) or gap <= 1e-7  # verified to LP_SANDWICH (the warm start is often the tighter)

    def close(got, want):  # both are upper bounds on the optimum, each within its own verified gap
        tol = LP_SANDWICH + max([g for g in (got[1], want[1]) if np.isfinite(g)], default=0.0)
        np.testing.assert_allclose(got[0], want[0], atol=tol, rtol=0)

    close((ub, gap), (ub_lp, gap_lp))
    # rows added later give the same numbers as a model built with them
    k = len(Q) // 2
    bound = OptimisticBound(Q[:k], b[:k], value_range, d=d)
    bound(W)
    bound.add(Q[k:], b[k:])
    close(bound(W), (ub_lp, gap_lp))
    bound.set_bounds(b + 0.05)  # a changed noise allowance: same rows, new right-hand sides
    close(bound(W), upper_bound_opt(W, Q, b + 0.05, value_range, method="lp"))
    if slack >= 0:
        assert (ub >= (W @ V.T).max(axis=1) - 1e-9).all()  # UB >= OPT
