"""What the table builder needs to know about each MO-Gymnasium environment.

Per environment class (read from the MO-Gymnasium 1.3 sources): ``observe`` returns the
hashable state of the unwrapped environment, ``restore`` writes one back.  And the stand-in
for ``env.np_random`` through which the randomness of a step is scripted instead of sampled.
"""

import warnings

import numpy as np

__all__ = [
    "STATE_ACCESS",
    "ScriptedUniform",
    "UnsupportedRandomness",
    "import_mo_gymnasium",
    "make_env",
    "state_key",
]


def import_mo_gymnasium():
    """The ``mo_gymnasium`` module, or an ImportError that names the extra to install."""
    try:
        import mo_gymnasium
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "oracles.mogym needs MO-Gymnasium; install the `mogym` extra "
            "(pip install 'palmopt[mogym]') or `pip install mo-gymnasium`."
        ) from exc
    return mo_gymnasium


def make_env(env_id, env_kwargs=()):
    """``mo_gymnasium.make(env_id, **env_kwargs)`` (wrappers included), without the float32 warning.

    The environments declare float64 ``Box`` bounds that gymnasium casts to float32, with a
    warning on every ``make``.
    """
    mo_gym = import_mo_gymnasium()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
        return mo_gym.make(env_id, **dict(env_kwargs))


def state_key(obs):
    """A hashable state: the observation's entries as a tuple of ints.

    Examples
    --------
    >>> state_key(np.array([[1, 2], [3, 4]], dtype=np.int32))
    (1, 2, 3, 4)
    """
    return tuple(int(x) for x in np.asarray(obs).ravel())


def _dst_restore(env, key):
    env.current_state = np.array(key, dtype=np.int32)


def _dst_observe(env):
    return state_key(env.current_state)


def _fruit_restore(env, key):
    env.current_state = np.array(key, dtype=np.int32)
    env.terminal = False


def _fruit_observe(env):
    return state_key(env.current_state)


def _rg_restore(env, key):
    env.current_pos = np.array(key[:2], dtype=np.int32)
    env.has_gold, env.has_gem = int(key[2]), int(key[3])


def _rg_observe(env):
    return state_key(env.get_state())


#: Unwrapped environment class name -> ``(observe(env), restore(env, key))``.
STATE_ACCESS = {
    "DeepSeaTreasure": (_dst_observe, _dst_restore),
    "FruitTreeEnv": (_fruit_observe, _fruit_restore),
    "ResourceGathering": (_rg_observe, _rg_restore),
}


class UnsupportedRandomness(NotImplementedError):
    """A step used randomness other than at most one ``np_random.random()`` draw."""


class ScriptedUniform:
    """Stands in for ``env.np_random``: ``random()`` returns ``value``; anything else raises.

    Attributes
    ----------
    value : float
        What every ``random()`` call returns.
    calls : int
        How many times ``random()`` was called.

    Examples
    --------
    >>> rng = ScriptedUniform(0.25)
    >>> rng.random(), rng.calls
    (0.25, 1)
    >>> rng.integers(6)
    Traceback (most recent call last):
    ...
    oracles.mogym.adapters.UnsupportedRandomness: the step used np_random.integers, which the table builder cannot resolve
    """

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
