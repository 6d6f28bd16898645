"""MO-Gymnasium environments as exact tabular MOMDPs (extra ``mogym``).

The tables are built through the environments' own API: a breadth-first search from the
reset state sets the unwrapped environment's internal state, calls ``env.unwrapped.step(a)``
for every action and records what comes back.  Randomness inside ``step`` is not sampled but
*resolved*: the environment's ``np_random`` is replaced by a scripted stand-in whose
``random()`` returns chosen numbers, and the thresholds at which the outcome changes are
located by bisection, so the transition probabilities are derived from the code itself
(resource-gathering: an enemy attacks with probability 0.1, as in its source).

Normalisation (the units of every guarantee)
--------------------------------------------
Objective ``i`` has per-step bounds ``[low_i, high_i]``: the environment's declared
``reward_space`` widened to contain ``0`` and every reward seen during the enumeration.  Each
per-step reward is mapped to ``r' = (r - low_i) / (high_i - low_i)`` in ``[0, 1]``.
Termination leads to one absorbing state in which the environment's reward is ``0`` forever,
so its normalised reward is ``-low_i / (high_i - low_i)`` (``1`` for a penalty objective with
``high_i = 0``, such as deep-sea-treasure's time, ``0`` for ``low_i = 0``).  Normalised values
are ``v = (1 - gamma) * E[sum_t gamma^t r'_t]`` in ``[0, 1]``, and the discounted return in the
environment's units is exactly

    G_i = scale_i * v_i + offset_i,   scale_i = (high_i - low_i) / (1 - gamma),
                                     offset_i = low_i / (1 - gamma)

(:meth:`MOGymTable.to_env_units` / :meth:`MOGymTable.from_env_units`).  An additive gap
``delta`` in normalised units is ``scale_i * delta`` in the environment's units.

The tables model the *unwrapped* infinite-horizon dynamics: the ``TimeLimit`` (100 steps for
deep-sea-treasure and resource-gathering) that ``mo_gymnasium.make`` adds is left out, as in
the environments' published fronts.
"""

import warnings
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

__all__ = [
    "MOGymTable",
    "PublishedPoint",
    "PublishedFrontComparison",
    "UnsupportedRandomness",
    "deep_sea_treasure",
    "fruit_tree",
    "resource_gathering",
    "compare_published_front",
    "published_front",
    "published_front_report",
]

#: Deep-sea-treasure maps and the MO-Gymnasium ids that register them.
DST_MAPS = {
    "convex": "deep-sea-treasure-v0",
    "concave": "deep-sea-treasure-concave-v0",
    "mirrored": "deep-sea-treasure-mirrored-v0",
}


def _import_mo_gymnasium():
    try:
        import mo_gymnasium
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "oracles.mogym needs MO-Gymnasium; install the `mogym` extra "
            "(pip install 'palmopt[mogym]') or `pip install mo-gymnasium`."
        ) from exc
    return mo_gymnasium


def _check_gamma(gamma):
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.integer, np.floating)):
        raise TypeError(f"`gamma` must be a real number; got {gamma!r} of type {type(gamma).__name__}.")
    gamma = float(gamma)
    if not (0.0 <= gamma < 1.0):
        raise ValueError(f"`gamma` must be in [0, 1); got {gamma}.")
    return gamma


def _readonly(a):
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _env_label(env_id, env_kwargs):
    return repr(env_id) + "".join(f", {k}={v!r}" for k, v in sorted(env_kwargs.items()))


class _PicklableKwargs:
    """Pickle support for frozen dataclasses holding ``env_kwargs`` as a read-only mapping."""

    def __getstate__(self):
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        state["env_kwargs"] = dict(state["env_kwargs"])
        return state

    def __setstate__(self, state):
        state = dict(state)
        state["env_kwargs"] = MappingProxyType(dict(state["env_kwargs"]))
        self.__dict__.update(state)


