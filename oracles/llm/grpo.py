r"""The GRPO alignment oracle: one call ``oracle(w)`` = one LoRA fine-tuning run on ``w·r``.

:class:`GRPOOracle` fine-tunes a LoRA adapter with TRL's ``GRPOTrainer`` on the weighted reward
``w·r``, then *evaluates* the adapter on held-out prompts, each reward separately, and returns
the mean reward vector (in ``[0, 1]^d``) with its standard errors.  The policy handle is the
adapter directory; completed calls are kept on disk (``run_dir/calls/<weight>/``) and answer
repeated calls with the same fingerprint.

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
"""

import copy
import dataclasses
import hashlib
import json
import os
import shutil
import time

import numpy as np

from palmopt.oracle import Solution
from palmopt.validation import check_count

from .config import GRPOOracleConfig
from . import vllm_eval
from .data import check_weight, digest, prompt_rows
from .hf import (
    build_base,
    free_gpu_memory,
    isolated_rng,
    load_adapter,
    load_tokenizer,
    quiet,
    require_llm,
    sample,
    tokenizer_id,
    torch_threads,
    versions,
    with_pad_token,
)
from .runs import (
    PARTIAL,
    SOLUTION,
    PartialCall,
    _anchor_reference_to_base,
    _check_error,
    _commit,
    _model_id,
    _read_solution,
    _remove_orphans,
    _solution,
    _train_completion_tokens,
    _weight_tag,
)
from .scoring import prepare_rewards, preflight, reward_matrix, reward_spec, summarise

