r"""Verifiable answers to maths word problems (GSM8K style): final-answer extraction and correctness.

:class:`AnswerCorrectness` is ``1`` if the final answer equals the reference (numerically),
else ``0``.  Nothing is downloaded: give the data.
"""

import re
from dataclasses import dataclass

from .base import column, completion_text

__all__ = ["AnswerCorrectness", "GSM8K_FORMAT", "extract_final_answer"]

#: A GSM8K-style completion: reasoning, then ``#### <number>`` at the end.
GSM8K_FORMAT = r"(?s).*####\s*-?\$?[\d,]*\.?\d+\s*"

_NUMBER = re.compile(r"-?\$?\d[\d,]*\.?\d*|-?\.\d+")


def _parse_number(s):
    s = s.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        return float(s)
    except ValueError:
        return None


def extract_final_answer(text, *, fallback=True):
    """The final answer of a GSM8K-style text.

    In order: the text after the last ``####``; the content of the last ``\\boxed{...}``; then,
    only with ``fallback=True`` (the default here, for reference answers), the words after the
    last "answer is", else the last number in the text.  ``None`` if there is none.

    Examples
    --------
    >>> from oracles.llm.rewards import extract_final_answer
    >>> extract_final_answer("3 + 4 = 7 apples.\\n#### 7")
    '7'
    >>> extract_final_answer("So the answer is $1,250.")
    '$1,250'
    >>> extract_final_answer("no digits") is None
    True
    >>> extract_final_answer("3 + 4 = 7 apples, and then", fallback=False) is None  # strict: no marker
    True
    """
    text = completion_text(text)
    if "####" in text:
        tail = text.rsplit("####", 1)[1].strip()
        m = _NUMBER.search(tail)
        return m.group(0) if m else (tail.split()[0] if tail.split() else None)
    boxed = re.findall(r"\\boxed\{([^{}]*)\}", text)
    if boxed:
        return boxed[-1].strip()
    if not fallback:
        return None
    idx = text.lower().rfind("answer is")
    if idx >= 0:
        m = _NUMBER.search(text[idx:])
        if m:
            return m.group(0).rstrip(".")
    numbers_ = _NUMBER.findall(text)
    return numbers_[-1].rstrip(".") if numbers_ else None


@dataclass(frozen=True)
class AnswerCorrectness:
    r"""Verifiable correctness: ``r = 1`` if the completion's final answer equals the reference.

    The reference is read from dataset column ``key`` (GSM8K's ``answer`` column holds the
    worked solution ending in ``#### <number>``; a bare number works too).  The completion's
    answer is graded strictly: it must be marked, after ``####`` or in ``\boxed{}``
    (:func:`extract_final_answer` with ``fallback=False``), so a truncated completion whose last
    number happens to be right scores 0.  ``fallback=True`` also credits "the answer is N" and,
    failing that, the last number (lenient grading; say so when you report it).  Numbers are
    compared with relative tolerance ``rtol`` (commas and dollar signs ignored), anything else as
    stripped strings.  Nothing is downloaded: give the data.

    Examples
    --------
    >>> from oracles.llm.rewards import AnswerCorrectness
    >>> reward = AnswerCorrectness()
    >>> reward(["q", "q", "q"], ["... #### 1,000", "I think 12", "#### 7"],
    ...        answer=["5 * 200 = 1000\\n#### 1000", "#### 13", "7"])
    [1.0, 0.0, 1.0]
    >>> reward(["q"], ["5 * 200 = 1000 so"], answer=["#### 1000"])  # truncated before its answer
    [0.0]
    >>> AnswerCorrectness(fallback=True)(["q"], ["5 * 200 = 1000 so"], answer=["#### 1000"])
    [1.0]
    """

    key: str = "answer"
    rtol: float = 1e-6
    fallback: bool = False

    @property
    def name(self):
        return "correctness"

    def __call__(self, prompts, completions, **kwargs):
        refs = column(kwargs, self.key, len(completions), self.name)
        out = []
        for c, ref in zip(completions, refs):
            got, want = extract_final_answer(c, fallback=self.fallback), extract_final_answer(str(ref))
            if got is None or want is None:
                out.append(0.0)
                continue
            a, b = _parse_number(got), _parse_number(want)
            if a is not None and b is not None:
                ok = abs(a - b) <= self.rtol * max(1.0, abs(b))
            else:
                ok = got.strip() == want.strip()
            out.append(1.0 if ok else 0.0)
        return out
