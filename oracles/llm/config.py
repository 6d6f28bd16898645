r"""Settings of the LLM oracles: :class:`GRPOOracleConfig` and :class:`LogitMixConfig`.

Both are frozen dataclasses that check their fields when built; ``from_dict`` builds one from a
mapping and rejects unknown keys (with a suggestion).  Every field that can change an oracle's
answers enters its fingerprint (:meth:`GRPOOracleConfig.identity`); ``num_threads`` and
``checkpoint_steps`` do not.
"""

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Mapping

from palmopt.validation import check_count, check_real

__all__ = ["GRPOOracleConfig", "LogitMixConfig"]

#: Fields that say how to run, not what to compute: left out of fingerprints.
_RUNTIME_ONLY = ("num_threads", "checkpoint_steps")

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
        "save_steps",
        "save_total_limit",
        "disable_tqdm",
        "logging_steps",
        "top_k",
        "top_p",
    }
)


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


def _check_threads(n):
    if n is not None:
        check_count(n, "num_threads")


@dataclass(frozen=True)
class GRPOOracleConfig:
    r"""Settings of one :class:`~oracles.llm.GRPOOracle` call (training, LoRA, evaluation).

    Build it with keywords, or from a mapping with :meth:`from_dict`, which rejects unknown keys
    (with a suggestion).  Every field but ``num_threads`` and ``checkpoint_steps`` enters the
    oracle's fingerprint (``processes`` only when above 1, so that the fingerprints of
    single-process runs stay what they were before the field existed).

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
        (see :mod:`oracles.llm.grpo`).
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
    eval_backend : {"transformers", "vllm"}
        What samples the evaluation completions: ``transformers``' ``generate`` (default), or
        vLLM (:mod:`oracles.llm.vllm_eval`: the ``vllm`` extra, a CUDA device, the base model as a
        name or path, ``processes = 1``).  Both sample with :meth:`sampling`; vLLM refuses a
        setting it has no exact counterpart for.
    seed : int
        Training seed (passed to TRL: LoRA initialisation, sampling, data order); evaluation
        uses ``seed + 1``.  The caller's random state is left as it was (see
        :func:`oracles.llm.hf.isolated_rng`).
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
    num_threads : int, optional
        CPU threads torch uses during the oracle's own work (a call, :meth:`GRPOOracle.sample`,
        :func:`~oracles.llm.generate` with this oracle); torch's previous setting comes back
        afterwards.  ``None`` (default) leaves torch's setting alone.  Tiny models run several
        times faster on one thread (the OpenMP start-up of each operation dominates).  Not part
        of the fingerprint.
    checkpoint_steps : int, optional
        Save a training checkpoint every ``checkpoint_steps`` optimiser steps (the last two are
        kept) in the call's work directory ``run_dir/calls/<tag>.partial/``; a call killed
        mid-training (``SIGKILL``, pre-emption) is resumed from its latest readable checkpoint
        by the next call at the same weight with the same fingerprint.  ``None`` (default):
        no checkpoints, a killed call starts over.  Not part of the fingerprint.
    processes : int
        Processes (devices) that train one call together: above 1, each call runs under
        ``accelerate launch`` (DDP; see :mod:`oracles.llm.launch`), each process training on
        ``per_device_train_batch_size`` completions per step, so the effective batch is
        ``per_device_train_batch_size * processes * gradient_accumulation_steps``.  The oracle
        then needs a ``rebuild`` recipe.  Part of the fingerprint when above 1.
    trl_args : Mapping
        Further ``trl.GRPOConfig`` arguments (checked against the installed TRL when the oracle
        is built); arguments the oracle owns (``reward_weights``, ``output_dir``, the fields
        above, ...) are refused.
    verbose : bool
        Show TRL's progress and logs.

    Examples
    --------
    >>> from oracles.llm import GRPOOracleConfig
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
    lora_target_modules: str | tuple[str, ...] = "all-linear"
    eval_samples: int = 4
    eval_temperature: float | None = None
    eval_batch_size: int = 64
    eval_backend: str = "transformers"
    seed: int = 0
    warm_start: bool = False
    bf16: bool = False
    gradient_checkpointing: bool = False
    model_dtype: str | None = None
    use_cpu: bool = False
    num_threads: int | None = None
    checkpoint_steps: int | None = None
    processes: int = 1
    trl_args: Mapping[str, Any] = field(default_factory=dict)
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
            "processes",
        ):
            check_count(getattr(self, name), name)
        if self.checkpoint_steps is not None:
            check_count(self.checkpoint_steps, "checkpoint_steps")
        check_count(self.num_generations, "num_generations", minimum=2)
        check_count(self.seed, "seed", minimum=0)
        check_real(self.learning_rate, "learning_rate", strict=True)
        check_real(self.temperature, "temperature", strict=True)
        check_real(self.beta, "beta")
        check_real(self.lora_alpha, "lora_alpha", strict=True)
        check_real(self.lora_dropout, "lora_dropout")
        _check_threads(self.num_threads)
        if self.eval_temperature is not None:
            check_real(self.eval_temperature, "eval_temperature", strict=True)
        if self.eval_backend not in ("transformers", "vllm"):
            raise ValueError(f"`eval_backend` must be 'transformers' or 'vllm'; got {self.eval_backend!r}.")
        if self.eval_backend == "vllm" and self.processes > 1:
            raise ValueError(
                "`eval_backend='vllm'` samples in one process; use `processes=1` or evaluate with transformers."
            )
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

    def identity(self):
        """:meth:`to_dict` without the fields that only say how to run (``num_threads``,
        ``checkpoint_steps``), and without ``processes`` when it is 1: the fingerprint's part."""
        out = {k: v for k, v in self.to_dict().items() if k not in _RUNTIME_ONLY}
        if out["processes"] == 1:
            del out["processes"]
        return out

    def grpo_args(self, w, output_dir, *, pin_memory=False):
        """The ``trl.GRPOConfig`` arguments of a call at weight ``w`` whose trainer writes into ``output_dir``.

        The fields above, the oracle's fixed settings (``top_p = 1``, ``top_k = 0``, ``logging_steps
        = 1``, no reporting), the checkpoint settings (``checkpoint_steps``: ``save_strategy="steps"``,
        the last two kept; else ``"no"``), ``dataloader_pin_memory=pin_memory`` and ``trl_args``.
        """
        extra = {"dataloader_pin_memory": pin_memory, **self.trl_args}
        if self.checkpoint_steps is None:
            extra["save_strategy"] = "no"
        else:  # the last two: if the newest is damaged, the one before it is still there
            extra.update(save_strategy="steps", save_steps=self.checkpoint_steps, save_total_limit=2)
        return dict(
            output_dir=output_dir,
            reward_weights=[float(x) for x in w],
            multi_objective_aggregation=self.multi_objective_aggregation,
            scale_rewards=self.scale_rewards,
            max_steps=self.max_steps,
            learning_rate=self.learning_rate,
            per_device_train_batch_size=self.per_device_train_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            num_generations=self.num_generations,
            max_completion_length=self.max_completion_length,
            temperature=self.temperature,
            top_p=1.0,
            top_k=0,
            beta=self.beta,
            loss_type=self.loss_type,
            seed=self.seed,
            data_seed=self.seed,
            bf16=self.bf16,
            gradient_checkpointing=self.gradient_checkpointing,
            use_cpu=self.use_cpu,
            logging_steps=1,
            report_to="none",
            disable_tqdm=not self.verbose,
            **extra,
        )

    def sampling(self):
        """The sampling settings of training, which evaluation uses too: ``GenerationConfig`` keywords.

        ``temperature`` (``eval_temperature`` when set), ``top_p = 1`` and ``top_k = 0`` as the
        oracle passes them to TRL, then ``min_p``, ``repetition_penalty`` and
        ``generation_kwargs`` from ``trl_args`` exactly as TRL applies them (``generation_kwargs``
        last, overriding the others).  So the evaluated policy is the one that was trained.
        ``repetition_penalty`` is always there (TRL's default 1.0): TRL passes it explicitly,
        and left out, ``generate`` would take the model's own ``generation_config`` value (e.g.
        an instruct model's 1.05) at evaluation only.

        Examples
        --------
        >>> from oracles.llm import GRPOOracleConfig
        >>> GRPOOracleConfig(trl_args={"min_p": 0.1, "repetition_penalty": 1.2}).sampling()
        {'temperature': 1.0, 'top_p': 1.0, 'top_k': 0, 'min_p': 0.1, 'repetition_penalty': 1.2}
        >>> GRPOOracleConfig().sampling()
        {'temperature': 1.0, 'top_p': 1.0, 'top_k': 0, 'repetition_penalty': 1.0}
        """
        out = {"temperature": float(self.eval_temperature or self.temperature), "top_p": 1.0, "top_k": 0}
        if self.trl_args.get("min_p") is not None:  # TRL passes None: the model's own setting, as here
            out["min_p"] = self.trl_args["min_p"]
        penalty = self.trl_args.get("repetition_penalty")
        out["repetition_penalty"] = 1.0 if penalty is None else penalty
        extra = self.trl_args.get("generation_kwargs")
        if isinstance(extra, str):  # TRL accepts a JSON string on the command line
            import json

            extra = json.loads(extra)
        out.update(extra or {})
        return out


