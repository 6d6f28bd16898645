"""TabularMOMDP(method="lp") and non-linear scalarizations: the occupancy programme in cvxpy.

Every optimum is checked against an independent computation: policy iteration for the weighted
sum, a SciPy LP over mixtures of brute-forced deterministic policies for Tchebycheff (the values
of stochastic policies are the convex hull of the deterministic ones), and for p-means a sample
of mixtures from below and a supergradient bound over the deterministic values from above.
"""

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

pytest.importorskip("cvxpy", reason="the occupancy programme needs cvxpy")

from palmopt.oracle import OracleError, checked  # noqa: E402
from palmopt.scalarizations import Linear, PMean, Tchebycheff  # noqa: E402
from oracles.tabular import TabularMOMDP  # noqa: E402
from oracles.tabular.instances import demo_instance  # noqa: E402
from oracles.tabular.occupancy import OccupancyError  # noqa: E402

from ..strategies_tabular import momdp_arrays  # noqa: E402
from .twins import brute_force_values, mixture_value, one_state, valid_arrays, weights_for  # noqa: E402

#: interior-point solutions, re-evaluated exactly: agreement to this (values in [0, 1])
LP_TOL = 1e-6


def _tcheb_opt(V, w):
    """max over mixtures λ of the rows of V of min_{w_i > 0} w_i (λᵀV)_i (SciPy/HiGHS LP)."""
    k, d = V.shape
    S = np.flatnonzero(w > 0)
    # variables (λ, t): max t s.t. t - w_i (λᵀV)_i <= 0, Σλ = 1
    A_ub = np.c_[-(V[:, S] * w[S]).T, np.ones(len(S))]
    res = linprog(np.r_[np.zeros(k), -1.0], A_ub=A_ub, b_ub=np.zeros(len(S)),
                  A_eq=np.r_[np.ones(k), 0.0][None], b_eq=[1.0], bounds=[(0, None)] * k + [(None, None)],
                  method="highs")
    assert res.status == 0
    return -res.fun


def _clean(W):
    """Weights with every positive entry >= 1e-3: a supported weight of 1e-219 makes the p <= 0
    optimum a supremum that is not attained (g jumps at v_i = 0), which no solver resolves."""
    W = np.where(W < 1e-3, 0.0, W)
    return W / W.sum(axis=1, keepdims=True)


def _check_stochastic_solution(mdp, sol):
    pi = sol.policy
    assert pi.shape == (mdp.n_states, mdp.n_actions) and pi.dtype == np.float64 and not pi.flags.writeable
    assert np.all(pi >= 0) and np.allclose(pi.sum(axis=1), 1.0)
    assert np.allclose(sol.values, mixture_value(mdp, pi), atol=1e-9)  # values = exact evaluation of pi


@settings(max_examples=25)
@given(arrays=momdp_arrays(max_states=3, max_actions=3, d_max=3), data=st.data())
def test_lp_equals_policy_iteration(arrays, data):
    pi_mdp = TabularMOMDP(*arrays)
    lp_mdp = TabularMOMDP(*arrays, method="lp")
    assert lp_mdp.method == "lp" and lp_mdp.scalarization == Linear()
    for w in data.draw(weights_for(pi_mdp.d))[:3]:
        a, b = pi_mdp(w), lp_mdp(w)
        _check_stochastic_solution(lp_mdp, b)
        assert w @ b.values == pytest.approx(w @ a.values, abs=LP_TOL)
        assert b.info["upper_bound"] >= w @ a.values - 1e-9  # the verified bound is a bound


@settings(max_examples=20)
@given(arrays=momdp_arrays(max_states=3, max_actions=3, d_max=3), data=st.data())
def test_tchebycheff_is_the_optimum_over_stochastic_policies(arrays, data):
    mdp = TabularMOMDP(*arrays, scalarization=Tchebycheff())
    _, Vdet = brute_force_values(mdp)
    for w in data.draw(weights_for(mdp.d))[:3]:
        sol = mdp(w)
        _check_stochastic_solution(mdp, sol)
        opt = _tcheb_opt(Vdet, w)
        assert Tchebycheff()(w, sol.values)[0, 0] == pytest.approx(opt, abs=LP_TOL)