__all__ = ["GRPOOracle"]



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
        :class:`oracles.llm.rewards.SequenceClassifierReward` with the policy's tokenizer (wrap
        them yourself to use another tokenizer or map).
    train_prompts, eval_prompts : sequence
        Strings, conversations, or dicts with a ``"prompt"`` key and extra columns (e.g.
        ``answer`` for :class:`oracles.llm.rewards.AnswerCorrectness`).  The evaluation prompts
        are held out: the returned values come from them, never from training logs.
    run_dir : str
        Where adapters, training logs and evaluation samples go (``run_dir/calls/<weight>/``).
        It may be the same directory as palmopt's run store.
    tokenizer : tokenizer, str or callable, optional
        Default: loaded from ``base_model`` (required for a factory).  A tokenizer object is
        not modified; one without a pad token is copied for training (TRL pads with
        end-of-sequence), and ``oracle.tokenizer`` is that copy.
    config : GRPOOracleConfig or mapping, optional
    reward_ranges : sequence of (low, high), optional
        Raw range of each reward; outputs are mapped to ``(r - low) / (high - low)`` for training
        and evaluation (default ``(0, 1)`` each; see :mod:`oracles.llm.scoring`).
    model_name : str, optional
        Identifies the base model in the fingerprint (default: the path, or the factory's
        qualified name -- change ``model_name`` whenever the factory changes).
    error : (float, float) or None
        Declared oracle error ``(eta_mult, eta_add)``, read by :func:`palmopt.adaptive` (its
        certificate then holds for an oracle within that error).  RLHF gives no such bound, so
        the default ``None`` declares nothing: certificates are then stated *relative to the
        oracle's answers* (the policies it found), not to the true optimum.
    rebuild : tuple, optional
        How another process rebuilds this oracle, needed when ``config.processes > 1`` (each call
        then runs under ``accelerate launch``, whose processes build their own copy).  The one
        recipe: ``("experiment", config_path, smoke, out)``, the arguments of
        :func:`oracles.llm.experiment.build_oracle` (which sets it); plain data, never the name of
        code to import.  See :mod:`oracles.llm.launch`.

    Attributes
    ----------
    d : int
    value_range : (0.0, 1.0)
    reward_names : tuple of str
    seed : int
        The training seed (``config.seed``); :meth:`with_seed` gives the same oracle with another
        one (replicated calls at one weight measure seed-to-seed variation).

    Notes
    -----
    A call ``oracle(w)`` (``w >= 0``, rescaled to sum 1):

    1. builds the base model and a fresh LoRA (or, with ``warm_start``, loads the adapter of
       the nearest completed call);
    2. trains with ``trl.GRPOTrainer(reward_funcs=..., args=GRPOConfig(reward_weights=w,
       multi_objective_aggregation="sum_then_normalize", scale_rewards="none", seed=seed, ...))``;
    3. samples ``eval_samples`` completions per held-out prompt (seed ``seed + 1``) and scores
       them with each reward separately.

    It returns ``Solution(values, policy=adapter_dir, info, stderr)`` where ``values[i]`` is the
    mean mapped reward ``i`` and ``stderr[i]`` its standard error (clustered by prompt: the
    standard deviation of per-prompt means over ``sqrt(n_prompts)``).  ``info`` also holds
    the seeds, the cost (``device``, ``seconds``, ``tokens_generated``), the library versions and
    the paths of the training log (``train_log.json``) and of the evaluation samples
    (``eval_samples.json``).  Evaluation samples with exactly the training's sampling settings
    (:meth:`GRPOOracleConfig.sampling`: temperature, ``min_p``, ``repetition_penalty``,
    ``generation_kwargs``), so the evaluated policy is the trained one.  :meth:`evaluate`
    re-evaluates a policy independently, with more samples.  Each call writes
    into a temporary directory that is renamed when complete, so an interrupted call leaves
    nothing half-written; a completed call found in ``run_dir`` (same fingerprint) is
    returned without training again (``info["cached"]``).  ``config.checkpoint_steps``: a killed
    call resumes from its checkpoints (:class:`~oracles.llm.runs.PartialCall`);
    ``config.processes > 1``: a call trains on several devices (:mod:`oracles.llm.launch`).

    TRL seeds the global random generators of torch, numpy and Python when a trainer is built;
    the call runs inside :func:`oracles.llm.hf.isolated_rng`, so the caller's random state is
    the same after a call as before it.

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
        error=None,
        rebuild=None,
    ):
        require_llm()
        from .launch import check_rebuild  # here, not at the top: `python -m oracles.llm.launch` runs it fresh

        self.config = GRPOOracleConfig.from_dict(config)
        self.rebuild = check_rebuild(rebuild, self.config.processes)
        if not (isinstance(base_model, (str, os.PathLike)) or callable(base_model)):
            raise TypeError(
                f"`base_model` must be a model name/path or a factory returning a fresh model; "
                f"got {type(base_model).__name__}."
            )
        if not isinstance(run_dir, (str, os.PathLike)):
            raise TypeError(f"`run_dir` must be a directory path; got {type(run_dir).__name__}.")
        self.base_model = base_model
        self.model_name = _model_id(base_model, model_name)
        self.tokenizer = with_pad_token(load_tokenizer(tokenizer, base_model))
        self.train_rows = prompt_rows(train_prompts, "train_prompts")
        self.eval_rows = prompt_rows(eval_prompts, "eval_prompts")
        self.rewards, self.reward_ranges = prepare_rewards(reward_funcs, reward_ranges, self.tokenizer)
        self.d = len(self.rewards)
        self.reward_names = tuple(r.name for r in self.rewards)
        self.run_dir = os.path.abspath(os.fspath(run_dir))
        self.error = _check_error(error)
        self._check_trl_args()
        if len(self.eval_rows) * self.config.eval_samples < 2:
            raise ValueError(
                "one held-out prompt with `eval_samples=1` gives no standard error; use more prompts or samples."
            )
        for rows, name in ((self.train_rows, "train_prompts"), (self.eval_rows, "eval_prompts")):
            missing = {k for k in self.train_rows[0] if k != "prompt"} - set(rows[0])
            if missing:
                raise ValueError(f"`{name}` lacks the column(s) {sorted(missing)} that the other prompts carry.")
        preflight(self.rewards, self.eval_rows)
        self._fingerprint = self._make_fingerprint()

    # -- identity ------------------------------------------------------------------------

    def _check_trl_args(self):
        from trl import GRPOConfig

        valid = {f.name for f in dataclasses.fields(GRPOConfig)}
        unknown = [k for k in self.config.trl_args if k not in valid]
        if unknown:
            raise ValueError(f"`trl_args` has key(s) {unknown} that the installed trl.GRPOConfig does not know.")
        uses_vllm = self.config.trl_args.get("use_vllm") or self.config.eval_backend == "vllm"
        if uses_vllm and not isinstance(self.base_model, (str, os.PathLike)):
            raise ValueError(
                "`use_vllm=True` and `eval_backend='vllm'` need the base model as a name or path (vLLM loads it "
                "itself, by `name_or_path`); a model factory has none -- save the model and pass its directory."
            )

    def _make_fingerprint(self):
        spec = {
            "model": self.model_name,
            "tokenizer": tokenizer_id(self.tokenizer),
            "rewards": reward_spec(self.rewards),
            "reward_ranges": self.reward_ranges,
            "train_prompts": digest(self.train_rows),
            "eval_prompts": digest(self.eval_rows),
            "config": self.config.identity(),
        }
        return (
            f"oracles.llm.GRPOOracle(model={self.model_name!r}, rewards={list(self.reward_names)}, "
            f"n_train={len(self.train_rows)}, n_eval={len(self.eval_rows)}, spec={digest(spec)[:16]})"
        )

    def fingerprint(self):
        """Base model, tokenizer, reward functions (names and parameters), prompts (hashes) and config."""
        return self._fingerprint

    def __repr__(self):
        return (
            f"GRPOOracle(d={self.d}, model={self.model_name!r}, rewards={list(self.reward_names)}, "
            f"run_dir={self.run_dir!r})"
        )

    @property
    def seed(self):
        """The training seed (``config.seed``)."""
        return self.config.seed

    def with_seed(self, seed):
        """The same oracle with training seed ``seed`` (and evaluation seed ``seed + 1``).

        It shares the run directory (calls of different seeds live side by side) and has its own
        fingerprint, so replicated calls at one weight are separate results in a run store.
        """
        other = copy.copy(self)
        other.config = dataclasses.replace(self.config, seed=check_count(seed, "seed", minimum=0))
        other._fingerprint = other._make_fingerprint()
        return other

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
        """The base model with the adapter ``policy`` (see :func:`~oracles.llm.load_adapter`)."""
        return load_adapter(self.base_model, policy, model_dtype=self.config.model_dtype, device=device)

    # -- the disk cache ------------------------------------------------------------------

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
            out.append((os.path.getmtime(os.path.join(path, SOLUTION)), w, path, sol))
        out.sort(key=lambda t: t[0])
        return [(w, _solution(sol, path)) for _, w, path, sol in out]

    # -- sampling and the call -----------------------------------------------------------

    def sample(
        self, policy, prompts, *, n=1, do_sample=True, temperature=None, max_new_tokens=None, seed=0, model=None
    ):
        """Completions of ``prompts`` by the adapter ``policy`` (``n`` per prompt, prompt-major).

        Defaults follow the oracle's evaluation (:meth:`GRPOOracleConfig.sampling`, up to
        ``max_completion_length`` tokens; ``temperature`` overrides its temperature); ``model``
        reuses an already loaded
        :meth:`load_model`.  ``seed`` seeds this sampling only (the caller's random state is
        left as it was).
        """
        cfg = self.config
        with torch_threads(cfg.num_threads):
            model = self.load_model(policy) if model is None else model
            texts, _ = sample(
                model,
                self.tokenizer,
                prompt_rows(prompts, "prompts"),
                n,
                max_new_tokens=max_new_tokens or cfg.max_completion_length,
                temperature=temperature or cfg.sampling()["temperature"],
                seed=seed,
                batch_size=cfg.eval_batch_size,
                do_sample=do_sample,
                generation_kwargs={**cfg.sampling(), **({"temperature": temperature} if temperature else {})},
            )
        return texts

    def __call__(self, w):
        w = check_weight(w, self.d)
        final = os.path.join(self._calls_dir(), self._call_tag(w))
        cached = self._cached(final)
        if cached is not None:
            return cached
        os.makedirs(self._calls_dir(), exist_ok=True)
        _remove_orphans(final)
        with PartialCall(final + PARTIAL) as partial:  # waits while another live process runs this call
            cached = self._cached(final)
            if cached is not None:
                return cached
            partial.prepare(self._fingerprint, w, self._completed() if self.config.warm_start else [])
            tmp = f"{final}.tmp-{os.getpid()}-{time.monotonic_ns()}"
            os.makedirs(tmp)
            try:
                if self.config.processes > 1:
                    from .launch import launch_call

                    launch_call(self, w, tmp, final)
                else:
                    self._run_call(w, final, tmp)
            finally:
                if os.path.exists(tmp):
                    shutil.rmtree(tmp, ignore_errors=True)
        sol = _solution(_read_solution(final), final)
        return dataclasses.replace(sol, info=dict(sol.info, cached=False))

    def _cached(self, final):
        """The completed call in ``final`` with this fingerprint (a Solution), or ``None``."""
        record = _read_solution(final)
        if record is not None and record.get("fingerprint") == self._fingerprint:
            return _solution(record, final)
        return None

    def _run_call(self, w, final, tmp, started=None):
        """Train and evaluate the call at ``w`` as prepared in its work directory; write it into ``tmp``,
        then rename ``tmp`` to ``final``.

        Run by the calling process, or by every process of a launched call (:mod:`oracles.llm.launch`):
        all train together, and only the main process saves, evaluates and writes.  ``started``
        (a ``time.time()``) makes ``info["cost"]["seconds"]`` the wall time since then.
        """
        plan = PartialCall(final + PARTIAL).read()
        with torch_threads(self.config.num_threads):
            result = self._train_and_evaluate(w, tmp, final + PARTIAL, plan["warm_start_from"], plan["resume_from"])
        if result is None:  # not the main process
            return
        values, se, info = result
        if started is not None:
            info["cost"]["seconds"] = time.time() - started
        info["adapter"] = os.path.join(final, "adapter")
        for key in ("train_log", "eval_samples"):
            info[key] = os.path.join(final, os.path.basename(info[key]))
        record = {"fingerprint": self._fingerprint, "weight": w.tolist(), "values": values.tolist()}
        _commit(tmp, final, dict(record, stderr=se.tolist(), info=info))

    def _call_tag(self, w):
        """The call directory's name: the weight, and the fingerprint's digest (oracles that differ,
        e.g. in the seed, never overwrite each other's adapters)."""
        return f"{_weight_tag(w)}-{hashlib.sha1(self._fingerprint.encode()).hexdigest()[:8]}"

    def _sample_and_score(self, model, n, seed, adapter=None):
        """``(R, completions, ids, device)``: ``n`` samples per held-out prompt (vLLM, ``adapter``, if no ``model``)."""
        cfg = self.config
        sampler = vllm_eval.sampler(self.base_model, adapter, model_dtype=cfg.model_dtype) if model is None else sample
        completions, ids = sampler(
            model,
            self.tokenizer,
            self.eval_rows,
            n,
            max_new_tokens=cfg.max_completion_length,
            temperature=cfg.sampling()["temperature"],
            seed=seed,
            batch_size=cfg.eval_batch_size,
            generation_kwargs=cfg.sampling(),
        )
        R = reward_matrix(self.rewards, self.eval_rows, completions, ids, n)
        return R, completions, ids, "vllm" if model is None else str(next(model.parameters()).device)

    def evaluate(self, policy, *, repeats=1, seed=None):
        """A fresh, independent evaluation of the adapter ``policy``: a :class:`~palmopt.oracle.Solution`.

        Samples ``repeats * eval_samples`` completions per held-out prompt with the training's
        sampling settings and a fresh seed, and scores them like a call does.  The standard
        errors are clustered by prompt, as in a call: the part due to sampling shrinks like
        ``1/sqrt(repeats)``; the part due to which prompts were held out does not (it is fixed
        by ``eval_prompts``; pass more held-out prompts to shrink it).

        Parameters
        ----------
        policy : str
            An adapter directory (a call's ``Solution.policy``).
        repeats : int
            Evaluation effort, in multiples of a call's.
        seed : int, optional
            The sampling seed; default: a fresh one from the operating system (recorded in
            ``info["eval_seed"]``), so repeated evaluations are independent.
        """

        repeats = check_count(repeats, "repeats")
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**31))
        seed = check_count(seed, "seed", minimum=0)
        cfg = self.config
        n = cfg.eval_samples * repeats
        t0 = time.perf_counter()
        with torch_threads(cfg.num_threads), quiet():
            model = None if cfg.eval_backend == "vllm" else self.load_model(policy)
            R, completions, ids, device = self._sample_and_score(model, n, seed, policy)
        del model
        free_gpu_memory()
        values, se = summarise(R, len(self.eval_rows), n)
        seconds = time.perf_counter() - t0
        info = {
            "policy": os.fspath(policy),
            "reward_names": list(self.reward_names),
            "repeats": repeats,
            "n_eval_prompts": len(self.eval_rows),
            "eval_samples_per_prompt": n,
            "eval_seed": seed,
            "sampling": cfg.sampling(),
            "cost": {"device": device, "seconds": seconds, "tokens_generated": int(sum(len(x) for x in ids))},
        }
        return Solution(values=values, policy=policy, info=info, stderr=se)

    def _train(self, w, out, work, warm_from, resume_from):
        """Train the adapter of a call; the main process saves it and the training log into ``out``.

        The trainer writes its checkpoints into ``work`` and resumes from ``resume_from`` (a
        checkpoint directory, or ``None``); it restores the random states saved with it.  Returns
        ``(model, is_main_process)``.

        Runs inside :func:`~oracles.llm.hf.isolated_rng` seeded with ``seed``: the base model's
        factory and TRL (which seeds the global generators itself, from ``GRPOConfig.seed``) see
        the same random state as before, and the caller's state comes back afterwards.
        """
        import torch
        from datasets import Dataset
        from peft import LoraConfig, PeftModel
        from transformers.trainer_callback import PrinterCallback, ProgressCallback
        from trl import GRPOConfig, GRPOTrainer

        cfg = self.config
        model = build_base(self.base_model, cfg.model_dtype)
        peft_config = None
        if warm_from is not None:
            model = PeftModel.from_pretrained(model, warm_from, is_trainable=True)
        else:
            targets = cfg.lora_target_modules
            peft_config = LoraConfig(
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                lora_dropout=cfg.lora_dropout,
                target_modules=targets if isinstance(targets, str) else list(targets),
                task_type="CAUSAL_LM",
            )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=list(self.rewards),
            args=GRPOConfig(**cfg.grpo_args(w, work, pin_memory=torch.cuda.is_available() and not cfg.use_cpu)),
            train_dataset=Dataset.from_list(self.train_rows),
            processing_class=self.tokenizer,
            peft_config=peft_config,
        )
        if warm_from is not None and cfg.beta > 0:
            _anchor_reference_to_base(trainer.model)
        if not cfg.verbose:
            trainer.remove_callback(PrinterCallback)
            trainer.remove_callback(ProgressCallback)
        trainer.train(resume_from_checkpoint=resume_from)
        policy = trainer.accelerator.unwrap_model(trainer.model)
        is_main = trainer.accelerator.is_main_process
        if is_main:
            policy.save_pretrained(os.path.join(out, "adapter"))
            with open(os.path.join(out, "train_log.json"), "w") as f:
                json.dump(list(trainer.state.log_history), f, indent=1, default=repr)
        return policy, is_main

    def _train_and_evaluate(self, w, out, work, warm_from, resume_from):
        """``(values, stderr, info)`` of a call written into ``out`` (``None`` on a process other than the main one)."""
        import torch

        cfg = self.config
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        with quiet(), isolated_rng(cfg.seed):
            policy, is_main = self._train(w, out, work, warm_from, resume_from)
            t_train = time.perf_counter() - t0
            if not is_main:
                return None

            t1 = time.perf_counter()
            eval_seed = cfg.seed + 1
            n = cfg.eval_samples
            policy = None if cfg.eval_backend == "vllm" else policy  # vLLM reads the saved adapter, frees the GPU
            R, completions, ids, device = self._sample_and_score(policy, n, eval_seed, os.path.join(out, "adapter"))
            t_eval = time.perf_counter() - t1
        values, se = summarise(R, len(self.eval_rows), n)
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
        train_tokens = _train_completion_tokens(os.path.join(out, "train_log.json"), cfg)
        eval_tokens = int(sum(len(x) for x in ids))
        del policy
        free_gpu_memory()
        info = {
            "weight": w.tolist(),
            "reward_names": list(self.reward_names),
            "stderr_method": "per-prompt means" if len(self.eval_rows) > 1 else "samples",
            "n_eval_prompts": len(self.eval_rows),
            "eval_samples_per_prompt": n,
            "seed": cfg.seed,
            "eval_seed": eval_seed,
            "warm_start_from": warm_from,
            "resumed_from_step": None if resume_from is None else int(os.path.basename(resume_from).split("-")[1]),
            "kl_reference": None if cfg.beta == 0 else "base model",
            "sampling": cfg.sampling(),
            "train_steps": cfg.max_steps,
            "seconds_train": t_train,
            "seconds_eval": t_eval,
            "peak_gpu_bytes": peak,
            "train_log": os.path.join(out, "train_log.json"),
            "eval_samples": os.path.join(out, "eval_samples.json"),
            "versions": versions(),
            "cost": {
                "device": device,
                "devices": cfg.processes,
                "seconds": t_train + t_eval,
                "tokens_generated": train_tokens + eval_tokens,
                "tokens_generated_train": train_tokens,
                "tokens_generated_eval": eval_tokens,
            },
        }
        return values, se, info
