r"""Evaluation sampling with vLLM: a LoRA adapter's completions, as :func:`oracles.llm.hf.sample` gives them.

:func:`sample` builds one ``vllm.LLM(model=<name or path>, enable_lora=True, ...)`` per process
(kept between calls; a request for another model, dtype or LoRA rank replaces it) and samples
``n`` completions per prompt with the adapter as a ``LoRARequest``.  It returns
``(completions, completion_ids)`` in the shape :func:`oracles.llm.hf.sample` returns (prompt-major,
texts decoded by the oracle's tokenizer, ids up to and including the first end-of-sequence
token), so the caller scores them identically (:func:`oracles.llm.scoring.reward_matrix`).

The sampling settings are the training's, :meth:`GRPOOracleConfig.sampling`, mapped one to one
onto ``vllm.SamplingParams`` (:data:`SAMPLING_MAP`); a setting without an exact vLLM
counterpart is refused, never dropped.  Prompts are rendered exactly as for ``transformers``
(:func:`oracles.llm.hf.prompt_texts`: a conversation through the tokenizer's chat template,
the one training used) and given to vLLM as token ids, so both back ends see the same tokens.

Needs the ``vllm`` extra (``pip install -e ".[llm,vllm]"``) and a CUDA device.  The tests run
this module against a stand-in ``vllm`` module that records its arguments (and check the
arguments with the real ``SamplingParams`` and ``LoRARequest`` classes where vLLM can be
imported); no real vLLM engine has run it yet.
"""

import json
import os
import types

import numpy as np

from .data import is_conversational
from .hf import decode, eos_ids, free_gpu_memory, prompt_texts, trim

__all__ = ["SAMPLING_MAP", "release", "sample", "sampler", "sampling_params_kwargs"]

#: ``GenerationConfig`` settings (as :meth:`GRPOOracleConfig.sampling` returns them) and the
#: ``vllm.SamplingParams`` argument that means the same.  ``top_k = 0`` is "off" in both (as TRL
#: passes it to vLLM); ``min_p`` and ``repetition_penalty`` follow the same formulas (``min_p``
#: relative to the most likely token; the penalty divides positive and multiplies negative
#: logits of tokens seen in the prompt or the completion).
SAMPLING_MAP = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repetition_penalty": "repetition_penalty",
    "max_new_tokens": "max_tokens",
    "min_new_tokens": "min_tokens",
}

#: LoRA ranks vLLM accepts as ``max_lora_rank`` (``vllm.config.lora.MaxLoRARanks``, vLLM 0.30).
_VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)

#: The engine of this process, its key, whether it sleeps, and the LoRA ids handed out.
_STATE = {"key": None, "llm": None, "asleep": False, "lora_ids": {}}


def _require_vllm():
    try:
        import vllm
        from vllm.lora.request import LoRARequest
    except ImportError as exc:
        raise ImportError(
            f"vLLM evaluation needs the `vllm` extra ({exc}); install it with `pip install -e \".[llm,vllm]\"` "
            f"(the pin in setup.cfg resolves with the `llm` extra)."
        ) from None
    return vllm, LoRARequest


