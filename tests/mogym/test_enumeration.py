"""Exact step outcomes (oracles.mogym.enumeration): randomness resolved from the code."""

import numpy as np
import pytest

pytest.importorskip("mo_gymnasium", reason="oracles.mogym needs MO-Gymnasium (install the `mogym` extra)")

from oracles.mogym import UnsupportedRandomness, resource_gathering  # noqa: E402
from oracles.mogym.enumeration import step_outcomes  # noqa: E402

from .rollouts import GAMMA  # noqa: E402


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
        step_outcomes(_DiceEnv(), lambda env, key: None, (0,), 0)
