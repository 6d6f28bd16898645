r"""Hugging Face plumbing: the ``llm`` extra, models, tokenizers and sampling.

Nothing here imports torch, transformers or TRL at module import time.

Caller's state
--------------
The oracles leave the caller's objects and process settings as they found them:

* tokenizers are never modified: sequences are padded with an explicit pad id
  (:func:`pad_id`), and TRL, which sets a missing pad token on the tokenizer it is given, gets a
  copy (:func:`with_pad_token`);
* ``transformers``' ``generate`` and TRL's trainer draw from (TRL also seeds) the global random
  generators of torch, numpy and Python, and take no generator argument; the oracles seed them
  only inside :func:`isolated_rng`, which restores the caller's states on exit;
* torch's CPU thread count changes only when a config asks for it (``num_threads``), and only
  inside :func:`torch_threads`.
"""

import contextlib
import copy
import os
import random
import warnings

import numpy as np

from .data import digest, is_conversational

__all__ = ["isolated_rng", "load_adapter", "torch_threads"]

_LLM_PACKAGES = ("torch", "transformers", "trl", "peft", "datasets")


def require_llm():
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
            f"oracles.llm needs the `llm` extra (torch, transformers, trl, peft); missing: {', '.join(missing)}. "
            f"Install it with `pip install 'palmopt[llm]'` (install torch first for your hardware)."
        )


def versions():
    """The versions of the libraries an oracle's results depend on."""
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


def is_torch_module(obj):
    """Whether ``obj`` is a ``torch.nn.Module`` (False when torch is not installed)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, torch.nn.Module)


# ------------------------------------------------------------------------------------------
# Scopes: random state and threads
# ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def isolated_rng(seed=None):
    """Run a block on the global random generators, then give the caller back its own states.

    Inside, torch's generators (CPU and every CUDA device) are seeded with ``seed`` (left as
    they are when ``None``); on exit the states of torch's, numpy's and Python's global
    generators are restored, whatever the block seeded or drew.
    """
    import torch

    py_state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            if seed is not None:
                torch.manual_seed(seed)
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@contextlib.contextmanager
def torch_threads(n):
    """Run a block with ``torch.set_num_threads(n)``, then restore the previous count (``None``: no change)."""
    if n is None:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


# Noise that transformers/TRL raise internally and that says nothing about the user's setup;
# silenced only inside the oracle's own training and loading.
_QUIET = (
    (FutureWarning, r".*gradient_checkpointing.* is deprecated"),
    (FutureWarning, r".*is_gradient_checkpointing.* is deprecated"),
)


@contextlib.contextmanager
def quiet():
    """Silence the known internal warnings of transformers/TRL inside the block."""
    with warnings.catch_warnings():
        for category, message in _QUIET:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


# ------------------------------------------------------------------------------------------
# Models and tokenizers
# ------------------------------------------------------------------------------------------


def free_gpu_memory():
    """Collect garbage and return torch's cached GPU memory (a model just dropped); a no-op without CUDA."""
    import gc

    import torch

    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


def _dtype(name):
    import torch

    return {None: None, "auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        name
    ]


def build_base(base_model, model_dtype=None):
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


def load_tokenizer(tokenizer, base_model):
    """A tokenizer object from a tokenizer, a path/name, a factory, or (``None``) the base model's path.

    A tokenizer object is returned as it is (not modified).
    """
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
    return tokenizer


def pad_id(tokenizer):
    """The id that pads sequences: the tokenizer's pad token, else its end-of-sequence token."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def with_pad_token(tokenizer):
    """``tokenizer`` if it has a pad token, else a copy padding with end-of-sequence (the original is untouched)."""
    if tokenizer.pad_token is not None:
        return tokenizer
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tokenizer_id(tokenizer):
    """What identifies a tokenizer in a fingerprint: name, vocabulary digest and size, chat template digest."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return {
        "name": getattr(tokenizer, "name_or_path", "") or "",
        "vocab": digest(vocab)[:16],
        "size": len(vocab),
        "chat_template": digest(getattr(tokenizer, "chat_template", None))[:16],
    }


