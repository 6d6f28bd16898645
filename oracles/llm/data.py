r"""Prompts and weights as the LLM oracles take them.

Prompts are strings, conversations (lists of ``{"role", "content"}`` messages), or dicts with a
``"prompt"`` key and extra columns (e.g. ``answer``), which reach the reward functions as
keyword arguments; :func:`prompt_rows` turns any of these into rows of one dataset.
"""

import hashlib
import json
from typing import Mapping

import numpy as np

__all__ = ["check_weight", "digest", "prompt_rows"]


def prompt_rows(prompts, name):
    """Prompts as a list of dicts with a ``"prompt"`` key (extra columns kept).

    Examples
    --------
    >>> from oracles.llm.data import prompt_rows
    >>> prompt_rows(["a", {"prompt": "b"}], "prompts")
    [{'prompt': 'a'}, {'prompt': 'b'}]
    >>> prompt_rows([{"prompt": "a", "answer": "1"}, "b"], "eval_prompts")
    Traceback (most recent call last):
    ...
    ValueError: `eval_prompts` rows must share the same columns; row 0 has ['answer', 'prompt'], row 1 ['prompt'].
    """
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


def is_conversational(rows):
    """Whether the prompts are conversations (then completions are assistant messages too)."""
    return not isinstance(rows[0]["prompt"], str)


def digest(obj):
    """SHA-256 (hex) of ``obj`` as canonical JSON: stable across processes, for fingerprints."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()


def check_weight(w, d):
    """A user's weight: ``d`` finite entries ``>= 0``, not all zero, rescaled to sum 1.

    Examples
    --------
    >>> from oracles.llm.data import check_weight
    >>> check_weight([1, 3], 2).tolist()
    [0.25, 0.75]
    """
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (d,):
        raise ValueError(f"`w` must have shape ({d},); got {w.shape}.")
    if not np.all(np.isfinite(w)) or w.min() < 0 or w.sum() <= 0:
        raise ValueError(f"`w` must be finite, >= 0 and not all zero; got {w.tolist()}.")
    return w / w.sum()
