"""The published-front study (bench/published_fronts.py) against the exact tables."""

import os
import sys

import numpy as np
import pytest

pytest.importorskip("mo_gymnasium", reason="oracles.mogym needs MO-Gymnasium (install the `mogym` extra)")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

from oracles.mogym import DST_MAPS, deep_sea_treasure, fruit_tree, resource_gathering  # noqa: E402
from published_fronts import compare_published_front, published_front  # noqa: E402

from .mogym.rollouts import HORIZON, make_env, rollout  # noqa: E402


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


def test_compare_published_front_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`gamma` must equal"):
        compare_published_front(deep_sea_treasure(0.9), 0.95)
    with pytest.raises(TypeError, match="`table` must be a MOGymTable"):
        compare_published_front(object())
    with pytest.raises(TypeError, match="`discount_shift` must be an integer"):
        compare_published_front(deep_sea_treasure(0.9), discount_shift=0.5)
    with pytest.raises(ValueError, match="`max_calls` must be >= 1"):
        compare_published_front(deep_sea_treasure(0.9), max_calls=0)


def test_the_study_module_doctests_pass():
    """bench/ is outside the doctest paths: its examples run here."""
    import doctest

    import published_fronts

    result = doctest.testmod(published_fronts, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
