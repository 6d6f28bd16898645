"""MO-Gymnasium environments as exact, normalised tabular MOMDPs: :class:`MOGymTable`.

The normalisation (the units of every guarantee) is described in :mod:`oracles.mogym`.
"""

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from palmopt.validation import check_count, check_fraction

from ..tabular import TabularMOMDP
from .adapters import state_key
from .enumeration import enumerate_env

__all__ = [
    "DST_MAPS",
    "MOGymTable",
    "ReadOnlyKwargs",
    "deep_sea_treasure",
    "env_label",
    "fruit_tree",
    "resource_gathering",
]

#: Deep-sea-treasure maps and the MO-Gymnasium ids that register them.
DST_MAPS = {
    "convex": "deep-sea-treasure-v0",
    "concave": "deep-sea-treasure-concave-v0",
    "mirrored": "deep-sea-treasure-mirrored-v0",
}


def env_label(env_id, env_kwargs):
    """``'env-id', key=value, ...``: an environment as the reprs show it.

    Examples
    --------
    >>> print(env_label("fruit-tree-v0", {"depth": 5}))
    'fruit-tree-v0', depth=5
    """
    return repr(env_id) + "".join(f", {k}={v!r}" for k, v in sorted(env_kwargs.items()))


def _readonly(a):
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


class ReadOnlyKwargs:
    """Pickling for frozen results that hold ``env_kwargs`` as a read-only mapping
    (``MappingProxyType`` does not pickle): the mapping travels as a dict; private attributes
    (caches) are left behind."""

    def __getstate__(self):
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        state["env_kwargs"] = dict(state["env_kwargs"])
        return state

    def __setstate__(self, state):
        state = dict(state)
        state["env_kwargs"] = MappingProxyType(dict(state["env_kwargs"]))
        self.__dict__.update(state)


@dataclass(frozen=True, eq=False)
class MOGymTable(ReadOnlyKwargs):
    """An MO-Gymnasium environment as an exact, normalised tabular MOMDP.

    It is an alignment oracle itself (``d``, ``value_range``, ``fingerprint()`` and
    ``table(w)``, all delegated to :attr:`momdp`).

    Attributes
    ----------
    momdp : oracles.tabular.TabularMOMDP
        The normalised MOMDP; state ``k < len(states)`` is ``states[k]``, state
        :attr:`absorbing` is the absorbing state entered on termination.
    env_id : str
        The MO-Gymnasium id; ``env_kwargs`` the keyword arguments given to ``make``.
    gamma : float
        The discount factor.
    states : tuple
        The reachable environment states (tuples of ints: the observation) in BFS order.
    low, high : ndarray, shape (d,)
        Per-step reward bounds (environment units) used by the normalisation.
    scale, offset : ndarray, shape (d,)
        Discounted return in environment units ``G = scale * v + offset`` for a normalised
        value ``v``: ``scale = (high - low) / (1 - gamma)``, ``offset = low / (1 - gamma)``.
    version : str
        The MO-Gymnasium version the table was enumerated from.
    """

    momdp: Any
    env_id: str
    env_kwargs: Mapping[str, Any]
    gamma: float
    states: tuple = field(repr=False)
    low: np.ndarray = field(repr=False)
    high: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)
    offset: np.ndarray = field(repr=False)
    version: str = field(repr=False, default="unknown")

    def __repr__(self):
        return (
            f"MOGymTable({env_label(self.env_id, self.env_kwargs)}, gamma={self.gamma:g}, "
            f"S={self.n_states}, A={self.momdp.n_actions}, d={self.d})"
        )

    @property
    def d(self):
        """Number of objectives."""
        return int(self.low.shape[0])

    @property
    def value_range(self):
        return (0.0, 1.0)

    @property
    def absorbing(self):
        """Index of the absorbing state (``len(states)``)."""
        return len(self.states)

    @property
    def n_states(self):
        """Number of table states, the absorbing one included."""
        return len(self.states) + 1

    def fingerprint(self):
        kw = ",".join(f"{k}={v!r}" for k, v in sorted(self.env_kwargs.items()))
        return f"mogym:{self.env_id}({kw}),gamma={self.gamma!r},mo_gymnasium={self.version}"

    def __call__(self, w):
        return self.momdp(w)

    def evaluate(self, policy):
        """Normalised value vector of a deterministic ``(S,)`` or stochastic ``(S, A)`` policy."""
        return self.momdp.evaluate(policy)

    def save_policy(self, policy, directory):
        return self.momdp.save_policy(policy, directory)

    def load_policy(self, path):
        return self.momdp.load_policy(path)

    def state_index(self, obs):
        """The table index of an environment observation (raises ``KeyError`` if unreachable)."""
        index = self.__dict__.get("_index")
        if index is None:
            index = {s: k for k, s in enumerate(self.states)}
            object.__setattr__(self, "_index", index)
        return index[state_key(obs)]

    def normalise_reward(self, reward):
        """Per-step map ``r' = (r - low) / (high - low)`` (also for the absorbing reward ``0``)."""
        return (np.asarray(reward, dtype=np.float64) - self.low) / (self.high - self.low)

    def to_env_units(self, values):
        """Discounted returns in environment units of normalised ``values`` (shape ``(..., d)``)."""
        return np.asarray(values, dtype=np.float64) * self.scale + self.offset

    def from_env_units(self, returns):
        """Normalised values of discounted returns in environment units (shape ``(..., d)``)."""
        return (np.asarray(returns, dtype=np.float64) - self.offset) / self.scale