def _pmean_bounds(g, V, w, v_hat, rng):
    """(lower, upper, scale) on max over mixtures of the rows of V of g_w: sampled mixtures from
    below; from above max_j c·V_j / M_q(w; c/w) (reverse Hölder, q = p/(p-1)) at the gradient
    direction c = w v_hat^(p-1), computed here over the brute-forced values (None if undefined)."""
    lam = rng.dirichlet(np.ones(len(V)) * 0.3, size=400)
    lower = max(g(w, lam @ V).max(), g(w, V).max())
    live = (w > 0) & (V.max(axis=0) > 1e-12)
    if g.p <= 0 and not live[w > 0].all() or not live.any():
        return lower, 0.0, 1.0
    if np.any(v_hat[live] <= 1e-12):
        return lower, None, 1.0
    wl = w[live] / w[live].sum()
    b = v_hat[live] ** (g.p - 1)
    q = g.p / (g.p - 1)
    Mq = math.exp(wl @ np.log(b)) if g.p == 0 else (wl @ b**q) ** (1 / q)
    c = wl * b / Mq
    return lower, w[live].sum() ** (1 / g.p if g.p > 0 else 1) * (V[:, live] @ c).max(), 1 + c.sum()


@settings(max_examples=20)
@given(arrays=momdp_arrays(max_states=3, max_actions=3, d_max=3), p=st.sampled_from([0.5, 0.0, -1.0]),
       data=st.data())
def test_pmean_is_the_optimum_over_stochastic_policies(arrays, p, data):
    g = PMean(p)
    mdp = TabularMOMDP(*arrays, scalarization=g)
    _, Vdet = brute_force_values(mdp)
    rng = np.random.default_rng(0)
    for w in _clean(data.draw(weights_for(mdp.d)))[:2]:
        sol = mdp(w)
        _check_stochastic_solution(mdp, sol)
        val = g(w, sol.values)[0, 0]
        lower, upper, scale = _pmean_bounds(g, Vdet, w, sol.values, rng)
        assert val >= lower - 1e-7
        if upper is not None:
            assert upper >= lower - 1e-9 and val >= upper - 1e-4 * scale


def test_a_mixture_beats_every_deterministic_policy():
    mdp = one_state([[1.0, 0.0], [0.0, 1.0]])
    fair = TabularMOMDP(mdp.P, mdp.R, mdp.gamma, mdp.mu, scalarization=Tchebycheff())
    sol = fair([0.5, 0.5])
    assert sol.policy == pytest.approx(np.array([[0.5, 0.5]]), abs=1e-6)
    assert sol.values == pytest.approx([0.5, 0.5], abs=1e-6)
    geo = TabularMOMDP(mdp.P, mdp.R, mdp.gamma, mdp.mu, scalarization=PMean(0))([0.25, 0.75])
    assert geo.values == pytest.approx([0.25, 0.75], abs=1e-4)  # argmax of v1^w1 v2^w2 on the segment: v = w


def test_support_convention_and_objectives_nobody_can_raise():
    # objective 2 is 0 for every policy: for p <= 0 and min-type OPT(w) = 0 when it is in the support
    mdp = one_state([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    for g in (Tchebycheff(), PMean(0), PMean(-2)):
        m = TabularMOMDP(mdp.P, mdp.R, 0.0, mdp.mu, scalarization=g)
        sol = m([0.4, 0.4, 0.2])
        assert g([0.4, 0.4, 0.2], sol.values)[0, 0] == 0.0 and sol.info["upper_bound"] == 0.0
        off = m([0.5, 0.5, 0.0])  # off the support it is ignored
        assert off.values == pytest.approx([0.5, 0.5, 0.0], abs=1e-4)
    half = TabularMOMDP(mdp.P, mdp.R, 0.0, mdp.mu, scalarization=PMean(0.5))([0.4, 0.4, 0.2])
    assert half.values == pytest.approx([0.5, 0.5, 0.0], abs=1e-4)


def test_unreachable_states_get_the_uniform_policy():
    P = np.zeros((2, 2, 2))
    P[:, :, 0] = 1.0  # state 1 is never reached from state 0
    R = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.5], [0.5, 0.5]]])
    sol = TabularMOMDP(P, R, 0.5, [1.0, 0.0], method="lp")([0.7, 0.3])
    assert sol.policy[1] == pytest.approx([0.5, 0.5])
    assert sol.values == pytest.approx([1.0, 0.0], abs=1e-6)


