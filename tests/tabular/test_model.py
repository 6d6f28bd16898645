"""TabularMOMDP: exact policy iteration, evaluation, bookkeeping and input checks."""

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from palmopt.oracle import OracleError, Solution, as_oracle, checked
from oracles.tabular import TabularMOMDP
from oracles.tabular.instances import demo_instance, random_momdp

from ..strategies_tabular import arrays, distributions, momdps
from .twins import TOL, brute_force_values, mixture_value, valid_arrays, weights_for

# ---------------------------------------------------------------------- exactness


@given(mdp=momdps(), data=st.data())
def test_oracle_attains_brute_force_optimum(mdp, data):
    W = data.draw(weights_for(mdp.d))
    policies, V = brute_force_values(mdp)
    value_of = {tuple(p): v for p, v in zip(policies, V)}
    for w in W:
        sol = mdp(w)
        assert isinstance(sol, Solution)
        assert sol.policy.dtype == np.int64 and sol.policy.shape == (mdp.n_states,)
        assert sol.values.shape == (mdp.d,)
        assert np.allclose(sol.values, value_of[tuple(sol.policy)], atol=TOL)
        assert w @ sol.values >= (V @ w).max() - TOL
        assert sol.info["iterations"] >= 1 and sol.info["seconds"] >= 0


@given(mdp=momdps(), data=st.data())
def test_oracle_is_deterministic(mdp, data):
    w = data.draw(weights_for(mdp.d))[0]
    a, b = mdp(w), mdp(w.copy())
    assert np.array_equal(a.policy, b.policy) and np.array_equal(a.values, b.values)


def test_ties_go_to_the_lowest_action():
    R = np.zeros((3, 4, 2))
    R[:, 1] = R[:, 3] = [0.5, 0.5]  # actions 1 and 3 tie and beat 0 and 2
    P = np.full((3, 4, 3), 1 / 3)
    mdp = TabularMOMDP(P, R, 0.9, np.ones(3) / 3)
    assert mdp([0.3, 0.7]).policy.tolist() == [1, 1, 1]
    flat = TabularMOMDP(P, np.full((3, 4, 2), 0.25), 0.9, np.ones(3) / 3)
    assert flat([1.0, 0.0]).policy.tolist() == [0, 0, 0]


def test_oracle_needs_lookahead():
    # State 0: action 0 pays 0.1 now and stays; action 1 pays 0 now and moves to the rich state 1.
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, :, 1] = 1.0
    R = np.zeros((2, 2, 1))
    R[0, 0] = 0.1
    R[1] = 1.0
    sol = TabularMOMDP(P, R, 0.9, [1.0, 0.0])([1.0])
    assert sol.policy[0] == 1 and sol.info["iterations"] >= 2
    assert sol.values == pytest.approx([0.9])


# ---------------------------------------------------------------------- policy evaluation


@given(mdp=momdps(), data=st.data())
def test_bellman_residual_and_normalisation(mdp, data):
    S, A = mdp.n_states, mdp.n_actions
    st_ = np.arange(S)
    pi = data.draw(arrays((S,), st.integers(0, A - 1))).astype(np.int64)
    V = mdp.value_function(pi)
    assert V.shape == (S, mdp.d)
    assert np.abs(V - (mdp.R[st_, pi] + mdp.gamma * mdp.P[st_, pi] @ V)).max() <= 1e-9 / (1 - mdp.gamma)
    for policy in (pi, data.draw(distributions((S, A), "dense"))):
        v = mdp.evaluate(policy)
        assert v.shape == (mdp.d,)
        assert np.all(v >= -1e-12) and np.all(v <= 1 + 1e-12)


@given(mdp=momdps(), data=st.data())
def test_stochastic_evaluation_is_the_mixture(mdp, data):
    S, A = mdp.n_states, mdp.n_actions
    policy = data.draw(distributions((S, A), data.draw(st.sampled_from(["dense", "sparse"]))))
    assert np.allclose(mdp.evaluate(policy), mixture_value(mdp, policy), atol=1e-10)
    pi = data.draw(arrays((S,), st.integers(0, A - 1))).astype(np.int64)
    one_hot = np.eye(A)[pi]
    assert np.allclose(mdp.evaluate(one_hot), mdp.evaluate(pi), atol=1e-12)
    assert np.allclose(mdp.evaluate(pi), mixture_value(mdp, one_hot), atol=1e-10)