# --------------------------------------------------------------------------------------
# What defines each environment's state (read from the MO-Gymnasium 1.3 sources).
# ``observe`` returns the hashable state, ``restore`` writes it back into the unwrapped env.
# --------------------------------------------------------------------------------------


def _key(obs):
    return tuple(int(x) for x in np.asarray(obs).ravel())


def _dst_restore(env, key):
    env.current_state = np.array(key, dtype=np.int32)


def _dst_observe(env):
    return _key(env.current_state)


def _fruit_restore(env, key):
    env.current_state = np.array(key, dtype=np.int32)
    env.terminal = False


def _fruit_observe(env):
    return _key(env.current_state)


def _rg_restore(env, key):
    env.current_pos = np.array(key[:2], dtype=np.int32)
    env.has_gold, env.has_gem = int(key[2]), int(key[3])


def _rg_observe(env):
    return _key(env.get_state())


_STATE_ACCESS = {
    "DeepSeaTreasure": (_dst_observe, _dst_restore),
    "FruitTreeEnv": (_fruit_observe, _fruit_restore),
    "ResourceGathering": (_rg_observe, _rg_restore),
}


# --------------------------------------------------------------------------------------
# Resolving the randomness of one step exactly.
# --------------------------------------------------------------------------------------


class UnsupportedRandomness(NotImplementedError):
    """A step used randomness other than at most one ``np_random.random()`` draw."""


class _ScriptedUniform:
    """Stands in for ``env.np_random``: ``random()`` returns ``value``; anything else raises."""

    def __init__(self, value):
        self.value = value
        self.calls = 0

    def random(self, size=None, dtype=None, out=None):
        if size is not None or dtype is not None or out is not None:
            raise UnsupportedRandomness("np_random.random() was called with arguments")
        self.calls += 1
        return self.value

    def __getattr__(self, name):
        raise UnsupportedRandomness(f"the step used np_random.{name}, which the table builder cannot resolve")


#: Grid on which the outcome of a one-draw step is probed before bisection.
_GRID = 256
_BELOW_ONE = float(np.nextafter(1.0, 0.0))


def _step_outcomes(env, restore, key, action):
    """All outcomes of ``env.step(action)`` from state ``key``, as ``[(prob, outcome)]``.

    ``outcome = (next_key, reward tuple, terminated)``.  A step that draws no random number is
    deterministic; a step that draws one uniform ``u = np_random.random()`` has an outcome that
    is piecewise constant in ``u``: the pieces are found on a grid of ``_GRID`` cells and their
    ends located by bisection to the last float, and a piece ``[a, b)`` has probability
    ``b - a`` (exact up to the 2**-53 resolution of numpy's uniform draws).  Steps with more
    draws, other random methods or breakpoints closer than ``1/_GRID`` are not supported.
    """

    def run(u):
        stub = _ScriptedUniform(u)
        env._np_random = stub
        restore(env, key)
        obs, reward, terminated, truncated, _ = env.step(action)
        if truncated:
            raise NotImplementedError("the unwrapped environment truncated an episode; the table cannot model that")
        out = (_key(obs), tuple(float(r) for r in np.asarray(reward, dtype=np.float64).ravel()), bool(terminated))
        return stub.calls, out

    calls, first = run(0.0)
    if calls == 0:
        return [(1.0, first)]
    if calls > 1:
        raise UnsupportedRandomness(f"one step drew {calls} random numbers; at most one is supported")

    def outcome(u):
        c, out = run(u)
        if c != 1:
            raise UnsupportedRandomness("the number of random draws in one step depends on the draw")
        return out

    grid = [k / _GRID for k in range(_GRID)] + [_BELOW_ONE]
    outs = [outcome(u) for u in grid]
    cuts = [0.0]
    for lo, hi, o_lo, o_hi in zip(grid[:-1], grid[1:], outs[:-1], outs[1:]):
        if o_lo == o_hi:
            continue
        while True:  # invariant: outcome(lo) == o_lo != outcome(hi)
            mid = 0.5 * (lo + hi)
            if mid <= lo or mid >= hi:
                break
            o_mid = outcome(mid)
            if o_mid == o_lo:
                lo = mid
            elif o_mid == o_hi:
                hi = mid
            else:
                raise UnsupportedRandomness("outcome breakpoints closer than the probing grid")
        cuts.append(hi)
    cuts.append(1.0)
    pieces = [o for k, o in enumerate(outs) if k == 0 or o != outs[k - 1]]
    merged = {}
    for (a, b), o in zip(zip(cuts[:-1], cuts[1:]), pieces):
        merged[o] = merged.get(o, 0.0) + (b - a)
    return [(p, o) for o, p in merged.items()]


