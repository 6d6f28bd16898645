r"""LLM alignment oracles (extra ``llm``: torch, transformers, trl, peft).

* :class:`GRPOOracle` -- one call ``oracle(w)`` fine-tunes a LoRA adapter with TRL's
  ``GRPOTrainer`` on the weighted reward ``w·r``, then *evaluates* the adapter on held-out
  prompts, each reward separately, and returns the mean reward vector (in ``[0, 1]^d``) with
  its standard errors.  The policy handle is the adapter directory.
* :class:`LogitMixOracle` -- decoding-time alignment: ``d`` single-objective specialists that
  share a tokenizer decode together with the ``w``-weighted sum of their next-token
  log-probabilities; no training per call.
* :func:`generate` -- serving: route a user's ``w`` to a portfolio member and generate with its
  adapter.
* :func:`distinct_n`, :func:`member_distinct_n` -- output diversity (from
  :mod:`oracles.rewards`).

Importing this module imports neither torch nor TRL; constructing an oracle does, and says
which extra to install when they are missing.

Why ``sum_then_normalize`` and ``scale_rewards="none"``
-------------------------------------------------------
TRL's ``GRPOTrainer`` with ``reward_weights=w`` and
``multi_objective_aggregation="sum_then_normalize"`` forms, for completion ``j`` of a prompt's
group, the scalar reward ``R_j = Σ_i w_i r_i(j)`` and the advantage ``A_j = R_j - mean_group(R)``
(``scale_rewards="none"``, Dr. GRPO).  That is a policy-gradient estimate for ``w·V(π)``, the
objective palmopt's guarantees are about.  ``"normalize_then_sum"`` standardises each reward
within the group first, ``Σ_i w_i (r_i - μ_i)/σ_i``: the per-reward scales ``σ_i`` change
from group to group, so it no longer optimises ``w·r`` and is refused.  ``scale_rewards`` may
be set to ``"group"`` or ``"batch"`` (TRL's default is ``"group"``); that divides ``A`` by a
positive number, which keeps the direction of each group's update but reweights prompts (the
question-level difficulty bias of Dr. GRPO), so ``"none"`` is the default here.

Units
-----
Each reward function's output is mapped into ``[0, 1]`` *before* training and evaluation:
``r' = (r - low_i) / (high_i - low_i)`` with ``reward_ranges[i] = (low_i, high_i)`` (default
``(0, 1)``, the identity; the rewards of :mod:`oracles.rewards` are already in ``[0, 1]``).
A value outside its declared range, NaN, ``None`` or a wrong count raises
:class:`~oracles.rewards.RewardFunctionError` naming the function.  So the weights ``w`` act on
exactly the units in which ``V`` is reported.
"""

import dataclasses
import difflib
import gc
import hashlib
import json
import math
import numbers
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from palmopt.oracle import Solution
from .rewards import (
    RewardFunctionError,
    SequenceClassifierReward,
    check_reward_output,
    completion_text,
    distinct_n,
    member_distinct_n,
    reward_name,
)

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

_LLM_PACKAGES = ("torch", "transformers", "trl", "peft", "datasets")
_SOLUTION = "solution.json"


def _require_llm():
    """Import the ``llm`` extra, or raise an ImportError that says how to install it."""
    import importlib

    missing = []
    for name in _LLM_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(
            f"oracles.rlhf needs the `llm` extra (torch, transformers, trl, peft); missing: {', '.join(missing)}. "
            f"Install it with `pip install 'palmopt[llm]'` (install torch first for your hardware)."
        )


def _versions():
    import peft
    import torch
    import transformers
    import trl

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "peft": peft.__version__,
    }


# ------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------