def _build(env_id, env_kwargs, gamma):
    gamma = check_fraction(gamma, "gamma", allow_zero=True)
    en = enumerate_env(env_id, tuple(sorted(env_kwargs.items())))
    S, A = len(en.states) + 1, en.n_actions
    absorbing = S - 1
    rewards = np.array([r for row in en.outcomes for outs in row for (_, _, r) in outs], dtype=np.float64)
    d = rewards.shape[1]
    low = np.minimum.reduce([np.asarray(en.declared_low), np.zeros(d), rewards.min(axis=0)])
    high = np.maximum.reduce([np.asarray(en.declared_high), np.zeros(d), rewards.max(axis=0)])
    high = np.where(high > low, high, low + 1.0)  # an objective that is identically 0
    width = high - low
    P = np.zeros((S, A, S))
    R = np.zeros((S, A, d))
    for s, row in enumerate(en.outcomes):
        for a, outs in enumerate(row):
            for p, j, r in outs:
                P[s, a, absorbing if j < 0 else j] += p
                R[s, a] += p * (np.asarray(r) - low) / width
    P[absorbing, :, absorbing] = 1.0
    R[absorbing, :] = -low / width
    # the probabilities of one step are interval lengths that sum to 1 up to rounding
    P /= P.sum(axis=2, keepdims=True)
    R = np.clip(R, 0.0, 1.0)
    mu = np.zeros(S)
    mu[0] = 1.0
    momdp = TabularMOMDP(P, R, gamma, mu)
    return MOGymTable(
        momdp=momdp,
        env_id=env_id,
        env_kwargs=MappingProxyType(dict(env_kwargs)),
        gamma=gamma,
        states=en.states,
        low=_readonly(low),
        high=_readonly(high),
        scale=_readonly(width / (1.0 - gamma)),
        offset=_readonly(low / (1.0 - gamma)),
        version=en.version,
    )


def deep_sea_treasure(gamma, *, map="convex"):
    """Deep-sea-treasure as an exact tabular MOMDP.

    Parameters
    ----------
    gamma : float
        Discount factor in [0, 1).
    map : {"convex", "concave", "mirrored"}, default "convex"
        ``deep-sea-treasure-v0`` (Yang et al. 2019), ``deep-sea-treasure-concave-v0``
        (Vamplew et al. 2018) or ``deep-sea-treasure-mirrored-v0`` (Felten et al. 2022).

    Returns
    -------
    MOGymTable
        Objectives (treasure, time).  Treasure per step in ``[0, max treasure]`` -> ``r / max``
        (absorbing: 0); time ``-1`` per step in ``[-1, 0]`` -> ``r + 1 = 0`` per step and ``1`` in
        the absorbing state, so the normalised time value of an episode of ``T`` steps is
        ``gamma**T`` (and 0 for a policy that never reaches a treasure).

    Examples
    --------
    >>> from oracles.mogym import deep_sea_treasure
    >>> table = deep_sea_treasure(0.9)
    >>> sol = table([0.9, 0.1])            # the 8.2 treasure, 3 steps away
    >>> table.to_env_units(sol.values).round(3).tolist()
    [6.642, -2.71]
    >>> sol.values.round(4).tolist()        # normalised: (0.1 * 0.9**2 * 8.2 / 23.7, 0.9**3)
    [0.028, 0.729]
    """
    if map not in DST_MAPS:
        raise ValueError(f"`map` must be one of {sorted(DST_MAPS)}; got {map!r}.")
    return _build(DST_MAPS[map], {}, gamma)


def fruit_tree(depth, gamma):
    """Fruit-tree (``fruit-tree-v0``) of the given depth as an exact tabular MOMDP.

    Parameters
    ----------
    depth : {5, 6, 7}
        Depth of the binary tree (``2**depth`` fruits, episodes of ``depth`` steps).
    gamma : float
        Discount factor in [0, 1).

    Returns
    -------
    MOGymTable
        Six nutrient objectives, per step in the declared ``[0, 10]`` -> ``r / 10``; the absorbing
        state pays 0.  The environment returns float32 fruit values.
    """
    if check_count(depth, "depth") not in (5, 6, 7):
        raise ValueError(f"`depth` must be 5, 6 or 7; got {depth}.")
    return _build("fruit-tree-v0", {"depth": int(depth)}, gamma)


def resource_gathering(gamma):
    """Resource-gathering (``resource-gathering-v0``) as an exact tabular MOMDP.

    Parameters
    ----------
    gamma : float
        Discount factor in [0, 1).

    Returns
    -------
    MOGymTable
        Objectives (enemy, gold, gem).  Stepping onto an enemy cell ends the episode with reward
        ``(-1, 0, 0)`` with probability 0.1 (derived from the step's use of
        ``np_random.random() < 0.1``); returning home ends it with ``(0, gold, gem)``.  Enemy in
        ``[-1, 0]`` -> ``r + 1`` (so 1 per ordinary step and in the absorbing state, 0 when
        killed); gold and gem in ``[0, 1]`` unchanged.  Note that stepping against the bottom
        wall at home ends the episode at once (the agent "returns" home).
    """
    return _build("resource-gathering-v0", {}, gamma)