@dataclass(frozen=True)
class _Enumeration:
    """The gamma-independent part of a table: reachable states and step outcomes."""

    env_id: str
    env_kwargs: tuple
    states: tuple  # hashable env states, index = table state; the absorbing state is len(states)
    n_actions: int
    outcomes: tuple  # outcomes[s][a] = tuple of (prob, next index or -1 for termination, reward tuple)
    declared_low: tuple
    declared_high: tuple
    version: str


@lru_cache(maxsize=32)
def _enumerate(env_id, env_kwargs, max_states=100_000):
    mo_gym = _import_mo_gymnasium()
    with warnings.catch_warnings():  # the envs declare float64 Box bounds that gymnasium casts to float32
        warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
        wrapped = mo_gym.make(env_id, **dict(env_kwargs))
    env = wrapped.unwrapped
    try:
        name = type(env).__name__
        if name not in _STATE_ACCESS:
            raise NotImplementedError(f"no exact table for {name} ({env_id}); supported: {sorted(_STATE_ACCESS)}")
        observe, restore = _STATE_ACCESS[name]
        starts = {_key(env.reset(seed=seed)[0]) for seed in (0, 1, 2)}
        if len(starts) != 1:
            raise NotImplementedError(f"{env_id} has a random start state; only a fixed start is supported")
        (start,) = starts
        n_actions = int(env.action_space.n)
        index = {start: 0}
        states = [start]
        outcomes = []
        queue = deque([start])
        saved_rng = env.np_random
        try:
            while queue:
                key = queue.popleft()
                restore(env, key)
                if observe(env) != key:
                    raise RuntimeError(f"could not restore the state {key} of {env_id}")
                per_action = []
                for a in range(n_actions):
                    row = []
                    for p, (nxt, reward, terminated) in _step_outcomes(env, restore, key, a):
                        if terminated:
                            j = -1
                        else:
                            if nxt not in index:
                                if len(states) >= max_states:
                                    raise RuntimeError(f"{env_id} has more than {max_states} reachable states")
                                index[nxt] = len(states)
                                states.append(nxt)
                                queue.append(nxt)
                            j = index[nxt]
                        row.append((p, j, reward))
                    per_action.append(tuple(row))
                outcomes.append(tuple(per_action))
        finally:
            env._np_random = saved_rng
        space = getattr(env, "reward_space", None)
        d = len(outcomes[0][0][0][2])
        low = tuple(np.broadcast_to(np.asarray(space.low, dtype=np.float64), (d,))) if space is not None else (0.0,) * d
        high = tuple(np.broadcast_to(np.asarray(space.high, dtype=np.float64), (d,))) if space is not None else (0.0,) * d
    finally:
        wrapped.close()
    return _Enumeration(
        env_id=env_id,
        env_kwargs=env_kwargs,
        states=tuple(states),
        n_actions=n_actions,
        outcomes=tuple(outcomes),
        declared_low=tuple(float(x) for x in low),
        declared_high=tuple(float(x) for x in high),
        version=str(getattr(mo_gym, "__version__", "unknown")),
    )


