r"""Rewards on the surface of the text: length, required words, format.

================================  ====================================================================
:class:`Brevity`                  ``1 - (min(L, max_length) / max_length) ** power``, ``L`` the length
                                  in words, characters or tokens
:class:`Coverage`                 ``(found / required) ** power``: share of the required words present
:class:`FormatCompliance`         one pattern: ``1`` if it matches the whole completion, else ``0``;
                                  several: the share of patterns found
================================  ====================================================================
"""

import re
from dataclasses import dataclass, field
from typing import Any

from palmopt.validation import check_count, check_real

from .base import column, completion_text
from .math import GSM8K_FORMAT

__all__ = ["Brevity", "Coverage", "FormatCompliance"]


@dataclass(frozen=True)
class Brevity:
    r"""Shorter is better: ``r = 1 - (min(L, max_length) / max_length) ** power``.

    Parameters
    ----------
    max_length : int
        The length at which the reward reaches ``0`` (longer completions also get ``0``).
        Usually the generation limit, in the same unit.
    unit : {"words", "chars", "tokens"}
        How ``L`` is counted: whitespace-separated words, characters, or tokens (the
        ``completion_ids`` keyword argument that TRL and :class:`~oracles.llm.GRPOOracle` pass;
        they include the end-of-sequence token when generation stopped on one).
    power : float > 0
        ``1`` is linear in length; ``2`` charges little for the first words and much for the
        last ones (a concave trade-off against rewards that grow linearly with length).

    Examples
    --------
    >>> from oracles.llm.rewards import Brevity
    >>> Brevity(4)(["q"] * 3, ["", "a b", "a b c d e"])
    [1.0, 0.5, 0.0]
    >>> Brevity(4, power=2)(["q"], ["a b"])
    [0.75]
    """

    max_length: int
    unit: str = "words"
    power: float = 1.0

    def __post_init__(self):
        check_count(self.max_length, "max_length")
        check_real(self.power, "power", strict=True)
        if self.unit not in ("words", "chars", "tokens"):
            raise ValueError(f"`unit` must be 'words', 'chars' or 'tokens'; got {self.unit!r}.")

    @property
    def name(self):
        return "brevity"

    def lengths(self, completions, completion_ids=None):
        """``L`` for each completion."""
        if self.unit == "tokens":
            if completion_ids is None:
                raise KeyError("reward function 'brevity' with unit='tokens' needs the `completion_ids` argument.")
            return [len(ids) for ids in completion_ids]
        texts = [completion_text(c) for c in completions]
        return [len(t.split()) if self.unit == "words" else len(t) for t in texts]

    def __call__(self, prompts, completions, completion_ids=None, **kwargs):
        M = self.max_length
        return [1.0 - (min(L, M) / M) ** self.power for L in self.lengths(completions, completion_ids)]


@dataclass(frozen=True)
class Coverage:
    r"""Include what was asked for: ``r = (found / required) ** power``.

    The required words come from a dataset column (``key``; a list of strings or one
    space-separated string per example) or from a fixed list (``words``).  A word is found when
    it occurs as a whole whitespace-separated word of the completion.  An example that requires
    nothing scores ``1``.

    Parameters
    ----------
    key : str
        Dataset column holding each example's required words (default ``"required"``).
    words : sequence of str, optional
        A fixed list instead of a column.
    power : float > 0
        ``< 1`` rewards the first words found most.
    case_sensitive : bool

    Examples
    --------
    >>> from oracles.llm.rewards import Coverage
    >>> Coverage()(["q", "q"], ["a x c", "b"], required=[["a", "b", "c"], "b"])
    [0.6666666666666666, 1.0]
    """

    key: str = "required"
    words: tuple = None
    power: float = 1.0
    case_sensitive: bool = True

    def __post_init__(self):
        check_real(self.power, "power", strict=True)
        if self.words is not None:
            object.__setattr__(self, "words", tuple(str(w) for w in self.words))

    @property
    def name(self):
        return "coverage"

    def _norm(self, s):
        return s if self.case_sensitive else s.lower()

    def __call__(self, prompts, completions, **kwargs):
        n = len(completions)
        required = [self.words] * n if self.words is not None else column(kwargs, self.key, n, self.name)
        out = []
        for c, req in zip(completions, required):
            req = req.split() if isinstance(req, str) else list(req)
            req = {self._norm(str(r)) for r in req}
            if not req:
                out.append(1.0)
                continue
            present = {self._norm(t) for t in completion_text(c).split()}
            out.append((len(req & present) / len(req)) ** self.power)
        return out


@dataclass(frozen=True)
class FormatCompliance:
    r"""Follow a format.

    One pattern: ``r = 1`` if it matches the whole (stripped) completion, else ``0``.  Several
    patterns: ``r`` is the share of them found anywhere in the completion (partial credit).

    Parameters
    ----------
    patterns : str or sequence of str
        Regular expressions (Python ``re``); the default is
        :data:`~oracles.llm.rewards.math.GSM8K_FORMAT`.
    flags : int
        ``re`` flags for every pattern (``re.DOTALL`` by default).

    Examples
    --------
    >>> from oracles.llm.rewards import FormatCompliance
    >>> FormatCompliance()(["q", "q"], ["2 + 2 = 4\\n#### 4", "4"])
    [1.0, 0.0]
    >>> FormatCompliance(["<think>", "</think>", "<answer>"])(["q"], ["<think> hm </think> 4"])
    [0.6666666666666666]
    """

    patterns: Any = GSM8K_FORMAT
    flags: int = re.DOTALL
    _compiled: tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self):
        pats = (self.patterns,) if isinstance(self.patterns, str) else tuple(self.patterns)
        if not pats or not all(isinstance(p, str) for p in pats):
            raise ValueError(
                f"`patterns` must be a regular expression or a non-empty list of them; got {self.patterns!r}."
            )
        object.__setattr__(self, "patterns", pats[0] if isinstance(self.patterns, str) else pats)
        object.__setattr__(self, "_compiled", tuple(re.compile(p, self.flags) for p in pats))

    @property
    def name(self):
        return "format"

    def __call__(self, prompts, completions, **kwargs):
        texts = [completion_text(c).strip() for c in completions]
        if isinstance(self.patterns, str):
            rx = self._compiled[0]
            return [1.0 if rx.fullmatch(t) else 0.0 for t in texts]
        k = len(self._compiled)
        return [sum(1 for rx in self._compiled if rx.search(t)) / k for t in texts]