def _from_mapping(cls, mapping):
    if isinstance(mapping, cls):
        return mapping
    if mapping is None:
        return cls()
    if not isinstance(mapping, Mapping):
        raise TypeError(f"`config` must be a {cls.__name__} or a mapping of its fields; got {type(mapping).__name__}.")
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in mapping if k not in names]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(str(k), names, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(f"unknown {cls.__name__} key(s): {', '.join(hints)}. Valid keys: {', '.join(names)}.")
    return cls(**mapping)


def _pos_int(x, name, minimum=1):
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {x!r}.")


def _pos_real(x, name, allow_zero=False):
    ok = (
        isinstance(x, numbers.Real)
        and not isinstance(x, bool)
        and math.isfinite(x)
        and (x >= 0 if allow_zero else x > 0)
    )
    if not ok:
        raise ValueError(f"`{name}` must be a {'non-negative' if allow_zero else 'positive'} finite number; got {x!r}.")


#: GRPOConfig arguments that the oracle sets itself (they are fields of the oracle's config
#: or fixed by its contract) and so may not appear in ``trl_args``.
_OWNED_TRL_ARGS = frozenset(
    {
        "output_dir",
        "reward_weights",
        "multi_objective_aggregation",
        "scale_rewards",
        "max_steps",
        "learning_rate",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "num_generations",
        "max_completion_length",
        "temperature",
        "beta",
        "loss_type",
        "seed",
        "data_seed",
        "bf16",
        "gradient_checkpointing",
        "use_cpu",
        "report_to",
        "save_strategy",
        "disable_tqdm",
        "logging_steps",
        "top_k",
        "top_p",
    }
)


@dataclass(frozen=True)
class GRPOOracleConfig:
    r"""Settings of one :class:`GRPOOracle` call (training, LoRA, evaluation).

    Build it with keywords, or from a mapping with :meth:`from_dict`, which rejects unknown keys
    (with a suggestion).  Every field enters the oracle's fingerprint.

    Parameters
    ----------
    max_steps : int
        Optimiser steps of GRPO per call.
    learning_rate : float
        LoRA learning rate.
    per_device_train_batch_size : int
        Completions per optimiser step (a multiple of ``num_generations``: whole prompt groups).
    gradient_accumulation_steps : int
    num_generations : int >= 2
        Completions sampled per prompt (the GRPO group).
    max_completion_length : int
        Generation limit, in tokens, for training and evaluation.
    temperature : float
        Sampling temperature for training and (by default) evaluation; ``top_p = 1`` and
        ``top_k = 0`` (off), as in TRL.
    beta : float
        KL coefficient against the base model (``0`` loads no reference model).
    loss_type : str
        TRL's loss aggregation (``"dapo"``, ``"dr_grpo"``, ``"grpo"``, ...).
    multi_objective_aggregation : {"sum_then_normalize"}
        Only ``"sum_then_normalize"`` optimises ``w·r``; ``"normalize_then_sum"`` is refused
        (see the module docstring).
    scale_rewards : {"none", "group", "batch"}
        Advantage scaling (``"none"``: Dr. GRPO, the default here).
    lora_r, lora_alpha, lora_dropout : int, int, float
        LoRA rank, scale and dropout.
    lora_target_modules : str or tuple of str
        peft ``target_modules`` (``"all-linear"`` by default).
    eval_samples : int
        Completions sampled per held-out prompt when evaluating the adapter.
    eval_temperature : float, optional
        Evaluation temperature (default: ``temperature``, i.e. the policy that was trained).
    eval_batch_size : int
        Sequences generated per batch during evaluation.
    seed : int
        Training seed (LoRA initialisation, sampling, data order); evaluation uses ``seed + 1``.
    warm_start : bool
        Start each call from the adapter of the nearest (L1 in ``w``) completed call in the run
        directory instead of a fresh LoRA.  Results then depend on the order of calls.
    bf16 : bool
        Mixed-precision bf16 training (GPU).
    gradient_checkpointing : bool
    model_dtype : str, optional
        ``"float32"``, ``"bfloat16"``, ``"float16"`` or ``"auto"`` when loading a base model from a
        path (default: the library default, float32).
    use_cpu : bool
        Train on the CPU even when an accelerator is present.
    trl_args : Mapping
        Further ``trl.GRPOConfig`` arguments (checked against the installed TRL when the oracle
        is built); arguments the oracle owns (``reward_weights``, ``output_dir``, the fields
        above, ...) are refused.
    verbose : bool
        Show TRL's progress and logs.

    Examples
    --------
    >>> from oracles.rlhf import GRPOOracleConfig
    >>> GRPOOracleConfig.from_dict({"max_steps": 10, "learnig_rate": 1e-3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown GRPOOracleConfig key(s): 'learnig_rate' (did you mean 'learning_rate'?). Valid keys: ...
    >>> GRPOOracleConfig(multi_objective_aggregation="normalize_then_sum")
    Traceback (most recent call last):
    ...
    ValueError: `multi_objective_aggregation='normalize_then_sum'` standardises each reward within its group before weighting, so training no longer optimises w·r (the objective palmopt certifies); use 'sum_then_normalize'.
    """

    max_steps: int = 100
    learning_rate: float = 1e-4
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    num_generations: int = 4
    max_completion_length: int = 64
    temperature: float = 1.0
    beta: float = 0.0
    loss_type: str = "dapo"
    multi_objective_aggregation: str = "sum_then_normalize"
    scale_rewards: str = "none"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: Any = "all-linear"
    eval_samples: int = 4
    eval_temperature: float = None
    eval_batch_size: int = 64
    seed: int = 0
    warm_start: bool = False
    bf16: bool = False
    gradient_checkpointing: bool = False
    model_dtype: str = None
    use_cpu: bool = False
    trl_args: Mapping = field(default_factory=dict)
    verbose: bool = False

    def __post_init__(self):
        for name in (
            "max_steps",
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "max_completion_length",
            "lora_r",
            "eval_samples",
            "eval_batch_size",
        ):
            _pos_int(getattr(self, name), name)
        _pos_int(self.num_generations, "num_generations", 2)
        _pos_int(self.seed, "seed", 0)
        _pos_real(self.learning_rate, "learning_rate")
        _pos_real(self.temperature, "temperature")
        _pos_real(self.beta, "beta", allow_zero=True)
        _pos_real(self.lora_alpha, "lora_alpha")
        _pos_real(self.lora_dropout, "lora_dropout", allow_zero=True)
        if self.eval_temperature is not None:
            _pos_real(self.eval_temperature, "eval_temperature")
        if self.multi_objective_aggregation == "normalize_then_sum":
            raise ValueError(
                "`multi_objective_aggregation='normalize_then_sum'` standardises each reward within its group before "
                "weighting, so training no longer optimises w·r (the objective palmopt certifies); use "
                "'sum_then_normalize'."
            )
        if self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError(
                f"`multi_objective_aggregation` must be 'sum_then_normalize'; got {self.multi_objective_aggregation!r}."
            )
        scale = {True: "group", False: "none"}.get(self.scale_rewards, self.scale_rewards)
        if scale not in ("none", "group", "batch"):
            raise ValueError(f"`scale_rewards` must be 'none', 'group' or 'batch'; got {self.scale_rewards!r}.")
        object.__setattr__(self, "scale_rewards", scale)
        batch = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if batch % self.num_generations:
            raise ValueError(
                f"`per_device_train_batch_size * gradient_accumulation_steps` ({batch}) must be a multiple of "
                f"`num_generations` ({self.num_generations}): each step holds whole prompt groups."
            )
        if self.model_dtype not in (None, "auto", "float32", "bfloat16", "float16"):
            raise ValueError(
                f"`model_dtype` must be None, 'auto', 'float32', 'bfloat16' or 'float16'; got {self.model_dtype!r}."
            )
        targets = self.lora_target_modules
        if not isinstance(targets, str):
            object.__setattr__(self, "lora_target_modules", tuple(str(t) for t in targets))
        if not isinstance(self.trl_args, Mapping):
            raise TypeError(f"`trl_args` must be a mapping; got {type(self.trl_args).__name__}.")
        owned = sorted(set(self.trl_args) & _OWNED_TRL_ARGS)
        if owned:
            raise ValueError(
                f"`trl_args` may not set {owned}: the oracle sets them "
                f"(use the config's own fields where there is one)."
            )
        object.__setattr__(self, "trl_args", dict(sorted(self.trl_args.items())))

    @classmethod
    def from_dict(cls, mapping):
        """A config from a mapping; unknown keys raise ``ValueError`` naming them."""
        return _from_mapping(cls, mapping)

    def to_dict(self):
        """The fields as a JSON-friendly dict."""
        out = dataclasses.asdict(self)
        if isinstance(out["lora_target_modules"], tuple):
            out["lora_target_modules"] = list(out["lora_target_modules"])
        return out


@dataclass(frozen=True)
class LogitMixConfig:
    """Settings of :class:`LogitMixOracle` (``from_dict`` rejects unknown keys).

    Parameters
    ----------
    max_new_tokens : int
    temperature : float
        The mixed distribution ``∝ exp(Σ_i w_i log π_i / temperature)`` is sampled.
    eval_samples : int
        Completions per held-out prompt.
    batch_size : int
        Sequences decoded together.
    seed : int
    """

    max_new_tokens: int = 64
    temperature: float = 1.0
    eval_samples: int = 4
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self):
        for name in ("max_new_tokens", "eval_samples", "batch_size"):
            _pos_int(getattr(self, name), name)
        _pos_int(self.seed, "seed", 0)
        _pos_real(self.temperature, "temperature")

    @classmethod
    def from_dict(cls, mapping):
        return _from_mapping(cls, mapping)

    def to_dict(self):
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------------
# Prompts, rewards, weights
# ------------------------------------------------------------------------------------------