def load_adapter(base_model, adapter, *, model_dtype=None, device=None):
    """A base model with a saved LoRA adapter, ready for generation.

    Parameters
    ----------
    base_model : str or callable
        The base model's path/name, or a factory returning a fresh model.
    adapter : str
        An adapter directory (a :class:`~oracles.llm.GRPOOracle` policy handle).
    model_dtype : str, optional
        As in :class:`~oracles.llm.GRPOOracleConfig`.
    device : str or torch.device, optional
        Where to put the model (default: CUDA when available, else CPU).

    Returns
    -------
    peft.PeftModel
        In evaluation mode.
    """
    require_llm()
    import torch
    from peft import PeftModel

    if not os.path.isfile(os.path.join(os.fspath(adapter), "adapter_config.json")):
        raise FileNotFoundError(f"no LoRA adapter at {adapter!r} (missing adapter_config.json).")
    with quiet(), isolated_rng():  # peft draws the LoRA initialisation before loading the saved weights
        model = PeftModel.from_pretrained(build_base(base_model, model_dtype), os.fspath(adapter))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval()


# ------------------------------------------------------------------------------------------
# Prompts in, completions out
# ------------------------------------------------------------------------------------------


def prompt_texts(tokenizer, rows):
    """Each row's prompt as text: a string as is, a conversation through the chat template."""
    out = []
    for r in rows:
        p = r["prompt"]
        out.append(
            p if isinstance(p, str) else tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
        )
    return out


def encode(tokenizer, texts, conversational, device=None):
    """Left-padded ``input_ids`` and ``attention_mask`` (padded with :func:`pad_id`, the tokenizer untouched).

    A chat template already holds the special tokens (as TRL tokenizes it).
    """
    import torch

    ids = tokenizer(text=list(texts), add_special_tokens=not conversational)["input_ids"]
    width = max(len(x) for x in ids)
    pad = pad_id(tokenizer)
    input_ids = torch.tensor([[pad] * (width - len(x)) + list(x) for x in ids], dtype=torch.long, device=device)
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], dtype=torch.long, device=device)
    return {"input_ids": input_ids, "attention_mask": mask}


def eos_ids(model, tokenizer):
    """Every id that ends a completion: the tokenizer's end-of-sequence and the model's."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos = [tokenizer.eos_token_id, *eos]
    return eos


def trim(ids, eos):
    """Token ids up to and including the first end-of-sequence token (as TRL passes them)."""
    out = []
    for t in ids:
        out.append(int(t))
        if t in eos:
            break
    return out


def decode(tokenizer, ids, conversational):
    """Completion texts (assistant messages when the prompts were conversations)."""
    decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
    if conversational:
        decoded = [[{"role": "assistant", "content": t}] for t in decoded]
    return decoded


#: GenerationConfig settings that only matter when sampling (dropped for greedy decoding).
_SAMPLING_ONLY = frozenset({"temperature", "top_p", "top_k", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff"})


def sample(
    model, tokenizer, rows, n, *, max_new_tokens, temperature, seed, batch_size, do_sample=True, generation_kwargs=None
):
    """``n`` completions per row, prompt-major, with ``model.generate``: ``(texts, ids)``.

    Sampling is seeded with ``seed`` inside :func:`isolated_rng` (the caller's random state is
    left as it was).  ``generation_kwargs`` (e.g. :meth:`GRPOOracleConfig.sampling`) are further
    ``GenerationConfig`` settings applied last (``min_p``, ``repetition_penalty``, ``top_p``, ...);
    with ``do_sample=False`` the sampling-only ones are dropped.
    """
    import torch
    from transformers import GenerationConfig

    texts = [t for t in prompt_texts(tokenizer, rows) for _ in range(n)]
    conversational = is_conversational(rows)
    eos = eos_ids(model, tokenizer)
    gen = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature if do_sample else None,
        top_p=1.0 if do_sample else None,
        top_k=0 if do_sample else None,
        pad_token_id=pad_id(tokenizer),
        eos_token_id=eos,
    )
    extra = dict(generation_kwargs or {})
    if not do_sample:
        extra = {k: v for k, v in extra.items() if k not in _SAMPLING_ONLY}
    if extra:
        gen.update(**extra)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out_ids = []
    try:
        with isolated_rng(seed):
            for i in range(0, len(texts), batch_size):
                enc = encode(tokenizer, texts[i : i + batch_size], conversational, device)
                with torch.inference_mode():
                    seq = model.generate(**enc, generation_config=gen)
                new = seq[:, enc["input_ids"].shape[1] :].cpu().tolist()
                out_ids.extend(trim(ids, eos) for ids in new)
    finally:
        model.train(was_training)
    return decode(tokenizer, out_ids, conversational), out_ids