# --------------------------------------------------------------------------------------
# The table.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MOGymTable(_PicklableKwargs):
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
            f"MOGymTable({_env_label(self.env_id, self.env_kwargs)}, gamma={self.gamma:g}, "
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
        return index[_key(obs)]

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
    from .tabular import TabularMOMDP

    gamma = _check_gamma(gamma)
    en = _enumerate(env_id, tuple(sorted(env_kwargs.items())))
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
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
        raise TypeError(f"`depth` must be an integer; got {depth!r} of type {type(depth).__name__}.")
    if depth not in (5, 6, 7):
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




# --------------------------------------------------------------------------------------
# Published fronts.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PublishedPoint:
    """One point of an environment's published front, checked against the exact table.

    Attributes
    ----------
    env_units : ndarray, shape (d,)
        The published discounted return (after the ``discount_shift`` correction).
    values : ndarray, shape (d,)
        The same point in normalised units.
    achieved : bool or None
        Some deterministic stationary policy has this value within ``atol``; ``None`` when the
        mixed-integer search hit its time limit undecided.
    policy : ndarray of int64, shape (S,) or None
        Such a policy (a witness), when ``achieved``.
    policy_values : ndarray, shape (d,) or None
        The witness's exact normalised value.
    gap : float
        ``max_w (w·q - OPT(w))`` over the simplex, where ``q`` is the witness's value when
        achieved and the published point otherwise.  ``>= -tol``: ``q`` is optimal for some
        weight; ``> atol``: the published point beats every policy at ``weight``.
    weight : ndarray, shape (d,)
        A maximiser of that gap.
    in_ccs : bool
        ``achieved`` and the witness is optimal for some weight (it belongs to the exact convex
        coverage set; a point that only ties at a weight with zero entries counts).
    """

    env_units: np.ndarray
    values: np.ndarray
    achieved: Any
    policy: Any
    policy_values: Any
    gap: float
    weight: np.ndarray
    in_ccs: bool

    def __repr__(self):
        pt = np.array2string(self.env_units, precision=4, separator=", ")
        return f"PublishedPoint({pt}, achieved={self.achieved}, in_ccs={self.in_ccs}, gap={self.gap:.3g})"


@dataclass(frozen=True, eq=False)
class PublishedFrontComparison(_PicklableKwargs):
    """An environment's published front, point by point, against the exact table.

    Attributes
    ----------
    env_id : str
    env_kwargs : Mapping
    gamma : float
    discount_shift : int
        The published points were multiplied by ``gamma ** -discount_shift`` before the check.
    n_published, n_achieved, n_in_ccs, n_undecided : int
        Points published; achieved by a deterministic policy; achieved by a policy of the exact
        convex coverage set; left undecided by the time limit.
    points : tuple of PublishedPoint
    oracle_calls : int
        Calls of the exact oracle spent on the support checks.
    """

    env_id: str
    env_kwargs: Mapping[str, Any]
    gamma: float
    discount_shift: int
    n_published: int
    n_achieved: int
    n_in_ccs: int
    n_undecided: int
    points: tuple = field(repr=False)
    oracle_calls: int = field(repr=False, default=0)

    def __repr__(self):
        shift = f", discount_shift={self.discount_shift}" if self.discount_shift else ""
        undecided = f", undecided={self.n_undecided}" if self.n_undecided else ""
        return (
            f"PublishedFrontComparison({_env_label(self.env_id, self.env_kwargs)}, gamma={self.gamma:g}{shift}, "
            f"published={self.n_published}, achieved={self.n_achieved}, in_ccs={self.n_in_ccs}{undecided})"
        )


