"""Exact MO-Gymnasium tables (oracles.mogym.tables) against the environments themselves."""

import numpy as np
import pytest

pytest.importorskip("mo_gymnasium", reason="oracles.mogym needs MO-Gymnasium (install the `mogym` extra)")

from palmopt.oracle import AlignmentOracle, checked  # noqa: E402
from oracles.mogym import MOGymTable, deep_sea_treasure, fruit_tree  # noqa: E402

from .rollouts import (  # noqa: E402
    BUILDERS,
    DETERMINISTIC,
    GAMMA,
    HORIZON,
    make_env,
    random_deterministic,
    random_stochastic,
    rollout,
)


@pytest.fixture(scope="module", params=list(BUILDERS))
def table(request):
    return BUILDERS[request.param](GAMMA)


# ----------------------------------------------------------------------------- the tables


def test_table_is_a_checked_oracle_with_values_in_the_unit_cube(table):
    assert isinstance(table, AlignmentOracle)
    oracle = checked(table)  # raises if any value leaves [0, 1]
    rng = np.random.default_rng(0)
    W = np.vstack([np.eye(table.d), rng.dirichlet(np.ones(table.d), 8)])
    for w in W:
        sol = oracle(w)
        assert sol.values.shape == (table.d,)
        assert np.all(sol.values >= 0.0) and np.all(sol.values <= 1.0)
        assert sol.values @ w == pytest.approx(table.evaluate(sol.policy) @ w, abs=1e-12)
    assert table.momdp.R.min() >= 0.0 and table.momdp.R.max() <= 1.0
    assert table.n_states == table.momdp.n_states == len(table.states) + 1
    P = table.momdp.P
    assert np.allclose(P.sum(axis=2), 1.0, atol=1e-12)
    assert np.all(P[table.absorbing, :, table.absorbing] == 1.0)


def test_unit_conversion_round_trips(table):
    v = np.random.default_rng(1).random((5, table.d))
    assert np.allclose(table.from_env_units(table.to_env_units(v)), v, atol=1e-12)
    # the per-step map sends the bounds to 0 and 1; the absorbing reward is that of a 0 reward
    assert np.allclose(table.normalise_reward(table.low), 0.0)
    assert np.allclose(table.normalise_reward(table.high), 1.0)
    assert np.allclose(table.momdp.R[table.absorbing], table.normalise_reward(np.zeros(table.d)))


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_policies_reproduce_rollouts_exactly(name):
    table = BUILDERS[name](GAMMA)
    env = make_env(table, HORIZON)
    rng = np.random.default_rng(2)
    policies = [table(w).policy for w in np.vstack([np.eye(table.d), rng.dirichlet(np.ones(table.d), 3)])]
    policies += [random_deterministic(table, rng) for _ in range(6)]
    for policy in policies:
        got = rollout(table, env, np.asarray(policy), rng, seed=0)
        assert got == pytest.approx(table.evaluate(policy), abs=1e-9)
    env.close()


@pytest.mark.parametrize("name, kind", [("resource-gathering", "deterministic"), ("resource-gathering", "stochastic"),
                                        ("dst-convex", "stochastic"), ("fruit-tree-6", "stochastic")])
def test_monte_carlo_rollouts_agree_with_the_table(name, kind):
    table = BUILDERS[name](GAMMA)
    env = make_env(table, 200)  # 0.9**200 < 1e-9
    rng = np.random.default_rng(3)
    if kind == "deterministic":
        policies = [table(w).policy for w in ([0.2, 0.4, 0.4], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])]
        policies += [random_deterministic(table, rng)]
    else:
        policies = [random_stochastic(table, rng) for _ in range(2)]
    n = 600
    for policy in policies:
        policy = np.asarray(policy)
        returns = np.array([rollout(table, env, policy, rng, seed=int(k)) for k in rng.integers(2**31, size=n)])
        se = returns.std(axis=0, ddof=1) / np.sqrt(n)
        err = np.abs(returns.mean(axis=0) - table.evaluate(policy))
        assert np.all(err <= 5 * se + 1e-9), (err, se)
    env.close()


# ----------------------------------------------------------------------------- errors


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="`gamma` must be in"):
        deep_sea_treasure(1.0)
    with pytest.raises(TypeError, match="`gamma`"):
        fruit_tree(5, "0.9")
    with pytest.raises(ValueError, match="`map` must be one of"):
        deep_sea_treasure(0.9, map="spiral")
    with pytest.raises(ValueError, match="`depth` must be 5, 6 or 7"):
        fruit_tree(4, 0.9)


def test_fingerprints_distinguish_environments_and_discounts():
    fps = {deep_sea_treasure(0.9).fingerprint(), deep_sea_treasure(0.95).fingerprint(),
           deep_sea_treasure(0.9, map="concave").fingerprint(), fruit_tree(5, 0.9).fingerprint()}
    assert len(fps) == 4
    assert isinstance(deep_sea_treasure(0.9), MOGymTable)


def test_a_table_pickles_with_its_read_only_kwargs():
    import pickle
    from types import MappingProxyType

    table = deep_sea_treasure(0.9)
    back = pickle.loads(pickle.dumps(table))
    assert isinstance(back.env_kwargs, MappingProxyType) and dict(back.env_kwargs) == dict(table.env_kwargs)
    assert back.fingerprint() == table.fingerprint()
    np.testing.assert_array_equal(back([0.5, 0.5]).values, table([0.5, 0.5]).values)
