r"""Reward functions as the oracles use them: checked, mapped into ``[0, 1]``, applied, summarised.

Units
-----
Each reward function's output is mapped into ``[0, 1]`` *before* training and evaluation:
``r' = (r - low_i) / (high_i - low_i)`` with ``reward_ranges[i] = (low_i, high_i)`` (default
``(0, 1)``, the identity; the rewards of :mod:`oracles.llm.rewards` are already in ``[0, 1]``).
A value outside its declared range, NaN, ``None`` or a wrong count raises
:class:`~oracles.llm.rewards.RewardFunctionError` naming the function.  So the weights ``w`` act
on exactly the units in which ``V`` is reported.

Evaluation reports, per reward, the mean over the held-out samples and its standard error
clustered by prompt (:func:`summarise`).
"""

import dataclasses
import math

import numpy as np

from .hf import is_torch_module
from .rewards.base import RewardFunctionError, check_reward_output, completion_text, reward_name
from .rewards.classifier import LazyClassifierReward, SequenceClassifierReward

__all__ = ["MappedReward", "prepare_rewards", "summarise"]


class MappedReward:
    """A reward function, checked and mapped into [0, 1]; TRL sees its ``__name__``.

    Examples
    --------
    >>> from oracles.llm.scoring import MappedReward
    >>> score = MappedReward(lambda prompts, completions, **kw: [5.0] * len(completions), "score", 0, 10)
    >>> score(["p"], ["x"])
    [0.5]
    """

    def __init__(self, fn, name, low=0.0, high=1.0):
        self.fn = fn
        self.name = name
        self.__name__ = name
        self.low = float(low)
        self.high = float(high)

    def __call__(self, prompts, completions, **kwargs):
        values = check_reward_output(self.fn(prompts, completions, **kwargs), len(completions), self.name, completions)
        lo, hi = self.low, self.high
        tol = 1e-9 * max(1.0, hi - lo)
        for i, v in enumerate(values):
            if v < lo - tol or v > hi + tol:
                raise RewardFunctionError(
                    f"reward function {self.name!r} returned {v!r} for completion {i} "
                    f"({completion_text(completions[i])[:60]!r}), outside its declared range [{lo:g}, {hi:g}]; "
                    f"declare the range in `reward_ranges` so that it can be mapped into [0, 1].",
                    self.name,
                )
        return [min(1.0, max(0.0, (v - lo) / (hi - lo))) for v in values]

    def __repr__(self):
        return f"MappedReward({self.fn!r}, range=({self.low:g}, {self.high:g}))"


def prepare_rewards(reward_funcs, reward_ranges, tokenizer):
    """``(mapped rewards, ranges)``: each function checked and wrapped in a :class:`MappedReward`.

    A sequence-classification model is wrapped as
    :class:`~oracles.llm.rewards.SequenceClassifierReward` with ``tokenizer``; names are made
    unique (TRL logs per name).
    """
    if callable(reward_funcs) and not isinstance(reward_funcs, (list, tuple)):
        reward_funcs = [reward_funcs]
    reward_funcs = list(reward_funcs)
    if not reward_funcs:
        raise ValueError("`reward_funcs` must hold at least one reward function.")
    d = len(reward_funcs)
    if reward_ranges is None:
        reward_ranges = [(0.0, 1.0)] * d
    reward_ranges = [tuple(map(float, r)) for r in reward_ranges]
    if len(reward_ranges) != d or any(len(r) != 2 or not r[0] < r[1] for r in reward_ranges):
        raise ValueError(f"`reward_ranges` must hold {d} pairs (low, high) with low < high; got {reward_ranges!r}.")
    fns = []
    for i, fn in enumerate(reward_funcs):
        if is_torch_module(fn):
            if tokenizer is None:
                raise TypeError(
                    f"reward function {i} is a model; wrap it as oracles.llm.rewards.SequenceClassifierReward(model, "
                    f"its_tokenizer) (no shared tokenizer is available)."
                )
            fn = SequenceClassifierReward(fn, tokenizer)
        if isinstance(fn, str):
            raise TypeError(
                f"reward function {i} is a string ({fn!r}); load the reward model yourself and pass "
                f"oracles.llm.rewards.SequenceClassifierReward(model, tokenizer)."
            )
        if not callable(fn):
            raise TypeError(f"reward function {i} must be callable; got {type(fn).__name__}.")
        fns.append(fn)
    names = [reward_name(f) for f in fns]
    seen = {}
    for i, n in enumerate(names):  # TRL logs per name: make them unique
        if names.count(n) > 1:
            seen[n] = seen.get(n, 0) + 1
            names[i] = f"{n}_{seen[n]}"
    mapped = tuple(MappedReward(f, n, *r) for f, n, r in zip(fns, names, reward_ranges))
    return mapped, reward_ranges


def reward_spec(rewards):
    """What identifies each mapped reward in a fingerprint: its parameters where its repr shows them, else its name."""
    return [repr(r.fn) if _has_param_repr(r.fn) else r.name for r in rewards]


def _has_param_repr(fn):
    return dataclasses.is_dataclass(fn) or isinstance(fn, (SequenceClassifierReward, LazyClassifierReward))


def preflight(rewards, rows):
    """Call every reward once on two cheap completions so that a broken reward fails before training."""
    probe = rows[:2]
    prompts = [r["prompt"] for r in probe]
    conv = not isinstance(prompts[0], str)
    completions = [[{"role": "assistant", "content": t}] if conv else t for t in ("", "0")[: len(probe)]]
    kwargs = {k: [r[k] for r in probe] for k in probe[0] if k != "prompt"}
    for fn in rewards:
        fn(prompts, completions, completion_ids=[[] for _ in probe], **kwargs, **_trl_extras())


def reward_matrix(rewards, rows, completions, completion_ids, n_samples):
    """(n_prompts * n_samples, d) rewards, prompt-major."""
    prompts = [r["prompt"] for r in rows for _ in range(n_samples)]
    kwargs = {k: [r[k] for r in rows for _ in range(n_samples)] for k in rows[0] if k != "prompt"}
    cols = [fn(prompts, completions, completion_ids=completion_ids, **kwargs, **_trl_extras()) for fn in rewards]
    return np.array(cols, dtype=np.float64).T


def _ignore(*args, **kwargs):
    pass


def _trl_extras():
    """The keyword arguments TRL adds during training, as harmless stand-ins outside it."""
    return {"trainer_state": None, "log_extra": _ignore, "log_metric": _ignore}


def summarise(R, n_prompts, n_samples):
    """Means (clipped to [0, 1]) and prompt-clustered standard errors of a reward matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from oracles.llm.scoring import summarise
    >>> means, se = summarise(np.array([[1.0], [0.0], [1.0], [1.0]]), n_prompts=2, n_samples=2)
    >>> means.tolist(), se.round(3).tolist()
    ([0.75], [0.25])
    """
    means = np.clip(R.mean(axis=0), 0.0, 1.0)
    per_prompt = R.reshape(n_prompts, n_samples, -1).mean(axis=1)
    if n_prompts > 1:
        se = per_prompt.std(axis=0, ddof=1) / math.sqrt(n_prompts)
    elif n_samples > 1:
        se = R.std(axis=0, ddof=1) / math.sqrt(n_samples)
    else:
        se = np.full(R.shape[1], np.nan)
    return means, se