def _rows(prompts, name):
    """Prompts as a list of dicts with a ``"prompt"`` key (extra columns kept)."""
    if isinstance(prompts, (str, bytes)) or not hasattr(prompts, "__len__"):
        raise TypeError(f"`{name}` must be a sequence of prompts (strings or dicts with a 'prompt' key).")
    rows = []
    for i, p in enumerate(prompts):
        if isinstance(p, str) or (isinstance(p, (list, tuple)) and p and isinstance(p[0], dict)):
            rows.append({"prompt": p if isinstance(p, str) else list(p)})
        elif isinstance(p, Mapping) and "prompt" in p:
            rows.append(dict(p))
        else:
            raise TypeError(
                f"`{name}[{i}]` must be a string, a conversation (list of messages) or a dict with a 'prompt' key; "
                f"got {type(p).__name__}."
            )
    if not rows:
        raise ValueError(f"`{name}` must hold at least one prompt.")
    keys = set(rows[0])
    for i, r in enumerate(rows):
        if set(r) != keys:
            raise ValueError(
                f"`{name}` rows must share the same columns; row 0 has {sorted(keys)}, row {i} {sorted(r)}."
            )
    return rows


def _digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()


def _is_torch_module(obj):
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, torch.nn.Module)


class _MappedReward:
    """A reward function, checked and mapped into [0, 1]; TRL sees its ``__name__``."""

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
        return f"_MappedReward({self.fn!r}, range=({self.low:g}, {self.high:g}))"


