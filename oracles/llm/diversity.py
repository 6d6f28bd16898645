r"""Output diversity of a portfolio: distinct-n within a set of texts and across members.

:func:`distinct_n` is the share of distinct word n-grams among all n-grams of a set of texts
(Li et al., 2016, "A diversity-promoting objective function for neural conversation models");
:func:`member_distinct_n` applies it across a portfolio's members on shared prompts.
"""

import math
from typing import Callable, Sequence

from palmopt.validation import check_count

from .rewards.base import completion_text

__all__ = ["distinct_n", "member_distinct_n"]


def _ngrams(text, n, tokenize):
    toks = tokenize(completion_text(text))
    return [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]


def distinct_n(texts, n=2, *, tokenize: Callable[[str], Sequence[str]] = str.split):
    r"""Distinct-n: distinct n-grams over all n-grams in ``texts`` (Li et al., 2016).

    Parameters
    ----------
    texts : sequence of str
        Completions (strings or conversations).
    n : int
        n-gram order.
    tokenize : callable
        Text -> tokens (whitespace words by default).

    Returns
    -------
    float
        In ``(0, 1]``; ``nan`` when the texts hold no n-gram at all.

    Examples
    --------
    >>> from oracles.llm import distinct_n
    >>> distinct_n(["a b a b", "a b c"], n=1)
    0.42857142857142855
    >>> distinct_n(["a b a b", "a b c"], n=2)
    0.6
    """
    n = check_count(n, "n")
    if isinstance(texts, str):
        raise TypeError("`texts` must be a sequence of texts, not one string.")
    grams = [g for t in texts for g in _ngrams(t, n, tokenize)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def member_distinct_n(completions, n=1, *, tokenize=str.split):
    r"""Diversity *across* portfolio members on shared prompts.

    For each prompt ``j``, :func:`distinct_n` of the members' completions
    ``completions[0][j], ..., completions[k-1][j]``; the mean over prompts (prompts whose
    completions hold no n-gram are skipped).  ``1`` means no two members share an n-gram on any
    prompt; ``1/k`` means all members say the same thing.

    Parameters
    ----------
    completions : sequence of sequences, shape (k members, m prompts)
        A member may give several samples per prompt as a list; they are pooled.

    Returns
    -------
    float (``nan`` if no prompt has an n-gram)

    Examples
    --------
    >>> from oracles.llm import member_distinct_n
    >>> member_distinct_n([["a b", "c"], ["a b", "d"]], n=1)
    0.75
    """
    rows = [list(r) for r in completions]
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError("`completions` must hold the same number of prompts for every member.")
    scores = []
    for j in range(len(rows[0])):
        column = []
        for r in rows:
            item = r[j]
            column.extend(
                item if isinstance(item, (list, tuple)) and not (item and isinstance(item[0], dict)) else [item]
            )
        s = distinct_n(column, n, tokenize=tokenize)
        if not math.isnan(s):
            scores.append(s)
    return sum(scores) / len(scores) if scores else float("nan")
