"""Exact MO-Gymnasium tables (oracles.mogym) against the environments themselves.

Roll-outs go through ``mo_gymnasium.make(...).step`` (all wrappers included) with a horizon
``H`` where ``gamma**H`` is negligible; a terminated episode's tail (the absorbing state's
constant normalised reward) is added exactly, so deterministic policies in deterministic
environments must agree to rounding.
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("mo_gymnasium", reason="oracles.mogym needs MO-Gymnasium (install the `mogym` extra)")

import mo_gymnasium  # noqa: E402

from palmopt.oracle import AlignmentOracle, checked  # noqa: E402
from oracles.mogym import (  # noqa: E402
    DST_MAPS,
    MOGymTable,
    UnsupportedRandomness,
    _step_outcomes,
    compare_published_front,
    deep_sea_treasure,
    fruit_tree,
    published_front,
    resource_gathering,
)

GAMMA = 0.9
HORIZON = 300  # 0.9**300 < 1e-13

BUILDERS = {
    "dst-convex": lambda g: deep_sea_treasure(g),
    "dst-concave": lambda g: deep_sea_treasure(g, map="concave"),
    "dst-mirrored": lambda g: deep_sea_treasure(g, map="mirrored"),
    "fruit-tree-5": lambda g: fruit_tree(5, g),
    "fruit-tree-6": lambda g: fruit_tree(6, g),
    "fruit-tree-7": lambda g: fruit_tree(7, g),
    "resource-gathering": resource_gathering,
}
DETERMINISTIC = [k for k in BUILDERS if k != "resource-gathering"]


@pytest.fixture(scope="module", params=list(BUILDERS))
def table(request):
    return BUILDERS[request.param](GAMMA)


def make_env(table, horizon):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
        return mo_gymnasium.make(table.env_id, max_episode_steps=horizon, **dict(table.env_kwargs))


def rollout(table, env, policy, rng, seed):
    """Normalised discounted return of one episode through ``env.step`` (policy over table states)."""
    g = table.gamma
    obs, _ = env.reset(seed=seed)
    total, disc = 0.0, 1.0
    for _ in range(HORIZON):
        s = table.state_index(obs)
        a = int(policy[s]) if policy.ndim == 1 else int(rng.choice(policy.shape[1], p=policy[s]))
        obs, reward, terminated, truncated, _ = env.step(a)
        total = total + disc * table.normalise_reward(reward)
        disc *= g
        if terminated:  # the absorbing state pays its normalised reward forever
            return (1 - g) * total + disc * table.normalise_reward(np.zeros(table.d))
        if truncated:
            break
    return (1 - g) * total  # the missing tail is at most gamma**H


def random_deterministic(table, rng):
    return rng.integers(table.momdp.n_actions, size=table.n_states)


def random_stochastic(table, rng):
    return rng.dirichlet(np.full(table.momdp.n_actions, 0.7), size=table.n_states)


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


def test_resource_gathering_attack_probability_is_derived_from_the_code():
    table = resource_gathering(GAMMA)
    P, R = table.momdp.P, table.momdp.R
    killed = table.normalise_reward([-1.0, 0.0, 0.0])
    attacks = 0
    for s, key in enumerate(table.states):
        for a in range(4):
            if 0.0 < P[s, a, table.absorbing] < 1.0:  # an enemy cell: killed or not
                attacks += 1
                assert P[s, a, table.absorbing] == 0.1
                assert R[s, a, 0] == pytest.approx(0.1 * killed[0] + 0.9 * 1.0)
    assert attacks > 0


# ----------------------------------------------------------------------------- published fronts


@pytest.mark.parametrize("gamma", [0.9, 0.95, 0.99])
def test_dst_convex_published_front_is_achieved_and_partly_supported(gamma):
    result = compare_published_front(deep_sea_treasure(gamma), gamma)
    assert (result.n_published, result.n_achieved) == (10, 10)
    # a Pareto front, not a convex coverage set: at 0.95 the last four treasures are optimal for no weight
    assert result.n_in_ccs == {0.9: 3, 0.95: 6, 0.99: 10}[gamma]
    assert [p.in_ccs for p in result.points] == [p.gap >= -1e-9 for p in result.points]


@pytest.mark.parametrize("map", ["concave", "mirrored"])
def test_dst_concave_maps_published_fronts_are_achieved(map):
    table = deep_sea_treasure(0.95, map=map)
    result = compare_published_front(table)
    assert (result.n_published, result.n_achieved, result.n_in_ccs) == (10, 10, 2)
    # the witnesses reproduce the published (treasure, time) returns in the environment
    env = make_env(table, HORIZON)
    for p in result.points:
        assert abs(p.policy_values - p.values).max() <= 1e-6
        got = table.to_env_units(rollout(table, env, p.policy, None, seed=0))
        assert got == pytest.approx(p.env_units, abs=1e-4)  # float32 rewards vs float64 front
    env.close()


def test_dst_published_points_are_minimal_time_treasures():
    for gamma in (0.9, 0.99):
        for map in DST_MAPS:
            table = deep_sea_treasure(gamma, map=map)
            front = published_front(table)
            steps = np.round(np.log1p(-(1 - gamma) * -front[:, 1]) / np.log(gamma)).astype(int)
            v = table.from_env_units(front)
            assert np.allclose(v[:, 1], gamma**steps, atol=1e-12)  # normalised time = gamma**T


@pytest.mark.parametrize("depth", [5, 6, 7])
def test_fruit_tree_published_front_is_every_leaf(depth):
    gamma = 0.95
    table = fruit_tree(depth, gamma)
    front = table.from_env_units(published_front(table))
    assert front.shape == (2**depth, 6)
    for leaf, point in enumerate(front):
        policy = np.zeros(table.n_states, dtype=np.int64)
        for s, (row, _) in enumerate(table.states):
            policy[s] = (leaf >> (depth - 1 - row)) & 1
        assert np.max(np.abs(table.evaluate(policy) - point)) <= 1e-8
    if depth == 5:
        result = compare_published_front(table)
        assert (result.n_published, result.n_achieved, result.n_in_ccs) == (32, 32, 32)


def test_resource_gathering_published_front_is_off_by_one_discount():
    table = resource_gathering(0.9)
    result = compare_published_front(table, discount_shift=1)
    assert result.n_published == result.n_achieved == result.n_in_ccs == 6
    raw = published_front(table)
    # as published, every point is gamma times the return of a deterministic policy
    assert np.allclose(np.array([p.env_units for p in result.points]) * 0.9, raw)
    assert np.allclose(table.to_env_units(np.array([p.policy_values for p in result.points])) * 0.9, raw, atol=1e-6)


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
    with pytest.raises(ValueError, match="`gamma` must equal"):
        compare_published_front(deep_sea_treasure(0.9), 0.95)
    with pytest.raises(TypeError, match="`table` must be a MOGymTable"):
        compare_published_front(object())


def test_fingerprints_distinguish_environments_and_discounts():
    fps = {deep_sea_treasure(0.9).fingerprint(), deep_sea_treasure(0.95).fingerprint(),
           deep_sea_treasure(0.9, map="concave").fingerprint(), fruit_tree(5, 0.9).fingerprint()}
    assert len(fps) == 4
    assert isinstance(deep_sea_treasure(0.9), MOGymTable)


class _DiceEnv:
    """A stand-in environment whose step rolls a die with an unsupported method."""

    _np_random = None

    @property
    def np_random(self):
        return self._np_random

    def step(self, action):
        k = self.np_random.integers(6)
        return np.array([k]), np.zeros(1), False, False, {}


def test_unsupported_randomness_is_reported():
    with pytest.raises(UnsupportedRandomness, match="integers"):
        _step_outcomes(_DiceEnv(), lambda env, key: None, (0,), 0)
