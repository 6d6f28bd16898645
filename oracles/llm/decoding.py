r"""Decoding-time alignment: :class:`LogitMixOracle` samples the ``w``-weighted mix of ``d`` specialists.

No training per call: ``d`` single-objective specialists that share a tokenizer decode
together with the ``w``-weighted sum of their next-token log-probabilities.  The decoding loop
is the oracle's own (a key/value cache per specialist, a local ``torch.Generator``).  The
specialists may be ``d`` models, or ``d`` LoRA adapters of *one* ``peft.PeftModel``
(:meth:`LogitMixOracle.from_adapters`): one base model in memory, the adapter switched before
each specialist's forward pass.
"""

import contextlib
import os
import time

from palmopt.oracle import Solution

from .config import LogitMixConfig
from .data import check_weight, digest, is_conversational, prompt_rows
from .hf import (
    build_base,
    decode,
    encode,
    eos_ids,
    is_torch_module,
    isolated_rng,
    load_tokenizer,
    pad_id,
    prompt_texts,
    quiet,
    require_llm,
    tokenizer_id,
    torch_threads,
    trim,
)
from .scoring import prepare_rewards, preflight, reward_matrix, reward_spec, summarise

__all__ = ["LogitMixOracle"]


class LogitMixOracle:
    r"""Decoding-time alignment: sample from the ``w``-weighted geometric mix of ``d`` specialists.

    At each step the next-token distribution is

    .. math::
        π_w(y \mid x) ∝ \exp\Big(\sum_i w_i \log π_i(y \mid x) / T\Big),

    with ``π_i`` the specialist for reward ``i`` (all sharing one tokenizer and vocabulary)
    and ``T`` the temperature.  No training per call: ``oracle(w)`` samples ``eval_samples``
    completions per held-out prompt and scores them with each reward, as
    :class:`~oracles.llm.GRPOOracle` does; the policy handle is ``w`` itself (an array).
    Specialists with ``w_i = 0`` are not run.

    Parameters
    ----------
    specialists : sequence of models, paths or (PeftModel, adapter name) pairs, length d
        Causal LMs (``PreTrainedModel``/``PeftModel``) or paths loadable by
        ``AutoModelForCausalLM.from_pretrained``; ``specialists[i]`` is the one trained for
        reward ``i``.  Adapters from a :class:`~oracles.llm.GRPOOracle` load with
        :func:`~oracles.llm.load_adapter`.  A pair ``(model, name)`` is the adapter ``name`` of
        a ``PeftModel`` holding several: pairs may share one model (one base model in memory;
        :meth:`from_adapters` builds it), whose active adapter is switched before each forward
        pass and restored afterwards.
    tokenizer : tokenizer or str
        Not modified (sequences are padded with its pad id, else its end-of-sequence id).
    reward_funcs : sequence of callables, length d
    eval_prompts : sequence
        As for :class:`~oracles.llm.GRPOOracle`.
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

    Sampling draws from a ``torch.Generator`` of the oracle's own, seeded with ``seed``: the
    global random state is neither read nor changed.

    ``oracle(w).info["cost"]`` holds the ``device``, the ``seconds`` and the number of
    ``tokens_generated`` (as in :class:`~oracles.llm.GRPOOracle`).
    """

    value_range = (0.0, 1.0)

    def __init__(
        self, specialists, tokenizer, reward_funcs, eval_prompts, *, config=None, reward_ranges=None, names=None
    ):
        require_llm()
        from transformers import AutoModelForCausalLM

        self.config = LogitMixConfig.from_dict(config)
        specialists = list(specialists)
        if tokenizer is None:
            raise TypeError("`tokenizer` is required (the specialists must share it).")
        self.tokenizer = load_tokenizer(tokenizer, None)
        self.rewards, self.reward_ranges = prepare_rewards(reward_funcs, reward_ranges, self.tokenizer)
        self.d = len(self.rewards)
        self.reward_names = tuple(r.name for r in self.rewards)
        if len(specialists) != self.d:
            raise ValueError(
                f"`specialists` must hold one model per reward function ({self.d}); got {len(specialists)}."
            )
        models, adapters, ids, digests = [], [], [], {}
        for i, s in enumerate(specialists):
            adapter = None
            if isinstance(s, tuple) and len(s) == 2 and is_torch_module(s[0]):
                s, adapter = s
                if adapter not in getattr(s, "peft_config", {}):
                    raise ValueError(
                        f"specialist {i}: {adapter!r} is not an adapter of the model paired with it "
                        f"(its adapters: {sorted(getattr(s, 'peft_config', {}))})."
                    )
            if isinstance(s, (str, os.PathLike)):
                ids.append(os.fspath(s))
                with isolated_rng():  # weights that the checkpoint lacks are drawn at random
                    s = AutoModelForCausalLM.from_pretrained(os.fspath(s))
            elif is_torch_module(s):
                if id(s) not in digests:
                    digests[id(s)] = _param_digest(s)
                ids.append(f"{type(s).__name__}:{'' if adapter is None else adapter + ':'}{digests[id(s)]}")
            else:
                raise TypeError(
                    f"specialist {i} must be a model, a path or a (PeftModel, adapter name) pair; "
                    f"got {type(s).__name__}."
                )
            models.append(s.eval())
            adapters.append(adapter)
        unique = list({id(m): m for m in models}.values())
        sizes = {m.get_output_embeddings().weight.shape[0] for m in unique if m.get_output_embeddings() is not None}
        if len(sizes) > 1:
            raise ValueError(f"the specialists must share a vocabulary; their output sizes are {sorted(sizes)}.")
        self.models = models
        self.adapters = adapters
        self.names = tuple(names) if names is not None else tuple(ids)
        if len(self.names) != self.d:
            raise ValueError(f"`names` must hold {self.d} entries; got {len(self.names)}.")
        self.eval_rows = prompt_rows(eval_prompts, "eval_prompts")
        preflight(self.rewards, self.eval_rows)
        spec = {
            "specialists": list(self.names),
            "tokenizer": tokenizer_id(self.tokenizer),
            "rewards": reward_spec(self.rewards),
            "reward_ranges": self.reward_ranges,
            "eval_prompts": digest(self.eval_rows),
            "config": self.config.identity(),
        }
        self._fingerprint = (
            f"oracles.llm.LogitMixOracle(specialists={list(self.names)}, rewards={list(self.reward_names)}, "
            f"spec={digest(spec)[:16]})"
        )

    @classmethod
    def from_adapters(
        cls, base_model, adapters, tokenizer, reward_funcs, eval_prompts, *, model_dtype=None, device=None, **kwargs
    ):
        """The mix of ``d`` LoRA adapters of one base model: one ``PeftModel`` holding them all.

        Parameters
        ----------
        base_model : str or callable
            The base model's name/path, or a factory returning a fresh model (called once).
        adapters : sequence of str, length d
            Adapter directories (e.g. the policies of a :class:`~oracles.llm.GRPOOracle`'s
            calls at the unit weights); ``adapters[i]`` is the specialist for reward ``i``.
        tokenizer, reward_funcs, eval_prompts
            As for :class:`LogitMixOracle`.
        model_dtype : str, optional
            As in :class:`~oracles.llm.GRPOOracleConfig`.
        device : str or torch.device, optional
            Default: CUDA when available, else CPU.
        **kwargs
            ``config``, ``reward_ranges``, ``names`` (default: the adapter directories).

        Returns
        -------
        LogitMixOracle
            Its specialists are ``(model, "s0")``, ..., ``(model, "s<d-1>")`` with one ``model``.
        """
        require_llm()
        import torch
        from peft import PeftModel

        adapters = [os.fspath(a) for a in adapters]
        if not adapters:
            raise ValueError("`adapters` must name at least one adapter directory.")
        for a in adapters:
            if not os.path.isfile(os.path.join(a, "adapter_config.json")):
                raise FileNotFoundError(f"no LoRA adapter at {a!r} (missing adapter_config.json).")
        with quiet(), isolated_rng():  # peft draws the LoRA initialisation before loading the saved weights
            model = PeftModel.from_pretrained(build_base(base_model, model_dtype), adapters[0], adapter_name="s0")
            for i, a in enumerate(adapters[1:], 1):
                model.load_adapter(a, adapter_name=f"s{i}")
        model = model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        kwargs.setdefault("names", adapters)
        return cls([(model, f"s{i}") for i in range(len(adapters))], tokenizer, reward_funcs, eval_prompts, **kwargs)

    def fingerprint(self):
        """Specialists (names), tokenizer, rewards, prompts (hash) and config."""
        return self._fingerprint

    def __repr__(self):
        return f"LogitMixOracle(d={self.d}, specialists={list(self.names)}, rewards={list(self.reward_names)})"

    def generate(self, w, prompts, *, n=1, max_new_tokens=None, temperature=None, seed=None):
        """Completions of ``prompts`` (``n`` each, prompt-major) decoded with the mix at ``w``."""
        w = check_weight(w, self.d)
        cfg = self.config
        rows = prompt_rows(prompts, "prompts")
        with torch_threads(cfg.num_threads):
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
        """``(texts, ids)``: ``n`` completions per row from the mix at ``w`` (specialists with ``w_i = 0`` idle)."""
        active = [i for i in range(self.d) if w[i] > 0]
        models = [self.models[i] for i in active]
        adapters = [self.adapters[i] for i in active]
        weights = [float(w[i]) for i in active]
        with _restored_adapters(models, adapters):
            return self._decode(models, adapters, weights, rows, n, max_new_tokens, temperature, seed)

    def _decode(self, models, adapters, weights, rows, n, max_new_tokens, temperature, seed):
        import torch

        tok = self.tokenizer
        device = next(models[0].parameters()).device
        eos = eos_ids(models[0], tok)
        eos_t = torch.tensor(eos, device=device)
        pad = pad_id(tok)
        conversational = is_conversational(rows)
        texts = [t for t in prompt_texts(tok, rows) for _ in range(n)]
        gen = torch.Generator(device=device).manual_seed(seed)
        cache_kw = [_cache_kwarg(m) for m in models]
        out_ids = []
        bs = self.config.batch_size
        for b in range(0, len(texts), bs):
            enc = encode(tok, texts[b : b + bs], conversational, device)
            ids, mask = enc["input_ids"], enc["attention_mask"]
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            pasts = [None] * len(models)
            cur_ids, cur_pos = ids, pos
            done = torch.zeros(ids.shape[0], dtype=torch.bool, device=device)
            steps = []
            with torch.inference_mode():
                for _ in range(max_new_tokens):
                    mixed = None
                    for k, m in enumerate(models):
                        if adapters[k] is not None:
                            m.set_adapter(adapters[k], inference_mode=True)
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
                    nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
                    steps.append(nxt)
                    done = done | torch.isin(nxt, eos_t)
                    if bool(done.all()):
                        break
                    mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                    cur_pos = cur_pos[:, -1:] + 1
                    cur_ids = nxt[:, None]
            seqs = torch.stack(steps, dim=1).cpu().tolist() if steps else [[] for _ in range(ids.shape[0])]
            out_ids.extend(trim(s, eos) for s in seqs)
        return decode(tok, out_ids, conversational), out_ids

    def __call__(self, w):
        w = check_weight(w, self.d)
        cfg = self.config
        n = cfg.eval_samples
        t0 = time.perf_counter()
        with torch_threads(cfg.num_threads):
            completions, ids = self._sample(w, self.eval_rows, n, cfg.max_new_tokens, cfg.temperature, cfg.seed)
            R = reward_matrix(self.rewards, self.eval_rows, completions, ids, n)
        values, se = summarise(R, len(self.eval_rows), n)
        seconds = time.perf_counter() - t0
        device = str(next(self.models[int(w.argmax())].parameters()).device)
        info = {
            "weight": w.tolist(),
            "reward_names": list(self.reward_names),
            "n_eval_prompts": len(self.eval_rows),
            "eval_samples_per_prompt": n,
            "seed": cfg.seed,
            "seconds_eval": seconds,
            "cost": {"device": device, "seconds": seconds, "tokens_generated": int(sum(len(x) for x in ids))},
        }
        return Solution(values=values, policy=w.copy(), info=info, stderr=se)


@contextlib.contextmanager
def _restored_adapters(models, adapters):
    """Give each shared ``PeftModel`` back its active adapter and ``requires_grad`` flags after the block."""
    shared = {id(m): m for m, a in zip(models, adapters) if a is not None}
    saved = {k: (m.active_adapter, [p.requires_grad for p in m.parameters()]) for k, m in shared.items()}
    try:
        yield
    finally:
        for k, m in shared.items():
            active, flags = saved[k]
            m.set_adapter(active)
            for p, flag in zip(m.parameters(), flags):
                p.requires_grad_(flag)


def _param_digest(model):
    """A short digest of a model's weights (sums and sums of squares of every tensor)."""
    import torch

    with torch.no_grad():
        stats = [
            (name, round(float(p.double().sum()), 6), round(float(p.double().pow(2).sum()), 6))
            for name, p in model.state_dict().items()
            if torch.is_floating_point(p)
        ]
    return digest(stats)[:12]


def _cache_kwarg(model):
    """The name of the key/value-cache argument (``cache`` from transformers 5.2x on, else ``past_key_values``)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _returned_cache(output):
    cache = output.get("cache") if hasattr(output, "get") else None
    return cache if cache is not None else output.past_key_values