def sampling_params_kwargs(sampling, *, n, max_new_tokens, seed, stop_token_ids):
    """``vllm.SamplingParams`` keywords equivalent to the ``GenerationConfig`` settings ``sampling``.

    Parameters
    ----------
    sampling : mapping
        ``GenerationConfig`` keywords, e.g. :meth:`GRPOOracleConfig.sampling`; ``None`` values are
        unset (the library defaults, which agree: ``min_p = 0``, ``repetition_penalty = 1``).
    n : int
        Completions per prompt.
    max_new_tokens : int
        The generation limit (a ``max_new_tokens`` in ``sampling`` overrides it, as in
        :func:`oracles.llm.hf.sample`).
    seed : int
        The request's sampling seed.
    stop_token_ids : list of int
        Every id that ends a completion (:func:`oracles.llm.hf.eos_ids`).

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        A setting without an exact vLLM counterpart (named), or ``do_sample=False``.

    Examples
    --------
    >>> from oracles.llm.vllm_eval import sampling_params_kwargs
    >>> sampling_params_kwargs({"temperature": 0.7, "top_p": 1.0, "top_k": 0, "min_p": 0.1}, n=2,
    ...                        max_new_tokens=8, seed=3, stop_token_ids=[2])  # doctest: +NORMALIZE_WHITESPACE
    {'n': 2, 'max_tokens': 8, 'seed': 3, 'stop_token_ids': [2], 'detokenize': False, 'top_k': 0,
     'min_p': 0.1, 'repetition_penalty': 1.0, 'temperature': 0.7, 'top_p': 1.0}
    >>> sampling_params_kwargs({"temperature": 1.0, "typical_p": 0.9}, n=1, max_new_tokens=8, seed=0,
    ...                        stop_token_ids=[2])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: sampling setting(s) ['typical_p'] have no exact vLLM counterpart; ...
    """
    settings = {k: v for k, v in dict(sampling).items() if v is not None}
    if settings.pop("do_sample", True) is not True:
        raise ValueError(
            "`do_sample=False` (greedy decoding) is not the sampled policy that GRPO trains; the vLLM evaluation "
            "samples, as training does."
        )
    unknown = sorted(set(settings) - set(SAMPLING_MAP))
    if unknown:
        raise ValueError(
            f"sampling setting(s) {unknown} have no exact vLLM counterpart; the vLLM evaluation maps only "
            f"{sorted(SAMPLING_MAP)}. Evaluate with transformers instead, or drop the setting(s) from "
            f"`trl_args['generation_kwargs']`."
        )
    out = {
        "n": int(n),
        "max_tokens": int(max_new_tokens),
        "seed": int(seed),
        "stop_token_ids": [int(t) for t in stop_token_ids],
        "detokenize": False,  # texts are decoded by the oracle's tokenizer, as for transformers
        "top_k": 0,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
    }
    for key, value in settings.items():
        out[SAMPLING_MAP[key]] = value
    return out


def _adapter_rank(adapter):
    path = os.path.join(adapter, "adapter_config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no LoRA adapter at {adapter!r} (missing adapter_config.json).")
    with open(path) as f:
        cfg = json.load(f)
    return max([int(cfg.get("r", 8)), *map(int, (cfg.get("rank_pattern") or {}).values())])


def _lora_rank(adapter_rank, max_lora_rank):
    if max_lora_rank is None:
        fits = [r for r in _VLLM_LORA_RANKS if r >= adapter_rank]
        if not fits:
            raise ValueError(f"the adapter's LoRA rank {adapter_rank} exceeds vLLM's largest, {_VLLM_LORA_RANKS[-1]}.")
        return fits[0]
    if int(max_lora_rank) < adapter_rank:
        raise ValueError(f"`max_lora_rank` ({max_lora_rank}) is below the adapter's LoRA rank ({adapter_rank}).")
    return int(max_lora_rank)


def _lora_id(adapter):
    """A process-wide id per adapter *contents* (vLLM caches adapters by id: a rewritten directory gets a new one)."""
    stamp = tuple(
        sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(adapter) if e.is_file())
    )
    ids = _STATE["lora_ids"]
    return ids.setdefault((adapter, stamp), len(ids) + 1)


def _generation_config(path):
    """The model's generation config as ``transformers`` loads it with the model (for its end-of-sequence ids)."""
    from transformers import AutoConfig, GenerationConfig

    try:
        return GenerationConfig.from_pretrained(path)
    except OSError:  # no generation_config.json: derived from config.json, as from_pretrained does
        return GenerationConfig.from_model_config(AutoConfig.from_pretrained(path))


