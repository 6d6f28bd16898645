r"""Serving a portfolio of adapters: route a user's weight to a member and generate with it."""

import os
from dataclasses import dataclass

import numpy as np

from palmopt.validation import check_simplex

from .data import prompt_rows
from .hf import load_adapter, load_tokenizer, sample, torch_threads

__all__ = ["Generation", "generate"]


@dataclass(frozen=True, eq=False)
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
    weight: np.ndarray
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
        Built with a :class:`~oracles.llm.GRPOOracle` (policies are adapter directories).
    w : array_like, shape (d,)
        The user's weight (on the simplex).
    prompts : sequence
        Strings, conversations or dicts with a ``"prompt"`` key.
    oracle : GRPOOracle, optional
        Supplies the base model, tokenizer and generation defaults (and its ``num_threads``).
    base_model, tokenizer : optional
        Without ``oracle``: the base model (path or factory) and tokenizer (not modified).
    n : int
        Completions per prompt.
    max_new_tokens, temperature : optional
        Default: the oracle's ``max_completion_length`` and ``temperature`` (64 and 1.0 without one).
    do_sample : bool
        Sample (as the oracle evaluated the member) or decode greedily.
    seed : int
        Seeds this request's sampling only (the caller's random state is left as it was).
    batch_size : int
    cache : dict, optional
        Loaded models by adapter path: a member already in it is not loaded again, and a newly
        loaded one is added (keep one dict per server process).

    Returns
    -------
    Generation
    """
    W = check_simplex(w, portfolio.d, "w")
    member = int(portfolio.route(W)[0])
    adapter = portfolio.policies[member]
    if not isinstance(adapter, (str, os.PathLike)):
        raise TypeError(f"portfolio member {member}'s policy is {type(adapter).__name__}, not an adapter directory.")
    threads = None
    dtype = None
    if oracle is not None:
        base_model = oracle.base_model if base_model is None else base_model
        tokenizer = oracle.tokenizer if tokenizer is None else tokenizer
        max_new_tokens = max_new_tokens or oracle.config.max_completion_length
        temperature = temperature or oracle.config.eval_temperature or oracle.config.temperature
        dtype = oracle.config.model_dtype
        threads = oracle.config.num_threads
    key = os.path.abspath(os.fspath(adapter))
    model = None if cache is None else cache.get(key)
    if base_model is None and model is None:
        raise TypeError("give `oracle`, or `base_model` (and `tokenizer`).")
    if tokenizer is None and model is None and not isinstance(base_model, (str, os.PathLike)):
        raise TypeError("`tokenizer` is required when `base_model` is a factory.")
    tok = load_tokenizer(tokenizer, base_model)
    rows = prompt_rows(prompts, "prompts")
    with torch_threads(threads):
        if model is None:
            model = load_adapter(base_model, adapter, model_dtype=dtype)
            if cache is not None:
                cache[key] = model
        texts, _ = sample(
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