class _FrontChecker:
    """Support tests and deterministic-policy searches on one table, sharing their work."""

    def __init__(self, table, tol, max_calls):
        m = table.momdp
        self.table = table
        self.P, self.R, self.mu, self.gamma = m.P, m.R, m.mu, float(m.gamma)
        self.tol = tol
        self.max_calls = max_calls
        self.calls = 0
        self.U = [self._oracle_values(np.eye(table.d)[i]) for i in range(table.d)]
        self._milp_parts = None

    def _oracle(self, w):
        if self.calls >= self.max_calls:
            raise RuntimeError(f"the published-front check used more than {self.max_calls} oracle calls")
        self.calls += 1
        return self.table(w)

    def _oracle_values(self, w):
        return np.asarray(self._oracle(w).values, dtype=np.float64)

    def support(self, q):
        """``max_{w in simplex} (w·q - OPT(w))`` and a maximiser, by outer approximation.

        ``U`` holds values of achievable policies, so ``g_U(w) = w·q - max_{u in U} w·u`` bounds
        ``w·q - OPT(w)`` from above.  Each round solves the LP ``t = max_w g_U(w)`` and queries
        the exact oracle at its maximiser ``w``: if ``w·q - OPT(w) >= t - tol`` the bound is
        attained (up to ``tol``) and ``w`` is the answer; otherwise the oracle's value beats every
        ``u`` in ``U`` at ``w``, so it is new and joins ``U``.  Deterministic values are finitely
        many, so the loop ends.
        """
        from scipy.optimize import linprog

        d = q.shape[0]
        while True:
            V = np.array(self.U)
            res = linprog(
                np.r_[np.zeros(d), -1.0],
                A_ub=np.hstack([V - q[None, :], np.ones((len(V), 1))]),
                b_ub=np.zeros(len(V)),
                A_eq=np.r_[np.ones(d), 0.0][None, :],
                b_eq=[1.0],
                bounds=[(0.0, 1.0)] * d + [(None, None)],
                method="highs",
            )
            if res.status != 0:  # pragma: no cover - feasible and bounded by construction
                raise RuntimeError(f"support LP failed: {res.message}")
            w = np.clip(res.x[:d], 0.0, None)
            w /= w.sum()
            t = max(float(-res.fun), float(np.min((q[None, :] - V) @ w)))
            u = self._oracle_values(w)
            gap = float(w @ (q - u))
            if gap >= t - self.tol:
                return gap, w
            self.U.append(u)

    def optimal_actions(self, w):
        """Mask ``(S, A)`` of the actions optimal for ``w`` (Q-values within 1e-9 of the best)."""
        sol = self._oracle(w)
        vw = self.table.momdp.value_function(sol.policy) @ w
        Q = self.R @ w + self.gamma * (self.P @ vw)
        best = Q.max(axis=1, keepdims=True)
        return Q >= best - 1e-9 * (1.0 + np.abs(best))

    def _parts(self):
        """The pieces of the mixed-integer program shared by every search on this table."""
        if self._milp_parts is None:
            from scipy import sparse

            from .tabular import TabularMOMDP

            P, R, mu, g = self.P, self.R, self.mu, self.gamma
            S, A, d = R.shape
            n = S * A
            E = sparse.kron(sparse.eye(S), np.ones((1, A))).tocsr()  # (S, S*A): sums over actions
            flow = (E - g * sparse.csr_matrix(P.reshape(n, S).T)).tocsr()
            # tightest big-M: the largest normalised occupancy of each state over all policies
            hits = TabularMOMDP(P, np.broadcast_to(np.eye(S)[:, None, :], (S, A, S)), g, mu)
            M = np.array([hits(np.eye(S)[s]).values[s] for s in range(S)])
            M = np.repeat(np.minimum(M + 1e-9, 1.0), A)
            Z = sparse.csr_matrix((S, n))
            self._milp_parts = (
                (sparse.hstack([flow, Z]).tocsr(), (1 - g) * mu),
                sparse.hstack([sparse.csr_matrix(R.reshape(n, d).T), sparse.csr_matrix((d, n))]).tocsr(),
                sparse.hstack([sparse.eye(n), -sparse.diags(M)]).tocsr(),
                sparse.hstack([Z, E]).tocsr(),
                M,
            )
        return self._milp_parts

    def find_policy(self, q, atol, allowed=None, time_limit=None):
        """A deterministic policy with value ``q`` within ``atol``: ``(policy, values, decided)``.

        Mixed-integer feasibility over normalised discounted occupancies ``x[s, a]`` with one
        action per state (``x[s, a] <= M_s z[s, a]``, ``z`` binary, ``sum_a z[s, a] = 1``,
        ``M_s`` the largest occupancy of ``s``): a deterministic policy's occupancy satisfies
        these and, conversely, the actions picked by ``z`` induce ``x``.  The candidate is
        re-evaluated exactly and accepted only within ``atol``; ``allowed`` restricts actions.
        """
        from scipy.optimize import Bounds, LinearConstraint, milp

        (flow, rhs), value, link, pick, M = self._parts()
        S, A, _ = self.R.shape
        n = S * A
        upper = np.r_[M, np.ones(n)]
        if allowed is not None:
            upper = upper * np.tile(allowed.ravel(), 2)
        window = 0.5 * atol
        res = milp(
            np.zeros(2 * n),
            constraints=[
                LinearConstraint(flow, rhs, rhs),
                LinearConstraint(value, q - window, q + window),
                LinearConstraint(link, -np.inf, 0.0),
                LinearConstraint(pick, 1.0, 1.0),
            ],
            integrality=np.r_[np.zeros(n), np.ones(n)],
            bounds=Bounds(0.0, upper),
            options={} if time_limit is None else {"time_limit": float(time_limit)},
        )
        if res.x is None:
            return None, None, res.status == 2  # 2: proven infeasible
        policy = np.argmax(res.x[n:].reshape(S, A), axis=1).astype(np.int64)
        values = np.asarray(self.table.evaluate(policy), dtype=np.float64)
        if np.max(np.abs(values - q)) <= atol:
            return policy, values, True
        return None, None, False  # the solver's point does not survive exact evaluation