def _engine(vllm, key, llm_kwargs):
    if _STATE["key"] != key:
        release()
        _STATE["llm"] = vllm.LLM(**llm_kwargs)
        _STATE["key"] = key
    elif _STATE["asleep"]:
        free_gpu_memory()
        _STATE["llm"].wake_up()
    _STATE["asleep"] = False
    return _STATE["llm"]


def release():
    """Drop this process's vLLM engine (and its GPU memory); the next :func:`sample` builds a new one."""
    llm = _STATE["llm"]
    _STATE.update(key=None, llm=None, asleep=False)
    del llm
    free_gpu_memory()


def sampler(base_model, adapter, **options):
    """A drop-in for :func:`oracles.llm.hf.sample` that samples the adapter ``adapter`` with vLLM.

    The returned function takes :func:`~oracles.llm.hf.sample`'s arguments and gives its results;
    its ``model`` and ``batch_size`` are not used (vLLM loads ``base_model`` itself and batches on
    its own).  Its sampling settings are ``hf.sample``'s: ``temperature``, ``top_p = 1``,
    ``top_k = 0``, then ``generation_kwargs``.  ``options`` go to :func:`sample`
    (``model_dtype``, ``max_lora_rank``, ``sleep``, ``engine_kwargs``).

    Notes
    -----
    In :class:`~oracles.llm.GRPOOracle`'s evaluation, the transformers call
    ``sample(model, tokenizer, rows, n, max_new_tokens=..., temperature=..., seed=..., batch_size=...,
    generation_kwargs=config.sampling())`` becomes
    ``sampler(base_model, adapter_dir, model_dtype=config.model_dtype)(None, tokenizer, rows, n, ...)``.
    """

    def sample_with_vllm(
        model,
        tokenizer,
        rows,
        n,
        *,
        max_new_tokens,
        temperature,
        seed,
        batch_size=None,
        do_sample=True,
        generation_kwargs=None,
    ):
        settings = {"temperature": temperature, "top_p": 1.0, "top_k": 0, "do_sample": do_sample}
        settings.update(generation_kwargs or {})
        kwargs = {"sampling": settings, "max_new_tokens": max_new_tokens, "seed": seed, **options}
        return sample(base_model, adapter, tokenizer, rows, n, **kwargs)

    return sample_with_vllm


