r"""LLM alignment oracles (extra ``llm``: torch, transformers, trl, peft).

* :class:`GRPOOracle` (:mod:`~oracles.llm.grpo`) -- one call ``oracle(w)`` fine-tunes a LoRA
  adapter with TRL's ``GRPOTrainer`` on ``w·r`` and returns its reward vector measured on
  held-out prompts; the policy handle is the adapter directory.
* :class:`LogitMixOracle` (:mod:`~oracles.llm.decoding`) -- decoding-time alignment: ``d``
  specialists decode together with the ``w``-weighted sum of their log-probabilities.
* :func:`generate` (:mod:`~oracles.llm.serving`) -- route a user's ``w`` to a portfolio member
  and generate with its adapter; :func:`load_adapter` loads one.
* :func:`distinct_n`, :func:`member_distinct_n` (:mod:`~oracles.llm.diversity`) -- output
  diversity.
* :mod:`oracles.llm.rewards` -- reward functions, each mapped into ``[0, 1]``.

The other modules are the plumbing: :mod:`~oracles.llm.config` (the configs),
:mod:`~oracles.llm.data` (prompts and weights), :mod:`~oracles.llm.scoring` (rewards checked,
mapped, applied), :mod:`~oracles.llm.hf` (Hugging Face loading and sampling),
:mod:`~oracles.llm.runs` (a call's records, work directory and checkpoints) and
:mod:`~oracles.llm.launch` (one call on several devices with ``accelerate launch``).

Importing this package imports neither torch nor TRL; constructing an oracle does, and says
which extra to install when they are missing.  The oracles leave the caller's state alone: no
tokenizer is modified, the global random generators are seeded only inside a scope that
restores them, and torch's thread count changes only when a config's ``num_threads`` asks.
"""

from .config import GRPOOracleConfig, LogitMixConfig
from .decoding import LogitMixOracle
from .diversity import distinct_n, member_distinct_n
from .grpo import GRPOOracle
from .hf import load_adapter
from .rewards import RewardFunctionError
from .serving import Generation, generate

__all__ = [
    "GRPOOracle",
    "GRPOOracleConfig",
    "Generation",
    "LogitMixConfig",
    "LogitMixOracle",
    "RewardFunctionError",
    "distinct_n",
    "generate",
    "load_adapter",
    "member_distinct_n",
]