def test_evaluate_agrees_with_the_oracle():
    mdp = demo_instance()
    for w in np.random.default_rng(0).dirichlet(np.ones(3), size=5):
        sol = mdp(w)
        assert np.allclose(mdp.evaluate(sol.policy), sol.values, atol=1e-12)


# ---------------------------------------------------------------------- bookkeeping


def test_fingerprint_is_stable_and_sensitive():
    P, R, gamma, mu = random_momdp(4, 2, 2, rng=0).P, random_momdp(4, 2, 2, rng=0).R, 0.9, np.ones(4) / 4
    fp = TabularMOMDP(P, R, gamma, mu).fingerprint()
    assert fp.startswith("tabular:") and len(fp) == len("tabular:") + 16
    assert TabularMOMDP(P.copy(), R.copy(), gamma, mu.copy()).fingerprint() == fp
    P2 = P.copy()
    P2[0, 0] = np.roll(P2[0, 0], 1)
    R2 = R.copy()
    R2[1, 1, 0] = 0.5
    mu2 = np.eye(4)[0]
    for other in (TabularMOMDP(P2, R, gamma, mu), TabularMOMDP(P, R2, gamma, mu), TabularMOMDP(P, R, 0.8, mu),
                  TabularMOMDP(P, R, gamma, mu2)):
        assert other.fingerprint() != fp
    assert checked(TabularMOMDP(P, R, gamma, mu)).fingerprint() == fp


def test_inputs_are_copied_and_read_only():
    P = np.full((2, 1, 2), 0.5)
    R = np.full((2, 1, 2), 0.5)
    mdp = TabularMOMDP(P, R, 0.5, [0.5, 0.5])
    fp = mdp.fingerprint()
    R[0, 0, 0] = 0.0
    assert mdp.R[0, 0, 0] == 0.5 and mdp.fingerprint() == fp
    with pytest.raises(ValueError):
        mdp.P[0, 0, 0] = 1.0
    sol = mdp([1.0, 0.0])
    with pytest.raises(ValueError):
        sol.policy[0] = 1


def test_save_and_load_policy(tmp_path):
    mdp = demo_instance()
    pi = mdp([0.2, 0.5, 0.3]).policy
    path = mdp.save_policy(pi, tmp_path / "policies")
    assert os.path.dirname(path) == str(tmp_path / "policies") and path.endswith(".npy")
    assert mdp.save_policy(pi.copy(), tmp_path / "policies") == path
    loaded = mdp.load_policy(path)
    assert loaded.dtype == np.int64 and np.array_equal(loaded, pi)
    stochastic = np.full((6, 4), 0.25)
    assert np.array_equal(mdp.load_policy(mdp.save_policy(stochastic, tmp_path)), stochastic)
    other = random_momdp(3, 2, 3, rng=0)
    with pytest.raises(ValueError, match="policy"):
        other.load_policy(path)


def test_repr_and_attributes():
    mdp = demo_instance()
    assert repr(mdp) == "TabularMOMDP(S=6, A=4, d=3, gamma=0.9)"
    assert mdp.value_range == (0.0, 1.0)


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "change, error, match",
    [
        (lambda a: a.update(P=np.full((2, 2, 2), 0.4)), ValueError, r"`P\[0, 0, :\]` sums to 0.8"),
        (lambda a: a.update(P=np.array([[[1.5, -0.5]] * 2] * 2)), ValueError, r"entries of `P` must be >= 0"),
        (lambda a: a.update(P=np.full((2, 2, 3), 1 / 3)), ValueError, r"`P` must have shape \(S, A, S\)"),
        (lambda a: a.update(P=np.full((2, 2), 0.5)), ValueError, r"`P` must be a 3-D array"),
        (lambda a: a.update(P="transitions"), TypeError, r"`P` must be a numeric array"),
        (lambda a: a.update(P=np.full((2, 2, 2), np.nan)), ValueError, r"`P` must be finite"),
        (lambda a: a.update(R=np.full((2, 3, 3), 0.5)), ValueError, r"`R` must have shape \(S, A, d\)"),
        (lambda a: a["R"].__setitem__((1, 1, 2), np.nan), ValueError, r"`R` must be finite"),
        (lambda a: a["R"].__setitem__((0, 0, 0), 2.0), ValueError, r"`R` must lie in \[0, 1\].*Rescale"),
        (lambda a: a.update(gamma=1.0), ValueError, r"`gamma` must be in \[0, 1\)"),
        (lambda a: a.update(gamma=-0.1), ValueError, r"`gamma`"),
        (lambda a: a.update(gamma=float("nan")), ValueError, r"`gamma`"),
        (lambda a: a.update(gamma="0.9"), TypeError, r"`gamma`"),
        (lambda a: a.update(mu=[1.0, 0.0, 0.0]), ValueError, r"`mu` must have shape"),
        (lambda a: a.update(mu=[0.7, 0.7]), ValueError, r"`mu`"),
        (lambda a: a.update(mu=[1.5, -0.5]), ValueError, r"`mu`"),
    ],
)
def test_bad_constructor_input(change, error, match):
    args = dict(zip(("P", "R", "gamma", "mu"), valid_arrays()))
    change(args)
    with pytest.raises(error, match=match):
        TabularMOMDP(**args)