def _prepare_rewards(reward_funcs, reward_ranges, tokenizer):
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
        if _is_torch_module(fn):
            if tokenizer is None:
                raise TypeError(
                    f"reward function {i} is a model; wrap it as oracles.rewards.SequenceClassifierReward(model, "
                    f"its_tokenizer) (no shared tokenizer is available)."
                )
            fn = SequenceClassifierReward(fn, tokenizer)
        if isinstance(fn, str):
            raise TypeError(
                f"reward function {i} is a string ({fn!r}); load the reward model yourself and pass "
                f"oracles.rewards.SequenceClassifierReward(model, tokenizer)."
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
    mapped = tuple(_MappedReward(f, n, *r) for f, n, r in zip(fns, names, reward_ranges))
    return mapped, reward_ranges


def _check_weight(w, d):
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (d,):
        raise ValueError(f"`w` must have shape ({d},); got {w.shape}.")
    if not np.all(np.isfinite(w)) or w.min() < 0 or w.sum() <= 0:
        raise ValueError(f"`w` must be finite, >= 0 and not all zero; got {w.tolist()}.")
    return w / w.sum()


def _weight_tag(w):
    return "w" + "-".join(f"{x:.4f}" for x in w) + "-" + hashlib.sha1(np.ascontiguousarray(w).tobytes()).hexdigest()[:8]


def _preflight(rewards, rows):
    """Call every reward once on two cheap completions so that a broken reward fails before training."""
    probe = rows[:2]
    prompts = [r["prompt"] for r in probe]
    conv = not isinstance(prompts[0], str)
    completions = [[{"role": "assistant", "content": t}] if conv else t for t in ("", "0")[: len(probe)]]
    kwargs = {k: [r[k] for r in probe] for k in probe[0] if k != "prompt"}
    for fn in rewards:
        fn(prompts, completions, completion_ids=[[] for _ in probe], **kwargs, **_trl_extras())


def _reward_matrix(rewards, rows, completions, completion_ids, n_samples):
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


def _summarise(R, n_prompts, n_samples):
    """Means and prompt-clustered standard errors of a reward matrix."""
    means = np.clip(R.mean(axis=0), 0.0, 1.0)
    per_prompt = R.reshape(n_prompts, n_samples, -1).mean(axis=1)
    if n_prompts > 1:
        se = per_prompt.std(axis=0, ddof=1) / math.sqrt(n_prompts)
    elif n_samples > 1:
        se = R.std(axis=0, ddof=1) / math.sqrt(n_samples)
    else:
        se = np.full(R.shape[1], np.nan)
    return means, se


# ------------------------------------------------------------------------------------------
# Models and sampling
# ------------------------------------------------------------------------------------------


def _dtype(name):
    import torch

    return {None: None, "auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        name
    ]


def _build_base(base_model, model_dtype=None):
    """A fresh base model from a path/name or a factory."""
    from transformers import AutoModelForCausalLM

    if isinstance(base_model, (str, os.PathLike)):
        kwargs = {} if model_dtype is None else {"dtype": _dtype(model_dtype)}
        model = AutoModelForCausalLM.from_pretrained(os.fspath(base_model), **kwargs)
    else:
        model = base_model()
        if model_dtype not in (None, "auto"):
            model = model.to(_dtype(model_dtype))
    if any("lora_" in name for name, _ in model.named_modules()):
        raise ValueError(
            "the base model already carries a peft adapter; a factory must return a fresh model on every call "
            "(get_peft_model modifies the model it is given in place)."
        )
    return model


def _load_tokenizer(tokenizer, base_model):
    from transformers import AutoTokenizer

    if tokenizer is None:
        if not isinstance(base_model, (str, os.PathLike)):
            raise TypeError("`tokenizer` is required when `base_model` is a factory rather than a path or a name.")
        tokenizer = os.fspath(base_model)
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AutoTokenizer.from_pretrained(os.fspath(tokenizer))
    elif callable(tokenizer) and not hasattr(tokenizer, "get_vocab"):
        tokenizer = tokenizer()
    if not hasattr(tokenizer, "get_vocab"):
        raise TypeError(
            f"`tokenizer` must be a transformers tokenizer, a path or a factory; got {type(tokenizer).__name__}."
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _tokenizer_id(tokenizer):
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return {
        "name": getattr(tokenizer, "name_or_path", "") or "",
        "vocab": _digest(vocab)[:16],
        "size": len(vocab),
        "chat_template": _digest(getattr(tokenizer, "chat_template", None))[:16],
    }


def _model_id(base_model, model_name):
    if model_name is not None:
        return str(model_name)
    if isinstance(base_model, (str, os.PathLike)):
        return os.fspath(base_model)
    return f"{getattr(base_model, '__module__', '?')}.{getattr(base_model, '__qualname__', type(base_model).__name__)}"


def _prompt_texts(tokenizer, rows):
    out = []
    for r in rows:
        p = r["prompt"]
        out.append(
            p if isinstance(p, str) else tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
        )
    return out


def _encode(tokenizer, texts, conversational):
    """Left-padded batch; a chat template already holds the special tokens (as TRL tokenizes it)."""
    return tokenizer(
        text=texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=not conversational
    )


def _eos_ids(model, tokenizer):
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos = [tokenizer.eos_token_id, *eos]
    return eos


def _trim(ids, eos):
    """Token ids up to and including the first end-of-sequence token (as TRL passes them)."""
    out = []
    for t in ids:
        out.append(int(t))
        if t in eos:
            break
    return out


def _sample(model, tokenizer, rows, n, *, max_new_tokens, temperature, seed, batch_size, do_sample=True):
    """``n`` completions per row, prompt-major: (texts, ids)."""
    import torch
    from transformers import GenerationConfig

    texts = [t for t in _prompt_texts(tokenizer, rows) for _ in range(n)]
    conversational = not isinstance(rows[0]["prompt"], str)
    eos = _eos_ids(model, tokenizer)
    gen = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature if do_sample else None,
        top_p=1.0 if do_sample else None,
        top_k=0 if do_sample else None,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos,
    )
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    out_ids = []
    try:
        for i in range(0, len(texts), batch_size):
            enc = _encode(tokenizer, texts[i : i + batch_size], conversational)
            enc = {k: v.to(device) for k, v in enc.items()}
            with torch.inference_mode():
                seq = model.generate(**enc, generation_config=gen)
            new = seq[:, enc["input_ids"].shape[1] :].cpu().tolist()
            out_ids.extend(_trim(ids, eos) for ids in new)
    finally:
        model.train(was_training)
    decoded = tokenizer.batch_decode(out_ids, skip_special_tokens=True)
    if conversational:
        decoded = [[{"role": "assistant", "content": t}] for t in decoded]
    return decoded, out_ids


# Noise that transformers/TRL raise internally and that says nothing about the user's setup;
# silenced only inside the oracle's own training calls.
_QUIET = (
    (FutureWarning, r".*gradient_checkpointing.* is deprecated"),
    (FutureWarning, r".*is_gradient_checkpointing.* is deprecated"),
)


class _quiet:
    def __enter__(self):
        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        for category, message in _QUIET:
            warnings.filterwarnings("ignore", message=message, category=category)
        return self

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def load_adapter(base_model, adapter, *, model_dtype=None, device=None):
    """A base model with a saved LoRA adapter, ready for generation.

    Parameters
    ----------
    base_model : str or callable
        The base model's path/name, or a factory returning a fresh model.
    adapter : str
        An adapter directory (a :class:`GRPOOracle` policy handle).
    model_dtype : str, optional
        As in :class:`GRPOOracleConfig`.
    device : str or torch.device, optional
        Where to put the model (default: CUDA when available, else CPU).

    Returns
    -------
    peft.PeftModel
        In evaluation mode.
    """
    _require_llm()
    import torch
    from peft import PeftModel

    if not os.path.isfile(os.path.join(os.fspath(adapter), "adapter_config.json")):
        raise FileNotFoundError(f"no LoRA adapter at {adapter!r} (missing adapter_config.json).")
    with _quiet():
        model = PeftModel.from_pretrained(_build_base(base_model, model_dtype), os.fspath(adapter))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval()


# ------------------------------------------------------------------------------------------
# GRPO oracle
# ------------------------------------------------------------------------------------------


class GRPOOracle:
    r"""Alignment oracle: GRPO fine-tuning of a LoRA adapter on ``w·r``, evaluated on held-out prompts.

    Parameters
    ----------
    base_model : str or callable
        A model name or local path (``AutoModelForCausalLM.from_pretrained``), or a factory
        ``() -> PreTrainedModel`` that builds a *fresh* model on every call (seed it inside, so
        that every call starts from the same base).
    reward_funcs : sequence of callables or models, length d
        ``reward(prompts, completions, **columns) -> list[float]`` (TRL's convention; extra
        dataset columns arrive as keyword arguments, and ``completion_ids``), or
        sequence-classification models, which are wrapped as
        :class:`oracles.rewards.SequenceClassifierReward` with the policy's tokenizer (wrap
        them yourself to use another tokenizer or map).
    train_prompts, eval_prompts : sequence
        Strings, conversations, or dicts with a ``"prompt"`` key and extra columns (e.g.
        ``answer`` for :class:`oracles.rewards.AnswerCorrectness`).  The evaluation prompts are
        held out: the returned values come from them, never from training logs.
    run_dir : str
        Where adapters, training logs and evaluation samples go (``run_dir/calls/<weight>/``).
        It may be the same directory as palmopt's run store.
    tokenizer : tokenizer, str or callable, optional
        Default: loaded from ``base_model`` (required for a factory).
    config : GRPOOracleConfig or mapping, optional
    reward_ranges : sequence of (low, high), optional
        Raw range of each reward; outputs are mapped to ``(r - low) / (high - low)`` for training
        and evaluation (default ``(0, 1)`` each).
    model_name : str, optional
        Identifies the base model in the fingerprint (default: the path, or the factory's
        qualified name -- change ``model_name`` whenever the factory changes).
    error : (float, float)
        Declared oracle error ``(eta_mult, eta_add)``, read by :func:`palmopt.adaptive` (its
        certificate then holds for an oracle within that error).  RLHF gives no such bound;
        the default ``(0, 0)`` treats the oracle as exact.

    Attributes
    ----------
    d : int
    value_range : (0.0, 1.0)
    reward_names : tuple of str

    Notes
    -----
    A call ``oracle(w)`` (``w >= 0``, rescaled to sum 1):

    1. builds the base model and a fresh LoRA (or, with ``warm_start``, loads the adapter of
       the nearest completed call);
    2. trains with ``trl.GRPOTrainer(reward_funcs=..., args=GRPOConfig(reward_weights=w,
       multi_objective_aggregation="sum_then_normalize", scale_rewards="none", ...))``;
    3. samples ``eval_samples`` completions per held-out prompt (seed ``seed + 1``) and scores
       them with each reward separately.

    It returns ``Solution(values, policy=adapter_dir, info)`` where ``values[i]`` is the mean
    mapped reward ``i`` and ``info["stderr"][i]`` its standard error (clustered by prompt:
    the standard deviation of per-prompt means over ``sqrt(n_prompts)``).  ``info`` also holds
    the seeds, timings, the library versions and the paths of the training log
    (``train_log.json``) and of the evaluation samples (``eval_samples.json``).  Each call writes
    into a temporary directory that is renamed when complete, so an interrupted call leaves
    nothing half-written; a completed call found in ``run_dir`` (same fingerprint) is
    returned without training again (``info["cached"]``).

    RLHF is an approximate oracle: ``w·V(π_w)`` may fall short of ``OPT(w)``, and ``V`` is an
    estimate with the reported standard errors.

    Examples
    --------
    See ``examples/llm_toy.py`` (a tiny model built from a config, trained on 2 CPU cores) and
    ``docs/llm.md`` (a real model on a GPU).
    """

    value_range = (0.0, 1.0)

    def __init__(
        self,
        base_model,
        reward_funcs,
        train_prompts,
        eval_prompts,
        run_dir,
        *,
        tokenizer=None,
        config=None,
        reward_ranges=None,
        model_name=None,
        error=(0.0, 0.0),
    ):
        _require_llm()
        self.config = GRPOOracleConfig.from_dict(config) if not isinstance(config, GRPOOracleConfig) else config
        if not (isinstance(base_model, (str, os.PathLike)) or callable(base_model)):
            raise TypeError(
                f"`base_model` must be a model name/path or a factory returning a fresh model; "
                f"got {type(base_model).__name__}."
            )
        if not isinstance(run_dir, (str, os.PathLike)):
            raise TypeError(f"`run_dir` must be a directory path; got {type(run_dir).__name__}.")
        self.base_model = base_model
        self.model_name = _model_id(base_model, model_name)
        self.tokenizer = _load_tokenizer(tokenizer, base_model)
        self.train_rows = _rows(train_prompts, "train_prompts")
        self.eval_rows = _rows(eval_prompts, "eval_prompts")
        self.rewards, self.reward_ranges = _prepare_rewards(reward_funcs, reward_ranges, self.tokenizer)
        self.d = len(self.rewards)
        self.reward_names = tuple(r.name for r in self.rewards)
        self.run_dir = os.path.abspath(os.fspath(run_dir))
        self.error = (float(error[0]), float(error[1]))
        self._check_trl_args()
        for rows, name in ((self.train_rows, "train_prompts"), (self.eval_rows, "eval_prompts")):
            missing = {k for k in self.train_rows[0] if k != "prompt"} - set(rows[0])
            if missing:
                raise ValueError(f"`{name}` lacks the column(s) {sorted(missing)} that the other prompts carry.")
        _preflight(self.rewards, self.eval_rows)
        self._fingerprint = self._make_fingerprint()

    # -- identity ------------------------------------------------------------------------

    def _check_trl_args(self):
        from trl import GRPOConfig

        valid = {f.name for f in dataclasses.fields(GRPOConfig)}
        unknown = [k for k in self.config.trl_args if k not in valid]
        if unknown:
            raise ValueError(f"`trl_args` has key(s) {unknown} that the installed trl.GRPOConfig does not know.")

    def _make_fingerprint(self):
        spec = {
            "model": self.model_name,
            "tokenizer": _tokenizer_id(self.tokenizer),
            "rewards": [repr(r.fn) if _has_param_repr(r.fn) else r.name for r in self.rewards],
            "reward_ranges": self.reward_ranges,
            "train_prompts": _digest(self.train_rows),
            "eval_prompts": _digest(self.eval_rows),
            "config": self.config.to_dict(),
        }
        return (
            f"oracles.rlhf.GRPOOracle(model={self.model_name!r}, rewards={list(self.reward_names)}, "
            f"n_train={len(self.train_rows)}, n_eval={len(self.eval_rows)}, spec={_digest(spec)[:16]})"
        )

    def fingerprint(self):
        """Base model, tokenizer, reward functions (names and parameters), prompts (hashes) and config."""
        return self._fingerprint

    def __repr__(self):
        return (
            f"GRPOOracle(d={self.d}, model={self.model_name!r}, rewards={list(self.reward_names)}, "
            f"run_dir={self.run_dir!r})"
        )

    # -- policies ------------------------------------------------------------------------

    def save_policy(self, policy, directory):
        """Copy an adapter directory into ``directory`` (for :meth:`palmopt.Portfolio.save`)."""
        src = os.fspath(policy)
        call_dir = os.path.dirname(os.path.abspath(src))
        dst = os.path.join(directory, os.path.basename(call_dir))
        if os.path.abspath(dst) != os.path.abspath(src):
            shutil.copytree(src, dst, dirs_exist_ok=True)
        return dst

    def load_policy(self, path):
        """The policy handle for a saved adapter: its path."""
        if not os.path.isfile(os.path.join(path, "adapter_config.json")):
            raise FileNotFoundError(f"no LoRA adapter at {path!r}.")
        return os.path.abspath(path)

    def load_model(self, policy, device=None):
        """The base model with the adapter ``policy`` (see :func:`load_adapter`)."""
        return load_adapter(self.base_model, policy, model_dtype=self.config.model_dtype, device=device)

    # -- the call ------------------------------------------------------------------------

    def _calls_dir(self):
        return os.path.join(self.run_dir, "calls")

    def _completed(self):
        """``[(w, call_dir)]`` of completed calls with this oracle's fingerprint."""
        out = []
        root = self._calls_dir()
        if not os.path.isdir(root):
            return out
        for name in sorted(os.listdir(root)):
            path = os.path.join(root, name)
            sol = _read_solution(path)
            if sol is not None and sol.get("fingerprint") == self._fingerprint:
                out.append((np.array(sol["weight"]), path))
        return out

    def history(self):
        """Every completed call in ``run_dir`` with this fingerprint: ``[(w, Solution)]``, oldest first."""
        out = []
        for w, path in self._completed():
            sol = _read_solution(path)
            out.append((os.path.getmtime(os.path.join(path, _SOLUTION)), w, path, sol))
        out.sort(key=lambda t: t[0])
        return [
            (
                w,
                Solution(
                    values=sol["values"], policy=os.path.join(path, "adapter"), info=dict(sol["info"], cached=True)
                ),
            )
            for _, w, path, sol in out
        ]

    def sample(
        self, policy, prompts, *, n=1, do_sample=True, temperature=None, max_new_tokens=None, seed=0, model=None
    ):
        """Completions of ``prompts`` by the adapter ``policy`` (``n`` per prompt, prompt-major).

        Defaults follow the oracle's evaluation (sampling at the evaluation temperature, up to
        ``max_completion_length`` tokens); ``model`` reuses an already loaded
        :meth:`load_model`.
        """
        cfg = self.config
        model = self.load_model(policy) if model is None else model
        texts, _ = _sample(
            model,
            self.tokenizer,
            _rows(prompts, "prompts"),
            n,
            max_new_tokens=max_new_tokens or cfg.max_completion_length,
            temperature=temperature or cfg.eval_temperature or cfg.temperature,
            seed=seed,
            batch_size=cfg.eval_batch_size,
            do_sample=do_sample,
        )
        return texts

    def __call__(self, w):
        w = _check_weight(w, self.d)
        final = os.path.join(self._calls_dir(), _weight_tag(w))
        cached = _read_solution(final)
        if cached is not None and cached.get("fingerprint") == self._fingerprint:
            info = dict(cached["info"], cached=True)
            return Solution(values=cached["values"], policy=os.path.join(final, "adapter"), info=info)
        warm_from = None
        if self.config.warm_start:
            done = [(np.abs(v - w).sum(), p) for v, p in self._completed()]
            if done:
                warm_from = os.path.join(min(done)[1], "adapter")
        os.makedirs(self._calls_dir(), exist_ok=True)
        tmp = f"{final}.tmp-{os.getpid()}-{time.monotonic_ns()}"
        os.makedirs(tmp)
        try:
            values, info = self._train_and_evaluate(w, tmp, warm_from)
            info["adapter"] = os.path.join(final, "adapter")
            for key in ("train_log", "eval_samples"):
                info[key] = os.path.join(final, os.path.basename(info[key]))
            with open(os.path.join(tmp, _SOLUTION), "w") as f:
                json.dump(
                    {"fingerprint": self._fingerprint, "weight": w.tolist(), "values": values.tolist(), "info": info},
                    f,
                    indent=1,
                )
            if os.path.exists(final):
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        return Solution(values=values, policy=info["adapter"], info=dict(info, cached=False))

    def _train_and_evaluate(self, w, out, warm_from):
        import torch
        from datasets import Dataset
        from peft import LoraConfig, PeftModel
        from transformers.trainer_callback import PrinterCallback, ProgressCallback
        from trl import GRPOConfig, GRPOTrainer

        cfg = self.config
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        with _quiet():
            torch.manual_seed(cfg.seed)
            model = _build_base(self.base_model, cfg.model_dtype)
            peft_config = None
            if warm_from is not None:
                model = PeftModel.from_pretrained(model, warm_from, is_trainable=True)
            else:
                peft_config = LoraConfig(
                    r=cfg.lora_r,
                    lora_alpha=cfg.lora_alpha,
                    lora_dropout=cfg.lora_dropout,
                    target_modules=(
                        cfg.lora_target_modules
                        if isinstance(cfg.lora_target_modules, str)
                        else list(cfg.lora_target_modules)
                    ),
                    task_type="CAUSAL_LM",
                )
            extra = {"dataloader_pin_memory": torch.cuda.is_available() and not cfg.use_cpu, **cfg.trl_args}
            args = dict(
                output_dir=os.path.join(out, "trainer"),
                reward_weights=[float(x) for x in w],
                multi_objective_aggregation=cfg.multi_objective_aggregation,
                scale_rewards=cfg.scale_rewards,
                max_steps=cfg.max_steps,
                learning_rate=cfg.learning_rate,
                per_device_train_batch_size=cfg.per_device_train_batch_size,
                gradient_accumulation_steps=cfg.gradient_accumulation_steps,
                num_generations=cfg.num_generations,
                max_completion_length=cfg.max_completion_length,
                temperature=cfg.temperature,
                top_p=1.0,
                top_k=0,
                beta=cfg.beta,
                loss_type=cfg.loss_type,
                seed=cfg.seed,
                data_seed=cfg.seed,
                bf16=cfg.bf16,
                gradient_checkpointing=cfg.gradient_checkpointing,
                use_cpu=cfg.use_cpu,
                logging_steps=1,
                report_to="none",
                save_strategy="no",
                disable_tqdm=not cfg.verbose,
                **extra,
            )
            args = GRPOConfig(**_compatible_args(GRPOConfig, args))
            trainer = GRPOTrainer(
                model=model,
                reward_funcs=list(self.rewards),
                args=args,
                train_dataset=Dataset.from_list(self.train_rows),
                processing_class=self.tokenizer,
                peft_config=peft_config,
            )
            if not cfg.verbose:
                trainer.remove_callback(PrinterCallback)
                trainer.remove_callback(ProgressCallback)
            trainer.train()
            t_train = time.perf_counter() - t0
            policy = trainer.accelerator.unwrap_model(trainer.model)
            policy.save_pretrained(os.path.join(out, "adapter"))
            log = list(trainer.state.log_history)
            with open(os.path.join(out, "train_log.json"), "w") as f:
                json.dump(log, f, indent=1, default=repr)
            shutil.rmtree(os.path.join(out, "trainer"), ignore_errors=True)

            t1 = time.perf_counter()
            eval_seed = cfg.seed + 1
            n = cfg.eval_samples
            completions, ids = _sample(
                policy,
                self.tokenizer,
                self.eval_rows,
                n,
                max_new_tokens=cfg.max_completion_length,
                temperature=cfg.eval_temperature or cfg.temperature,
                seed=eval_seed,
                batch_size=cfg.eval_batch_size,
            )
            R = _reward_matrix(self.rewards, self.eval_rows, completions, ids, n)
            t_eval = time.perf_counter() - t1
        values, se = _summarise(R, len(self.eval_rows), n)
        with open(os.path.join(out, "eval_samples.json"), "w") as f:
            json.dump(
                [
                    {"prompt": self.eval_rows[k // n]["prompt"], "completion": completions[k], "rewards": R[k].tolist()}
                    for k in range(len(completions))
                ],
                f,
                indent=1,
                default=repr,
            )
        peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
        del trainer, policy, model
        if torch.cuda.is_available():
            gc.collect()
            torch.cuda.empty_cache()
        info = {
            "weight": w.tolist(),
            "reward_names": list(self.reward_names),
            "stderr": se.tolist(),
            "stderr_method": "per-prompt means" if len(self.eval_rows) > 1 else "samples",
            "n_eval_prompts": len(self.eval_rows),
            "eval_samples_per_prompt": n,
            "seed": cfg.seed,
            "eval_seed": eval_seed,
            "warm_start_from": warm_from,
            "train_steps": cfg.max_steps,
            "seconds_train": t_train,
            "seconds_eval": t_eval,
            "peak_gpu_bytes": peak,
            "train_log": os.path.join(out, "train_log.json"),
            "eval_samples": os.path.join(out, "eval_samples.json"),
            "versions": _versions(),
        }
        return values, info


def _compatible_args(config_class, args):
    """Map the oracle's GRPOConfig arguments onto the installed TRL's names.

    TRL releases before ``multi_objective_aggregation`` existed (GDPO support, early 2026)
    always summed the weighted rewards before normalising: the argument is dropped there.
    Releases whose ``scale_rewards`` was a boolean take ``False`` for ``"none"`` and ``True``
    for ``"group"``; ``"batch"`` needs a newer TRL.
    """
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    args = dict(args)
    if "multi_objective_aggregation" not in fields:
        args.pop("multi_objective_aggregation")
    scale = fields.get("scale_rewards")
    if scale is not None and isinstance(scale.default, bool):
        if args["scale_rewards"] == "batch":
            raise ValueError("scale_rewards='batch' needs a newer TRL (the installed one takes a boolean).")
        args["scale_rewards"] = args["scale_rewards"] == "group"
    return args


def _has_param_repr(fn):
    return dataclasses.is_dataclass(fn) or isinstance(fn, SequenceClassifierReward)


def _read_solution(call_dir):
    path = os.path.join(call_dir, _SOLUTION)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------------------
# Decoding-time oracle
# ------------------------------------------------------------------------------------------


class LogitMixOracle:
    r"""Decoding-time alignment: sample from the ``w``-weighted geometric mix of ``d`` specialists.

    At each step the next-token distribution is

    .. math::
        π_w(y \mid x) ∝ \exp\Big(\sum_i w_i \log π_i(y \mid x) / T\Big),

    with ``π_i`` the specialist for reward ``i`` (all sharing one tokenizer and vocabulary)
    and ``T`` the temperature.  No training per call: ``oracle(w)`` samples ``eval_samples``
    completions per held-out prompt and scores them with each reward, as
    :class:`GRPOOracle` does; the policy handle is ``w`` itself (an array).  Specialists with
    ``w_i = 0`` are not run.

    Parameters
    ----------
    specialists : sequence of models or paths, length d
        Causal LMs (``PreTrainedModel``/``PeftModel``) or paths loadable by
        ``AutoModelForCausalLM.from_pretrained``; ``specialists[i]`` is the one trained for
        reward ``i``.  Adapters from a :class:`GRPOOracle` load with :func:`load_adapter`.
    tokenizer : tokenizer or str
    reward_funcs : sequence of callables, length d
    eval_prompts : sequence
        As for :class:`GRPOOracle`.
    config : LogitMixConfig or mapping, optional
    reward_ranges : sequence of (low, high), optional
    names : sequence of str, optional
        Identify the specialists in the fingerprint (default: the path, or a digest of an
        in-memory model's weights).

    Notes
    -----
    Mixing log-probabilities is a decoding-time approximation of the policy trained for
    ``w·r`` (exact for KL-regularised objectives whose specialists share one reference model
    and KL weight, up to the normalisation at each step); it costs ``d`` forward passes per
    token and no oracle training, like rewarded-soups weight interpolation.
    """

    value_range = (0.0, 1.0)

    def __init__(
        self, specialists, tokenizer, reward_funcs, eval_prompts, *, config=None, reward_ranges=None, names=None
    ):
        _require_llm()
        from transformers import AutoModelForCausalLM

        self.config = LogitMixConfig.from_dict(config) if not isinstance(config, LogitMixConfig) else config
        specialists = list(specialists)
        self.tokenizer = _load_tokenizer(tokenizer, None) if tokenizer is not None else None
        if self.tokenizer is None:
            raise TypeError("`tokenizer` is required (the specialists must share it).")
        self.rewards, self.reward_ranges = _prepare_rewards(reward_funcs, reward_ranges, self.tokenizer)
        self.d = len(self.rewards)
        self.reward_names = tuple(r.name for r in self.rewards)
        if len(specialists) != self.d:
            raise ValueError(
                f"`specialists` must hold one model per reward function ({self.d}); got {len(specialists)}."
            )
        models, ids = [], []
        for i, s in enumerate(specialists):
            if isinstance(s, (str, os.PathLike)):
                ids.append(os.fspath(s))
                s = AutoModelForCausalLM.from_pretrained(os.fspath(s))
            elif _is_torch_module(s):
                ids.append(f"{type(s).__name__}:{_param_digest(s)}")
            else:
                raise TypeError(f"specialist {i} must be a model or a path; got {type(s).__name__}.")
            models.append(s.eval())
        sizes = {m.get_output_embeddings().weight.shape[0] for m in models if m.get_output_embeddings() is not None}
        if len(sizes) > 1:
            raise ValueError(f"the specialists must share a vocabulary; their output sizes are {sorted(sizes)}.")
        self.models = models
        self.names = tuple(names) if names is not None else tuple(ids)
        if len(self.names) != self.d:
            raise ValueError(f"`names` must hold {self.d} entries; got {len(self.names)}.")
        self.eval_rows = _rows(eval_prompts, "eval_prompts")
        _preflight(self.rewards, self.eval_rows)
        spec = {
            "specialists": list(self.names),
            "tokenizer": _tokenizer_id(self.tokenizer),
            "rewards": [repr(r.fn) if _has_param_repr(r.fn) else r.name for r in self.rewards],
            "reward_ranges": self.reward_ranges,
            "eval_prompts": _digest(self.eval_rows),
            "config": self.config.to_dict(),
        }
        self._fingerprint = (
            f"oracles.rlhf.LogitMixOracle(specialists={list(self.names)}, rewards={list(self.reward_names)}, "
            f"spec={_digest(spec)[:16]})"
        )

    def fingerprint(self):
        """Specialists (names), tokenizer, rewards, prompts (hash) and config."""
        return self._fingerprint

    def __repr__(self):
        return f"LogitMixOracle(d={self.d}, specialists={list(self.names)}, rewards={list(self.reward_names)})"

    def generate(self, w, prompts, *, n=1, max_new_tokens=None, temperature=None, seed=None):
        """Completions of ``prompts`` (``n`` each, prompt-major) decoded with the mix at ``w``."""
        w = _check_weight(w, self.d)
        cfg = self.config
        rows = _rows(prompts, "prompts")
        texts, _ = self._sample(
            w,
            rows,
            n,
            max_new_tokens or cfg.max_new_tokens,
            temperature or cfg.temperature,
            cfg.seed if seed is None else seed,
        )
        return texts

    def _sample(self, w, rows, n, max_new_tokens, temperature, seed):
        import torch

        tok = self.tokenizer
        active = [i for i in range(self.d) if w[i] > 0]
        models = [self.models[i] for i in active]
        weights = [float(w[i]) for i in active]
        device = next(models[0].parameters()).device
        eos = _eos_ids(models[0], tok)
        eos_t = torch.tensor(eos, device=device)
        texts = [t for t in _prompt_texts(tok, rows) for _ in range(n)]
        gen = torch.Generator(device=device).manual_seed(seed)
        cache_kw = [_cache_kwarg(m) for m in models]
        out_ids = []
        bs = self.config.batch_size
        for b in range(0, len(texts), bs):
            enc = _encode(tok, texts[b : b + bs], not isinstance(rows[0]["prompt"], str))
            ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            pasts = [None] * len(models)
            cur_ids, cur_pos = ids, pos
            done = torch.zeros(ids.shape[0], dtype=torch.bool, device=device)
            steps = []
            with torch.inference_mode():
                for _ in range(max_new_tokens):
                    mixed = None
                    for k, m in enumerate(models):
                        o = m(
                            input_ids=cur_ids,
                            attention_mask=mask,
                            position_ids=cur_pos,
                            use_cache=True,
                            **{cache_kw[k]: pasts[k]},
                        )
                        pasts[k] = _returned_cache(o)
                        lp = torch.log_softmax(o.logits[:, -1, :].float(), dim=-1) * weights[k]
                        mixed = lp if mixed is None else mixed + lp
                    probs = torch.softmax(mixed / temperature, dim=-1)
                    nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)
                    nxt = torch.where(done, torch.full_like(nxt, tok.pad_token_id), nxt)
                    steps.append(nxt)
                    done = done | torch.isin(nxt, eos_t)
                    if bool(done.all()):
                        break
                    mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                    cur_pos = cur_pos[:, -1:] + 1
                    cur_ids = nxt[:, None]
            seqs = torch.stack(steps, dim=1).cpu().tolist() if steps else [[] for _ in range(ids.shape[0])]
            out_ids.extend(_trim(s, eos) for s in seqs)
        decoded = tok.batch_decode(out_ids, skip_special_tokens=True)
        if not isinstance(rows[0]["prompt"], str):
            decoded = [[{"role": "assistant", "content": t}] for t in decoded]
        return decoded, out_ids

    def __call__(self, w):
        w = _check_weight(w, self.d)
        cfg = self.config
        n = cfg.eval_samples
        t0 = time.perf_counter()
        completions, ids = self._sample(w, self.eval_rows, n, cfg.max_new_tokens, cfg.temperature, cfg.seed)
        R = _reward_matrix(self.rewards, self.eval_rows, completions, ids, n)
        values, se = _summarise(R, len(self.eval_rows), n)
        info = {
            "weight": w.tolist(),
            "reward_names": list(self.reward_names),
            "stderr": se.tolist(),
            "n_eval_prompts": len(self.eval_rows),
            "eval_samples_per_prompt": n,
            "seed": cfg.seed,
            "seconds_eval": time.perf_counter() - t0,
        }
        return Solution(values=values, policy=w.copy(), info=info)


def _param_digest(model):
    """A short digest of a model's weights (sums and sums of squares of every tensor)."""
    import torch

    with torch.no_grad():
        stats = [
            (name, round(float(p.double().sum()), 6), round(float(p.double().pow(2).sum()), 6))
            for name, p in model.state_dict().items()
            if torch.is_floating_point(p)
        ]
    return _digest(stats)[:12]


def _cache_kwarg(model):
    """The name of the key/value-cache argument (``cache`` from transformers 5.2x on, else ``past_key_values``)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _returned_cache(output):
    cache = output.get("cache") if hasattr(output, "get") else None
    return cache if cache is not None else output.past_key_values


# ------------------------------------------------------------------------------------------
# Serving
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Generation:
    """What :func:`generate` returns.

    Attributes
    ----------
    member : int
        The portfolio member that served ``weight``.
    weight : ndarray, shape (d,)
        The user's weight.
    adapter : str
        The member's adapter directory.
    completions : tuple
        ``n`` completions per prompt, prompt-major.
    """

    member: int
    weight: Any
    adapter: str
    completions: tuple

    def __repr__(self):
        call = os.path.basename(os.path.dirname(self.adapter))
        return f"Generation(member={self.member}, adapter={call!r}, n={len(self.completions)})"


def generate(
    portfolio,
    w,
    prompts,
    *,
    oracle=None,
    base_model=None,
    tokenizer=None,
    n=1,
    max_new_tokens=None,
    do_sample=True,
    temperature=None,
    seed=0,
    batch_size=64,
    cache=None,
):
    """Serve a user: route ``w`` to a portfolio member and generate with its adapter.

    Parameters
    ----------
    portfolio : palmopt.Portfolio
        Built with a :class:`GRPOOracle` (policies are adapter directories).
    w : array_like, shape (d,)
        The user's weight (on the simplex).
    prompts : sequence
        Strings, conversations or dicts with a ``"prompt"`` key.
    oracle : GRPOOracle, optional
        Supplies the base model, tokenizer and generation defaults.
    base_model, tokenizer : optional
        Without ``oracle``: the base model (path or factory) and tokenizer.
    n : int
        Completions per prompt.
    max_new_tokens, temperature : optional
        Default: the oracle's ``max_completion_length`` and ``temperature`` (64 and 1.0 without one).
    do_sample : bool
        Sample (as the oracle evaluated the member) or decode greedily.
    seed : int
    batch_size : int
    cache : dict, optional
        Loaded models by adapter path: a member already in it is not loaded again, and a newly
        loaded one is added (keep one dict per server process).

    Returns
    -------
    Generation
    """
    from palmopt.validation import check_simplex

    W = check_simplex(w, portfolio.d, "w")
    member = int(portfolio.route(W)[0])
    adapter = portfolio.policies[member]
    if not isinstance(adapter, (str, os.PathLike)):
        raise TypeError(f"portfolio member {member}'s policy is {type(adapter).__name__}, not an adapter directory.")
    if oracle is not None:
        base_model = oracle.base_model if base_model is None else base_model
        tokenizer = oracle.tokenizer if tokenizer is None else tokenizer
        max_new_tokens = max_new_tokens or oracle.config.max_completion_length
        temperature = temperature or oracle.config.eval_temperature or oracle.config.temperature
        dtype = oracle.config.model_dtype
    else:
        dtype = None
    key = os.path.abspath(os.fspath(adapter))
    model = None if cache is None else cache.get(key)
    if base_model is None and model is None:
        raise TypeError("give `oracle`, or `base_model` (and `tokenizer`).")
    if tokenizer is None and model is None and not isinstance(base_model, (str, os.PathLike)):
        raise TypeError("`tokenizer` is required when `base_model` is a factory.")
    tok = _load_tokenizer(tokenizer, base_model)
    rows = _rows(prompts, "prompts")
    if model is None:
        model = load_adapter(base_model, adapter, model_dtype=dtype)
        if cache is not None:
            cache[key] = model
    texts, _ = _sample(
        model,
        tok,
        rows,
        n,
        max_new_tokens=max_new_tokens or 64,
        temperature=temperature or 1.0,
        seed=seed,
        batch_size=batch_size,
        do_sample=do_sample,
    )
    return Generation(member=member, weight=W[0].copy(), adapter=os.fspath(adapter), completions=tuple(texts))