def test_fingerprint_repr_pickle_and_bad_input():
    P, R, gamma, mu = valid_arrays()
    base = TabularMOMDP(P, R, gamma, mu)
    fps = {base.fingerprint(), TabularMOMDP(P, R, gamma, mu, method="dense").fingerprint()}
    assert len(fps) == 1  # dense and sparse policy iteration give the same answers
    lp = [TabularMOMDP(P, R, gamma, mu, method="lp", scalarization=s) for s in
          (Linear(), Tchebycheff(), PMean(0.5), PMean(0.25), PMean(0))]
    assert len({m.fingerprint() for m in lp} | fps) == 6
    assert repr(lp[1]) == "TabularMOMDP(S=2, A=2, d=3, gamma=0.9, method='lp', scalarization=Tchebycheff())"
    assert TabularMOMDP(P, R, gamma, mu, scalarization=PMean(1)).method == "dense"  # p = 1 is linear
    m = pickle.loads(pickle.dumps(lp[2]))
    w = np.array([0.2, 0.3, 0.5])
    lp[2](w)  # compiles a programme; the copy rebuilds its own
    assert np.allclose(pickle.loads(pickle.dumps(lp[2]))(w).values, m(w).values)
    with pytest.raises(ValueError, match="policy iteration.*Tchebycheff.*method='lp'"):
        TabularMOMDP(P, R, gamma, mu, method="sparse", scalarization=Tchebycheff())
    with pytest.raises(TypeError, match="Scalarization"):
        TabularMOMDP(P, R, gamma, mu, scalarization="min")
    with pytest.raises(ValueError, match="'lp'"):
        TabularMOMDP(P, R, gamma, mu, method="simplex")


def test_solver_failure_and_numerical_trouble_are_named(monkeypatch):
    import cvxpy as cp

    mdp = TabularMOMDP(*valid_arrays(), method="lp")
    w = np.array([0.2, 0.3, 0.5])
    mdp(w)

    def fail(self, *args, **kwargs):
        raise cp.SolverError("Solver 'CLARABEL' failed. Try another solver.")

    monkeypatch.setattr(cp.Problem, "solve", fail)
    with pytest.raises(OccupancyError, match="CLARABEL") as info:
        mdp(w)
    assert info.value.status == "solver-failed"
    with pytest.raises(OracleError, match="CLARABEL"):  # palmopt's wrapper names the weight
        checked(mdp)(w)
    monkeypatch.undo()

    prog = mdp._program
    real = prog.solve

    def off_the_polytope(w, active, **kw):
        x, info = real(w, active, **kw)
        return x * 1.01, info

    monkeypatch.setattr(prog, "solve", off_the_polytope)
    with pytest.raises(OccupancyError, match="numerical-trouble.*flow constraints") as info:
        mdp(w)
    assert info.value.status == "numerical-trouble"

    base = demo_instance()
    demo = TabularMOMDP(base.P, base.R, base.gamma, base.mu, method="lp")
    S, A = demo.n_states, demo.n_actions
    P_unif = base.P.mean(axis=1)  # the uniformly random policy: a feasible, suboptimal occupancy
    occ = (1 - base.gamma) * base.mu @ np.linalg.inv(np.eye(S) - base.gamma * P_unif)
    uniform_x = np.repeat(occ[:, None] / A, A, axis=1)

    def suboptimal(w, active, **kw):
        return uniform_x, {"solver": "TEST", "status": "optimal"}

    demo(np.array([0.2, 0.3, 0.5]))  # builds the programme
    monkeypatch.setattr(demo._program, "solve", suboptimal)
    with pytest.raises(OccupancyError, match="numerical-trouble.*below a verified upper bound"):
        demo(np.array([0.2, 0.3, 0.5]))


def test_palm_with_the_occupancy_oracle_resumes_from_its_store_and_runs_in_threads(tmp_path):
    import palmopt

    base = demo_instance()
    mdp = TabularMOMDP(base.P, base.R, base.gamma, base.mu, scalarization=Tchebycheff())
    first = palmopt.palm(mdp, 0.5, 0.4, store=str(tmp_path), progress=False)
    again = palmopt.palm(mdp, 0.5, 0.4, store=str(tmp_path), progress=False)
    assert first.info["n_new_calls"] == first.n_oracle_calls and again.info["n_new_calls"] == 0
    np.testing.assert_array_equal(first.values, again.values)
    threaded = palmopt.palm(mdp, 0.5, 0.4, executor="thread", progress=False)  # one solve at a time
    np.testing.assert_allclose(np.sort(threaded.values, axis=0), np.sort(first.values, axis=0), atol=1e-6)
