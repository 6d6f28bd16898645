"""The reachable states of an MO-Gymnasium environment and the exact outcomes of every step.

A breadth-first search from the reset state sets the unwrapped environment's internal state,
calls ``env.unwrapped.step(a)`` for every action and records what comes back.  Randomness
inside ``step`` is not sampled but *resolved*: the environment's ``np_random`` is replaced by a
:class:`~oracles.mogym.adapters.ScriptedUniform` whose ``random()`` returns chosen numbers,
and the thresholds at which the outcome changes are located by bisection, so the transition
probabilities are derived from the code itself (resource-gathering: an enemy attacks with
probability 0.1, as in its source).
"""

from collections import deque
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .adapters import STATE_ACCESS, ScriptedUniform, UnsupportedRandomness, import_mo_gymnasium, make_env, state_key

__all__ = ["Enumeration", "enumerate_env", "step_outcomes"]

#: Grid on which the outcome of a one-draw step is probed before bisection.
GRID = 256
_BELOW_ONE = float(np.nextafter(1.0, 0.0))


def step_outcomes(env, restore, key, action):
    """All outcomes of ``env.step(action)`` from state ``key``, as ``[(prob, outcome)]``.

    Parameters
    ----------
    env : the unwrapped environment
    restore : callable ``restore(env, key)``
        Writes the state ``key`` into ``env`` (see :data:`~oracles.mogym.adapters.STATE_ACCESS`).
    key : tuple
        The state to step from.
    action : int

    Returns
    -------
    list of (float, tuple)
        ``outcome = (next_key, reward tuple, terminated)`` with its probability; the
        probabilities sum to 1 up to rounding.

    Raises
    ------
    UnsupportedRandomness
        The step drew more than one number, used another random method, or has outcome
        breakpoints closer than ``1 / GRID``.

    Notes
    -----
    A step that draws no random number is deterministic; a step that draws one uniform
    ``u = np_random.random()`` has an outcome that is piecewise constant in ``u``: the pieces are
    found on a grid of ``GRID`` cells and their ends located by bisection to the last float, and
    a piece ``[a, b)`` has probability ``b - a`` (exact up to the 2**-53 resolution of numpy's
    uniform draws).
    """

    def run(u):
        stub = ScriptedUniform(u)
        env._np_random = stub
        restore(env, key)
        obs, reward, terminated, truncated, _ = env.step(action)
        if truncated:
            raise NotImplementedError("the unwrapped environment truncated an episode; the table cannot model that")
        out = (state_key(obs), tuple(float(r) for r in np.asarray(reward, dtype=np.float64).ravel()), bool(terminated))
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

    grid = [k / GRID for k in range(GRID)] + [_BELOW_ONE]
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
class Enumeration:
    """The gamma-independent part of a table: reachable states and step outcomes.

    Attributes
    ----------
    env_id : str
    env_kwargs : tuple
        Sorted ``(name, value)`` pairs given to ``make``.
    states : tuple
        Hashable environment states; index = table state.  The absorbing state entered on
        termination is ``len(states)``.
    n_actions : int
    outcomes : tuple
        ``outcomes[s][a]`` = tuple of ``(prob, next index or -1 for termination, reward tuple)``.
    declared_low, declared_high : tuple of float
        The environment's declared ``reward_space`` bounds (``0`` without one).
    version : str
        The MO-Gymnasium version.
    """

    env_id: str
    env_kwargs: tuple
    states: tuple
    n_actions: int
    outcomes: tuple
    declared_low: tuple
    declared_high: tuple
    version: str


@lru_cache(maxsize=32)
def enumerate_env(env_id, env_kwargs, max_states=100_000):
    """Breadth-first enumeration of the states reachable from the (fixed) reset state.

    Parameters
    ----------
    env_id : str
        A MO-Gymnasium id whose unwrapped class has an entry in
        :data:`~oracles.mogym.adapters.STATE_ACCESS`.
    env_kwargs : tuple
        Sorted ``(name, value)`` pairs for ``make`` (hashable: the result is cached).
    max_states : int, default 100000

    Returns
    -------
    Enumeration

    Raises
    ------
    NotImplementedError
        An unsupported environment, or a random start state.
    RuntimeError
        More than ``max_states`` reachable states, or a state that cannot be restored.
    """
    wrapped = make_env(env_id, env_kwargs)
    env = wrapped.unwrapped
    try:
        name = type(env).__name__
        if name not in STATE_ACCESS:
            raise NotImplementedError(f"no exact table for {name} ({env_id}); supported: {sorted(STATE_ACCESS)}")
        observe, restore = STATE_ACCESS[name]
        starts = {state_key(env.reset(seed=seed)[0]) for seed in (0, 1, 2)}
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
                    for p, (nxt, reward, terminated) in step_outcomes(env, restore, key, a):
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
    return Enumeration(
        env_id=env_id,
        env_kwargs=env_kwargs,
        states=tuple(states),
        n_actions=n_actions,
        outcomes=tuple(outcomes),
        declared_low=tuple(float(x) for x in low),
        declared_high=tuple(float(x) for x in high),
        version=str(getattr(import_mo_gymnasium(), "__version__", "unknown")),
    )
