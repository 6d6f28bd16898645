r"""What every reward function shares: the calling convention, its checks, and its errors.

A reward function follows TRL's convention, a plain callable

    ``reward(prompts, completions, **kwargs) -> list[float]``

with one value per completion.  Extra dataset columns (a GSM8K ``answer``, a list of
``required`` words, ...) arrive as keyword arguments, one entry per completion.  Completions
are strings, or conversations (lists of ``{"role", "content"}`` messages) whose assistant
turns are read (:func:`completion_text`).
"""

import math
import numbers

__all__ = ["RewardFunctionError", "check_reward_output", "completion_text", "reward_name"]


class RewardFunctionError(ValueError):
    """A reward function returned something unusable; the message names the function."""

    def __init__(self, message, name=None):
        super().__init__(message)
        self.reward_name = name


def reward_name(fn):
    """The display name of a reward function: its ``name`` attribute, ``__name__``, or class name.

    Examples
    --------
    >>> from oracles.llm.rewards import Brevity, reward_name
    >>> def exact(prompts, completions, **kw):
    ...     return [1.0] * len(completions)
    >>> reward_name(exact), reward_name(Brevity(10))
    ('exact', 'brevity')
    """
    name = getattr(fn, "name", None)
    if isinstance(name, str) and name:
        return name
    while hasattr(fn, "func") and hasattr(fn, "args"):  # functools.partial
        fn = fn.func
    return getattr(fn, "__name__", type(fn).__name__)


def completion_text(completion):
    """The text of one completion: a string as is; a conversation's assistant turns joined.

    Examples
    --------
    >>> from oracles.llm.rewards import completion_text
    >>> completion_text([{"role": "assistant", "content": "42"}])
    '42'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        parts = [
            m.get("content", "")
            for m in completion
            if isinstance(m, dict) and m.get("role", "assistant") == "assistant"
        ]
        return "\n".join(str(p) for p in parts)
    raise TypeError(f"a completion must be a string or a list of messages; got {type(completion).__name__}.")


def check_reward_output(values, n, name, completions=None):
    """Validate one reward function's output: ``n`` finite real numbers.

    Parameters
    ----------
    values : sequence
        What the reward function returned.
    n : int
        The number of completions it was given.
    name : str
        The reward function's name (used in the error message).
    completions : sequence, optional
        The completions, quoted in the message when a value is bad.

    Returns
    -------
    list of float

    Raises
    ------
    RewardFunctionError
        Wrong length, ``None``, a non-number, NaN or an infinity.

    Examples
    --------
    >>> from oracles.llm.rewards import check_reward_output
    >>> check_reward_output([0.5, float("nan")], 2, "judge", ["a", "b"])
    Traceback (most recent call last):
    ...
    oracles.llm.rewards.base.RewardFunctionError: reward function 'judge' returned nan for completion 1 ('b'); rewards must be finite numbers.
    """
    try:
        values = list(values)
    except TypeError:
        raise RewardFunctionError(
            f"reward function {name!r} returned {type(values).__name__}, not a sequence of {n} numbers.", name
        ) from None
    if len(values) != n:
        raise RewardFunctionError(
            f"reward function {name!r} returned {len(values)} values for {n} completions; it must return one "
            f"reward per completion.",
            name,
        )
    out = []
    for i, v in enumerate(values):
        if hasattr(v, "item") and getattr(v, "ndim", 0) == 0:  # numpy / torch scalars
            v = v.item()
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool)
        if not ok or not math.isfinite(float(v)):
            shown = "" if completions is None else f" ({shorten(completion_text(completions[i]))!r})"
            raise RewardFunctionError(
                f"reward function {name!r} returned {v!r} for completion {i}{shown}; rewards must be finite numbers.",
                name,
            )
        out.append(float(v))
    return out


def shorten(text, n=60):
    """``text`` cut to ``n`` characters (an ellipsis marks the cut), for error messages."""
    return text if len(text) <= n else text[: n - 3] + "..."


def column(kwargs, key, n, name):
    """Dataset column ``key`` from a reward's keyword arguments: ``n`` entries, or an error naming the reward."""
    if key not in kwargs or kwargs[key] is None:
        raise KeyError(
            f"reward function {name!r} needs the dataset column {key!r} (one entry per completion); "
            f"got columns {sorted(k for k in kwargs if not k.startswith(('trainer_', 'log_')))}."
        )
    col = list(kwargs[key])
    if len(col) != n:
        raise ValueError(f"reward function {name!r}: column {key!r} has {len(col)} entries for {n} completions.")
    return col