@dataclass(frozen=True)
class LogitMixConfig:
    """Settings of :class:`~oracles.llm.LogitMixOracle` (``from_dict`` rejects unknown keys).

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
        Seed of the oracle's own ``torch.Generator`` (no global seeding).
    num_threads : int, optional
        CPU threads torch uses while the oracle decodes (as in :class:`GRPOOracleConfig`;
        ``None`` leaves torch's setting alone).  Not part of the fingerprint.

    Examples
    --------
    >>> from oracles.llm import LogitMixConfig
    >>> LogitMixConfig.from_dict({"max_new_tokens": 8, "sed": 1})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown LogitMixConfig key(s): 'sed' (did you mean 'seed'?). Valid keys: ...
    """

    max_new_tokens: int = 64
    temperature: float = 1.0
    eval_samples: int = 4
    batch_size: int = 64
    seed: int = 0
    num_threads: int | None = None

    def __post_init__(self):
        for name in ("max_new_tokens", "eval_samples", "batch_size"):
            check_count(getattr(self, name), name)
        check_count(self.seed, "seed", minimum=0)
        check_real(self.temperature, "temperature", strict=True)
        _check_threads(self.num_threads)

    @classmethod
    def from_dict(cls, mapping):
        """A config from a mapping; unknown keys raise ``ValueError`` naming them."""
        return _from_mapping(cls, mapping)

    def to_dict(self):
        """The fields as a JSON-friendly dict."""
        return dataclasses.asdict(self)

    def identity(self):
        """:meth:`to_dict` without ``num_threads``: the fingerprint's part."""
        return {k: v for k, v in self.to_dict().items() if k not in _RUNTIME_ONLY}