def test_value_range_allows_other_rewards():
    P, R, gamma, mu = valid_arrays()
    R = R.copy()
    R[0, 0, 0], R[1, 1, 1] = -1.0, 3.0  # rewards in [-1, 3]
    with pytest.raises(ValueError, match="rescale|Rescale"):
        TabularMOMDP(P, R, gamma, mu)
    mdp = TabularMOMDP(P, R, gamma, mu, value_range=(-1, 3))
    assert mdp.value_range == (-1.0, 3.0)
    sol = checked(mdp)([0, 1, 0])
    assert sol.values.max() > 1 and np.all((sol.values >= -1) & (sol.values <= 3))
    with pytest.raises(ValueError, match="value_range"):
        TabularMOMDP(P, R, gamma, mu, value_range=(0, 2))
    with pytest.raises(TypeError, match="value_range"):
        TabularMOMDP(P, R, gamma, mu, value_range=3)
    with pytest.raises(ValueError, match="value_range"):
        TabularMOMDP(P, R, gamma, mu, value_range=(3, -1))


@pytest.mark.parametrize(
    "w, match",
    [
        ([0.5, 0.5], r"`w` must have shape \(d,\) = \(3,\)"),
        ([[0.2, 0.3, 0.5]], r"`w` must have shape"),
        ([0.5, 0.5, 0.5], r"`w`.*simplex"),
        ([1.2, -0.2, 0.0], r"`w`.*simplex"),
        ([np.nan, 0.5, 0.5], r"`w` must be finite"),
    ],
)
def test_bad_weight(w, match):
    mdp = TabularMOMDP(*valid_arrays())
    with pytest.raises(ValueError, match=match):
        mdp(w)


def test_bad_weight_kind():
    with pytest.raises(TypeError, match="`w`"):
        TabularMOMDP(*valid_arrays())("weights")


@pytest.mark.parametrize(
    "policy, error, match",
    [
        (np.array([0, 2]), ValueError, r"range\(2\)"),
        (np.array([0, 1, 0]), ValueError, r"shape \(S,\)"),
        (np.array([0.0, 1.0]), TypeError, r"integer array"),
        (np.array([True, False]), TypeError, r"`policy`"),
        (np.full((2, 2), 0.6), ValueError, r"distributions"),
        (np.full((2, 3), 1 / 3), ValueError, r"shape \(S, A\)"),
        (np.zeros((2, 2, 2)), ValueError, r"`policy` must have shape"),
    ],
)
def test_bad_policy(policy, error, match):
    mdp = TabularMOMDP(*valid_arrays())
    with pytest.raises(error, match=match):
        mdp.evaluate(policy)


# ---------------------------------------------------------------------- through palmopt.oracle.checked


def test_checked_tabular_oracle():
    mdp = demo_instance()
    oracle = checked(mdp)
    sol = oracle([0.2, 0.3, 0.5])
    assert np.array_equal(sol.values, mdp([0.2, 0.3, 0.5]).values)


@pytest.mark.parametrize(
    "broken, match",
    [
        (lambda mdp: (lambda w: np.r_[np.nan, mdp(w).values[1:]]), r"non-finite values .* at w = \[0\.2, 0\.3, 0\.5\]"),
        (lambda mdp: (lambda w: mdp(w).values[:-1]), r"shape \(2,\), expected \(3,\), at w = \[0\.2, 0\.3, 0\.5\]"),
        (lambda mdp: (lambda w: mdp(w[:2]).values), r"raised ValueError at w = \[0\.2, 0\.3, 0\.5\]: `w`"),
    ],
)
def test_checked_reports_the_weight(broken, match):
    mdp = demo_instance()
    oracle = checked(as_oracle(broken(mdp), d=3, name="broken"))
    with pytest.raises(OracleError, match=match) as info:
        oracle([0.2, 0.3, 0.5])
    assert np.array_equal(info.value.weight, [0.2, 0.3, 0.5])