def sample(
    base_model,
    adapter,
    tokenizer,
    rows,
    n,
    *,
    sampling,
    max_new_tokens,
    seed,
    model_dtype=None,
    max_lora_rank=None,
    sleep=True,
    engine_kwargs=None,
):
    """``n`` completions per row by the LoRA adapter ``adapter``, sampled with vLLM: ``(texts, ids)``.

    Parameters
    ----------
    base_model : str or path
        The base model's name or path: vLLM loads the model itself.  A factory (``callable``)
        has none and is refused.
    adapter : str or path
        A LoRA adapter directory (a :class:`~oracles.llm.GRPOOracle` policy handle).
    tokenizer : tokenizer
        The oracle's tokenizer: it renders the prompts (chat template for conversations, as in
        training), decodes the completions and names the end-of-sequence token.
    rows : list of dict
        Prompt rows (``{"prompt": ...}``), as :func:`oracles.llm.data.prompt_rows` makes them.
    n : int
        Completions per row.
    sampling : mapping
        The training's sampling settings, :meth:`GRPOOracleConfig.sampling` (see
        :func:`sampling_params_kwargs`).
    max_new_tokens : int
    seed : int
        Sampling seed: row ``i`` is sampled with its own seed, drawn from
        ``numpy.random.SeedSequence(seed)``, so results do not depend on the engine's history.
    model_dtype : str, optional
        As in :class:`~oracles.llm.GRPOOracleConfig` (``None``: ``"auto"``, the checkpoint's
        dtype, which is also what ``transformers`` 5 loads by default).
    max_lora_rank : int, optional
        vLLM's LoRA rank limit (default: the adapter's rank rounded up to a rank vLLM accepts).
    sleep : bool
        Build the engine with ``enable_sleep_mode=True`` and put it to sleep (level 1: weights
        to CPU memory, key/value cache freed) after sampling, so that training in the same
        process gets the GPU memory back; it wakes up on the next call.
    engine_kwargs : mapping, optional
        Further ``vllm.LLM`` arguments (e.g. ``gpu_memory_utilization``, ``max_model_len``).

    Returns
    -------
    texts : list
        ``len(rows) * n`` completions, prompt-major: strings, or ``[{"role": "assistant",
        "content": ...}]`` when the prompts are conversations.
    ids : list of list of int
        Their token ids, up to and including the first end-of-sequence token.

    Raises
    ------
    ValueError
        A model factory as ``base_model``; a sampling setting without a vLLM counterpart; an
        ``engine_kwargs`` key this function sets itself.
    FileNotFoundError
        No ``adapter_config.json`` in ``adapter``.
    ImportError
        vLLM is not installed.
    """
    if callable(base_model) and not isinstance(base_model, (str, os.PathLike)):
        raise ValueError(
            "vLLM loads the base model itself, by name or path; a model factory has none -- save the model "
            "(`model.save_pretrained(dir)`) and pass its directory, or evaluate with transformers."
        )
    if not isinstance(base_model, (str, os.PathLike)):
        raise TypeError(f"`base_model` must be a model name or path; got {type(base_model).__name__}.")
    owned = {"model", "dtype", "seed", "enable_lora", "max_lora_rank", "enable_sleep_mode"}
    clash = sorted(owned & set(engine_kwargs or {}))
    if clash:
        raise ValueError(f"`engine_kwargs` may not set {clash}: `sample` sets them.")
    base_model, adapter = os.fspath(base_model), os.path.abspath(os.fspath(adapter))
    rank = _lora_rank(_adapter_rank(adapter), max_lora_rank)
    conversational = is_conversational(rows)
    gen_config = types.SimpleNamespace(generation_config=_generation_config(base_model))
    eos = eos_ids(gen_config, tokenizer)
    seeds = np.random.SeedSequence(seed).generate_state(len(rows))
    params_kwargs = [
        sampling_params_kwargs(sampling, n=n, max_new_tokens=max_new_tokens, seed=int(s), stop_token_ids=eos)
        for s in seeds
    ]
    vllm, LoRARequest = _require_vllm()
    params = [vllm.SamplingParams(**kw) for kw in params_kwargs]
    # the same tokens as transformers gets (hf.encode): a chat template already holds the special tokens
    prompt_ids = tokenizer(text=prompt_texts(tokenizer, rows), add_special_tokens=not conversational)["input_ids"]
    llm_kwargs = {
        "model": base_model,
        "dtype": model_dtype or "auto",
        "seed": 0,  # every request carries its own seed
        "enable_lora": True,
        "max_lora_rank": rank,
        "enable_sleep_mode": bool(sleep),
        **dict(engine_kwargs or {}),
    }
    llm = _engine(vllm, json.dumps(llm_kwargs, sort_keys=True, default=str), llm_kwargs)
    lora_id = _lora_id(adapter)
    try:
        outputs = llm.generate(
            [{"prompt_token_ids": list(ids)} for ids in prompt_ids],
            params,
            use_tqdm=False,
            lora_request=LoRARequest(f"adapter-{lora_id}", lora_id, adapter),
        )
    finally:
        if sleep:
            llm.sleep(level=1)
            _STATE["asleep"] = True
    out_ids = []
    for request in outputs:
        if len(request.outputs) != n:
            raise RuntimeError(f"vLLM returned {len(request.outputs)} completions for a prompt; {n} were asked for.")
        out_ids.extend(trim(list(c.token_ids), eos) for c in sorted(request.outputs, key=lambda c: c.index))
    return decode(tokenizer, out_ids, conversational), out_ids
