r"""Reward functions for LLM oracles, each mapped into ``[0, 1]`` (the units of every palmopt guarantee).

Every reward follows TRL's convention for reward functions (:mod:`~oracles.llm.rewards.base`):
``reward(prompts, completions, **kwargs) -> list[float]``, one value per completion, extra
dataset columns as keyword arguments.  Each reward here is a small object with a ``name``
(used by :class:`oracles.llm.GRPOOracle` for logs and run-store fingerprints) and a repr that
shows its parameters.

================================  ====================================================================
:class:`Brevity`                  ``1 - (min(L, max_length) / max_length) ** power``, ``L`` the length
                                  in words, characters or tokens (:mod:`~oracles.llm.rewards.text`)
:class:`Coverage`                 ``(found / required) ** power``: share of the required words present
:class:`FormatCompliance`         one pattern: ``1`` if it matches the whole completion, else ``0``;
                                  several: the share of patterns found
:class:`AnswerCorrectness`        ``1`` if the final answer equals the reference (numerically), else ``0``
                                  (:mod:`~oracles.llm.rewards.math`)
:class:`SequenceClassifierReward` ``sigmoid((logit - shift) / scale)``, or ``(logit - low) / (high - low)``
                                  for declared bounds (:mod:`~oracles.llm.rewards.classifier`)
:class:`LazyClassifierReward`     a reward model named by path, loaded on first use (never pickled);
                                  ``±logit`` calibrated into ``[0, 1]``, out-of-range values clipped and counted
================================  ====================================================================

Nothing here imports torch at module import time; only :class:`SequenceClassifierReward` needs
it, when called.
"""

from .base import RewardFunctionError, check_reward_output, completion_text, reward_name
from .classifier import LazyClassifierReward, SequenceClassifierReward
from .math import GSM8K_FORMAT, AnswerCorrectness, extract_final_answer
from .text import Brevity, Coverage, FormatCompliance

__all__ = [
    "AnswerCorrectness",
    "Brevity",
    "Coverage",
    "FormatCompliance",
    "GSM8K_FORMAT",
    "LazyClassifierReward",
    "RewardFunctionError",
    "SequenceClassifierReward",
    "check_reward_output",
    "completion_text",
    "extract_final_answer",
    "reward_name",
]