def compare_published_front(
    table, gamma=None, *, discount_shift=0, atol=1e-6, tol=1e-9, time_limit=120.0, max_oracle_calls=10_000
):
    """Check an environment's published front against its exact table.

    For each point of ``env.unwrapped.pareto_front(gamma)`` (converted to normalised units):
    is it the value of some deterministic stationary policy, and is that policy optimal for some
    weight, i.e. in the exact convex coverage set?

    Parameters
    ----------
    table : MOGymTable
    gamma : float, optional
        Must equal ``table.gamma`` when given (the published front depends on it).
    discount_shift : int, default 0
        Multiply the published points by ``gamma ** -discount_shift`` first.  ``1`` corrects a
        front computed with ``gamma**t`` for the reward of step ``t = 1, 2, ...``, as
        resource-gathering-v0's (MO-Gymnasium 1.3): its points are then all achieved.
    atol : float, default 1e-6
        Tolerance (normalised units) for "achieved": published fronts are float64 while the
        environments return float32 rewards.
    tol : float, default 1e-9
        Tolerance of the support test ``w·q >= OPT(w) - tol``.
    time_limit : float or None, default 120
        Seconds allowed to each mixed-integer search; a point it leaves open gets
        ``achieved=None``.
    max_oracle_calls : int, default 10000

    Returns
    -------
    PublishedFrontComparison

    Raises
    ------
    ValueError
        If the environment publishes no front, or ``gamma`` differs from ``table.gamma``.

    Notes
    -----
    *Achieved*: a mixed-integer feasibility problem over discounted occupancies with one action
    per state; a witness policy is re-evaluated exactly.  A point whose support gap exceeds
    ``atol`` beats ``OPT`` somewhere and is rejected without it; a supported point is searched
    among the actions optimal at its support weight first.  *In the CCS*: the witness's exact
    value ``q`` satisfies ``max_w (w·q - OPT(w)) >= -tol``, decided by an outer-approximation
    loop of small LPs around the exact oracle (no sampling of weights, no enumeration of
    ``A**S`` policies).

    Examples
    --------
    >>> from oracles.mogym import compare_published_front, deep_sea_treasure
    >>> result = compare_published_front(deep_sea_treasure(0.95))
    >>> result.n_published, result.n_achieved, result.n_in_ccs
    (10, 10, 6)
    """
    if not isinstance(table, MOGymTable):
        raise TypeError(f"`table` must be a MOGymTable; got {type(table).__name__}.")
    if gamma is not None and _check_gamma(gamma) != table.gamma:
        raise ValueError(f"`gamma` must equal the table's gamma {table.gamma}; got {gamma}.")
    if isinstance(discount_shift, bool) or not isinstance(discount_shift, (int, np.integer)):
        raise TypeError(f"`discount_shift` must be an integer; got {discount_shift!r}.")
    published = published_front(table) * table.gamma ** (-int(discount_shift))
    checker = _FrontChecker(table, float(tol), int(max_oracle_calls))
    points = []
    for g in published:
        v = table.from_env_units(g)
        gap, w = checker.support(v)
        policy = pv = None
        achieved = False
        if gap <= atol:  # otherwise v beats OPT(w) by more than atol: not achievable
            decided = False
            if gap >= -atol:
                policy, pv, decided = checker.find_policy(v, atol, checker.optimal_actions(w), time_limit)
            if policy is None:
                policy, pv, decided = checker.find_policy(v, atol, None, time_limit)
            achieved = True if policy is not None else (False if decided else None)
        if pv is not None:
            gap, w = checker.support(pv)
        for a in (g, v, w) + (() if pv is None else (pv, policy)):
            a.setflags(write=False)
        points.append(PublishedPoint(g, v, achieved, policy, pv, gap, w, bool(achieved) and gap >= -tol))
    return PublishedFrontComparison(
        env_id=table.env_id,
        env_kwargs=table.env_kwargs,
        gamma=table.gamma,
        discount_shift=int(discount_shift),
        n_published=len(points),
        n_achieved=sum(p.achieved is True for p in points),
        n_in_ccs=sum(p.in_ccs for p in points),
        n_undecided=sum(p.achieved is None for p in points),
        points=tuple(points),
        oracle_calls=checker.calls,
    )


def published_front(table):
    """The environment's published front at ``table.gamma``, environment units, shape (n, d).

    Raises ``ValueError`` when the environment has no ``pareto_front`` method.
    """
    mo_gym = _import_mo_gymnasium()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
        env = mo_gym.make(table.env_id, **dict(table.env_kwargs))
    try:
        front_fn = getattr(env.unwrapped, "pareto_front", None)
        if front_fn is None:
            raise ValueError(f"{table.env_id} publishes no front (it has no `pareto_front` method).")
        return np.array([np.asarray(p, dtype=np.float64) for p in front_fn(table.gamma)]).reshape(-1, table.d)
    finally:
        env.close()


def published_front_report(gammas=(0.9, 0.95, 0.99), **options):
    """:func:`compare_published_front` for every supported environment and discount.

    For each ``gamma``: deep-sea-treasure on its three maps, fruit-tree at depths 5, 6 and 7,
    and resource-gathering twice (``discount_shift=0``, as published, and ``1``, corrected).
    ``options`` go to :func:`compare_published_front`.  Returns a list of
    :class:`PublishedFrontComparison`.
    """
    out = []
    for g in gammas:
        tables = [deep_sea_treasure(g, map=m) for m in DST_MAPS] + [fruit_tree(k, g) for k in (5, 6, 7)]
        out += [compare_published_front(t, **options) for t in tables]
        rg = resource_gathering(g)
        out += [compare_published_front(rg, discount_shift=s, **options) for s in (0, 1)]
    return out
