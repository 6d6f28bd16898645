r"""Reward functions for LLM oracles, each mapped into ``[0, 1]``, and output diversity.

Every reward follows TRL's convention for reward functions: a plain callable

    ``reward(prompts, completions, **kwargs) -> list[float]``

with one value per completion.  Extra dataset columns (a GSM8K ``answer``, a list of
``required`` words, ...) arrive as keyword arguments, one entry per completion.  Completions
are strings, or conversations (lists of ``{"role", "content"}`` messages) whose assistant
turns are read.  Each reward here is a small frozen object with a ``name`` (used by
:class:`oracles.rlhf.GRPOOracle` for logs and run-store fingerprints) and a repr that shows its
parameters.

The maps into ``[0, 1]`` (the units of every palmopt guarantee)
----------------------------------------------------------------
================================  ====================================================================
:class:`Brevity`                  ``1 - (min(L, max_length) / max_length) ** power``, ``L`` the length
                                  in words, characters or tokens
:class:`Coverage`                 ``(found / required) ** power``: share of the required words present
:class:`AnswerCorrectness`        ``1`` if the final answer equals the reference (numerically), else ``0``
:class:`FormatCompliance`         one pattern: ``1`` if it matches the whole completion, else ``0``;
                                  several: the share of patterns found
:class:`SequenceClassifierReward` ``sigmoid((logit - shift) / scale)``, or ``(logit - low) / (high - low)``
                                  for declared bounds (a logit outside them is an error)
================================  ====================================================================

Nothing here imports torch at module import time; only :class:`SequenceClassifierReward` needs
it, when called.

Diversity
---------
:func:`distinct_n` is the share of distinct word n-grams among all n-grams of a set of texts
(Li et al., 2016, "A diversity-promoting objective function for neural conversation models");
:func:`member_distinct_n` applies it across a portfolio's members on shared prompts.
"""

import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

__all__ = [
    "AnswerCorrectness",
    "Brevity",
    "Coverage",
    "FormatCompliance",
    "RewardFunctionError",
    "SequenceClassifierReward",
    "GSM8K_FORMAT",
    "check_reward_output",
    "completion_text",
    "distinct_n",
    "extract_final_answer",
    "member_distinct_n",
    "reward_name",
]

#: A GSM8K-style completion: reasoning, then ``#### <number>`` at the end.
GSM8K_FORMAT = r"(?s).*####\s*-?\$?[\d,]*\.?\d+\s*"


class RewardFunctionError(ValueError):
    """A reward function returned something unusable; the message names the function."""

    def __init__(self, message, name=None):
        super().__init__(message)
        self.reward_name = name


def reward_name(fn):
    """The display name of a reward function: its ``name`` attribute, ``__name__``, or class name.

    Examples
    --------
    >>> from oracles.rewards import Brevity, reward_name
    >>> def exact(prompts, completions, **kw):
    ...     return [1.0] * len(completions)
    >>> reward_name(exact), reward_name(Brevity(10))
    ('exact', 'brevity')
    """
    name = getattr(fn, "name", None)
    if isinstance(name, str) and name:
        return name
    while hasattr(fn, "func") and hasattr(fn, "args"):  # functools.partial
        fn = fn.func
    return getattr(fn, "__name__", type(fn).__name__)


def completion_text(completion):
    """The text of one completion: a string as is; a conversation's assistant turns joined.

    Examples
    --------
    >>> from oracles.rewards import completion_text
    >>> completion_text([{"role": "assistant", "content": "42"}])
    '42'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        parts = [
            m.get("content", "")
            for m in completion
            if isinstance(m, dict) and m.get("role", "assistant") == "assistant"
        ]
        return "\n".join(str(p) for p in parts)
    raise TypeError(f"a completion must be a string or a list of messages; got {type(completion).__name__}.")


def check_reward_output(values, n, name, completions=None):
    """Validate one reward function's output: ``n`` finite real numbers.

    Parameters
    ----------
    values : sequence
        What the reward function returned.
    n : int
        The number of completions it was given.
    name : str
        The reward function's name (used in the error message).
    completions : sequence, optional
        The completions, quoted in the message when a value is bad.

    Returns
    -------
    list of float

    Raises
    ------
    RewardFunctionError
        Wrong length, ``None``, a non-number, NaN or an infinity.

    Examples
    --------
    >>> from oracles.rewards import check_reward_output
    >>> check_reward_output([0.5, float("nan")], 2, "judge", ["a", "b"])
    Traceback (most recent call last):
    ...
    oracles.rewards.RewardFunctionError: reward function 'judge' returned nan for completion 1 ('b'); rewards must be finite numbers.
    """
    try:
        values = list(values)
    except TypeError:
        raise RewardFunctionError(
            f"reward function {name!r} returned {type(values).__name__}, not a sequence of {n} numbers.", name
        ) from None
    if len(values) != n:
        raise RewardFunctionError(
            f"reward function {name!r} returned {len(values)} values for {n} completions; it must return one "
            f"reward per completion.",
            name,
        )
    out = []
    for i, v in enumerate(values):
        if hasattr(v, "item") and getattr(v, "ndim", 0) == 0:  # numpy / torch scalars
            v = v.item()
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool)
        if not ok or not math.isfinite(float(v)):
            shown = "" if completions is None else f" ({_short(completion_text(completions[i]))!r})"
            raise RewardFunctionError(
                f"reward function {name!r} returned {v!r} for completion {i}{shown}; rewards must be finite numbers.",
                name,
            )
        out.append(float(v))
    return out


def _short(text, n=60):
    return text if len(text) <= n else text[: n - 3] + "..."


def _column(kwargs, key, n, name):
    if key not in kwargs or kwargs[key] is None:
        raise KeyError(
            f"reward function {name!r} needs the dataset column {key!r} (one entry per completion); "
            f"got columns {sorted(k for k in kwargs if not k.startswith(('trainer_', 'log_')))}."
        )
    col = list(kwargs[key])
    if len(col) != n:
        raise ValueError(f"reward function {name!r}: column {key!r} has {len(col)} entries for {n} completions.")
    return col


def _check_positive(x, name, kind=numbers.Real):
    if isinstance(x, bool) or not isinstance(x, kind) or not x > 0:
        raise ValueError(
            f"`{name}` must be a positive {'integer' if kind is numbers.Integral else 'number'}; got {x!r}."
        )


# ------------------------------------------------------------------------------------------
# Rewards
# ------------------------------------------------------------------------------------------


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
        ``completion_ids`` keyword argument that TRL and :class:`~oracles.rlhf.GRPOOracle` pass;
        they include the end-of-sequence token when generation stopped on one).
    power : float > 0
        ``1`` is linear in length; ``2`` charges little for the first words and much for the
        last ones (a concave trade-off against rewards that grow linearly with length).

    Examples
    --------
    >>> from oracles.rewards import Brevity
    >>> Brevity(4)(["q"] * 3, ["", "a b", "a b c d e"])
    [1.0, 0.5, 0.0]
    >>> Brevity(4, power=2)(["q"], ["a b"])
    [0.75]
    """

    max_length: int
    unit: str = "words"
    power: float = 1.0

    def __post_init__(self):
        _check_positive(self.max_length, "max_length", numbers.Integral)
        _check_positive(self.power, "power")
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
    >>> from oracles.rewards import Coverage
    >>> Coverage()(["q", "q"], ["a x c", "b"], required=[["a", "b", "c"], "b"])
    [0.6666666666666666, 1.0]
    """

    key: str = "required"
    words: tuple = None
    power: float = 1.0
    case_sensitive: bool = True

    def __post_init__(self):
        _check_positive(self.power, "power")
        if self.words is not None:
            object.__setattr__(self, "words", tuple(str(w) for w in self.words))

    @property
    def name(self):
        return "coverage"

    def _norm(self, s):
        return s if self.case_sensitive else s.lower()

    def __call__(self, prompts, completions, **kwargs):
        n = len(completions)
        required = [self.words] * n if self.words is not None else _column(kwargs, self.key, n, self.name)
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


_NUMBER = re.compile(r"-?\$?\d[\d,]*\.?\d*|-?\.\d+")


def _parse_number(s):
    s = s.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        return float(s)
    except ValueError:
        return None


def extract_final_answer(text):
    """The final answer of a GSM8K-style text.

    In order: the text after the last ``####``; the content of the last ``\\boxed{...}``; the
    words after the last "answer is"; else the last number in the text.  ``None`` if there is
    none.

    Examples
    --------
    >>> from oracles.rewards import extract_final_answer
    >>> extract_final_answer("3 + 4 = 7 apples.\\n#### 7")
    '7'
    >>> extract_final_answer("So the answer is $1,250.")
    '$1,250'
    >>> extract_final_answer("no digits") is None
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
    worked solution ending in ``#### <number>``; a bare number works too).  Both answers go
    through :func:`extract_final_answer`; numbers are compared with relative tolerance
    ``rtol`` (commas and dollar signs ignored), anything else as stripped strings.  Nothing is
    downloaded: give the data.

    Examples
    --------
    >>> from oracles.rewards import AnswerCorrectness
    >>> reward = AnswerCorrectness()
    >>> reward(["q", "q", "q"], ["... #### 1,000", "I think 12", "#### 7"],
    ...        answer=["5 * 200 = 1000\\n#### 1000", "#### 13", "7"])
    [1.0, 0.0, 1.0]
    """

    key: str = "answer"
    rtol: float = 1e-6

    @property
    def name(self):
        return "correctness"

    def __call__(self, prompts, completions, **kwargs):
        refs = _column(kwargs, self.key, len(completions), self.name)
        out = []
        for c, ref in zip(completions, refs):
            got, want = extract_final_answer(c), extract_final_answer(str(ref))
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


@dataclass(frozen=True)
class FormatCompliance:
    r"""Follow a format.

    One pattern: ``r = 1`` if it matches the whole (stripped) completion, else ``0``.  Several
    patterns: ``r`` is the share of them found anywhere in the completion (partial credit).

    Parameters
    ----------
    patterns : str or sequence of str
        Regular expressions (Python ``re``); the default is :data:`GSM8K_FORMAT`.
    flags : int
        ``re`` flags for every pattern (``re.DOTALL`` by default).

    Examples
    --------
    >>> from oracles.rewards import FormatCompliance
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


class SequenceClassifierReward:
    r"""Adapt a sequence-classification reward model (``AutoModelForSequenceClassification``).

    The model scores ``prompt + completion`` (a conversation through the tokenizer's chat
    template); the logit of output ``label`` is mapped into ``[0, 1]`` by

    * ``map="sigmoid"`` (default): ``r = 1 / (1 + exp(-(logit - shift) / scale))``;
    * ``map="linear"``: ``r = (logit - low) / (high - low)`` with ``bounds=(low, high)``; a
      logit outside the bounds raises :class:`RewardFunctionError` (clipping would hide it).

    Parameters
    ----------
    model : transformers.PreTrainedModel
        Any model whose output has ``.logits`` of shape ``(batch, num_labels)``.
    tokenizer : transformers.PreTrainedTokenizerBase
        The reward model's tokenizer (a missing pad token falls back to end-of-sequence).
    label : int
        Which logit is the reward (``0`` for the usual ``num_labels=1`` reward models).
    map : {"sigmoid", "linear"}
    shift, scale : float
        Sigmoid centre and width (``scale > 0``).
    bounds : (float, float), optional
        ``(low, high)`` for ``map="linear"``.
    batch_size : int
        Texts scored per forward pass.
    max_length : int, optional
        Truncate inputs to this many tokens.
    name : str, optional
        Display name (default: the model's name or ``"reward_model"``).
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        label=0,
        map="sigmoid",
        shift=0.0,
        scale=1.0,
        bounds=None,
        batch_size=16,
        max_length=None,
        name=None,
    ):
        if not callable(model) or not hasattr(model, "config"):
            raise TypeError(f"`model` must be a transformers model with a `config`; got {type(model).__name__}.")
        if tokenizer is None or not callable(tokenizer):
            raise TypeError(f"`tokenizer` must be a transformers tokenizer; got {type(tokenizer).__name__}.")
        if map not in ("sigmoid", "linear"):
            raise ValueError(f"`map` must be 'sigmoid' or 'linear'; got {map!r}.")
        _check_positive(scale, "scale")
        _check_positive(batch_size, "batch_size", numbers.Integral)
        if map == "linear":
            if bounds is None or len(bounds) != 2 or not float(bounds[0]) < float(bounds[1]):
                raise ValueError(f"`bounds` must be (low, high) with low < high for map='linear'; got {bounds!r}.")
            bounds = (float(bounds[0]), float(bounds[1]))
        n_labels = getattr(model.config, "num_labels", None)
        if n_labels is not None and not 0 <= label < n_labels:
            raise ValueError(f"`label` must be in [0, {n_labels}) for this model; got {label}.")
        self.model = model
        self.tokenizer = tokenizer
        self.label = int(label)
        self.map = map
        self.shift = float(shift)
        self.scale = float(scale)
        self.bounds = bounds
        self.batch_size = int(batch_size)
        self.max_length = max_length
        model_id = getattr(model.config, "_name_or_path", "") or ""
        self.name = name or (model_id.rstrip("/").split("/")[-1] if model_id else "reward_model")
        self.__name__ = self.name

    def __repr__(self):
        m = (
            f"map='sigmoid', shift={self.shift}, scale={self.scale}"
            if self.map == "sigmoid"
            else f"map='linear', bounds={self.bounds}"
        )
        cfg = self.model.config
        arch = (getattr(cfg, "architectures", None) or [type(self.model).__name__])[0]
        size = getattr(cfg, "hidden_size", "?"), getattr(cfg, "num_hidden_layers", "?")
        return f"SequenceClassifierReward(name={self.name!r}, model={arch}{size}, label={self.label}, {m})"

    def _texts(self, prompts, completions):
        texts = []
        for p, c in zip(prompts, completions):
            if isinstance(p, (list, tuple)) and not isinstance(c, str):
                texts.append(self.tokenizer.apply_chat_template(list(p) + list(c), tokenize=False))
            else:
                texts.append(completion_text(p) + completion_text(c))
        return texts

    def logits(self, prompts, completions):
        """The raw logits (list of float), before the map into ``[0, 1]``."""
        import torch

        tok = self.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self.model.config.pad_token_id = tok.pad_token_id
        texts = self._texts(prompts, completions)
        device = next(self.model.parameters()).device
        out = []
        was_training = self.model.training
        self.model.eval()
        try:
            for i in range(0, len(texts), self.batch_size):
                enc = tok(
                    texts[i : i + self.batch_size],
                    return_tensors="pt",
                    padding=True,
                    padding_side="right",
                    truncation=self.max_length is not None,
                    max_length=self.max_length,
                    add_special_tokens=False,
                ).to(device)
                with torch.inference_mode():
                    logits = self.model(**enc).logits[:, self.label]
                out.extend(logits.float().cpu().tolist())
        finally:
            self.model.train(was_training)
        return out

    def __call__(self, prompts, completions, **kwargs):
        logits = check_reward_output(self.logits(prompts, completions), len(completions), self.name, completions)
        if self.map == "sigmoid":
            return [_sigmoid((z - self.shift) / self.scale) for z in logits]
        lo, hi = self.bounds
        for i, z in enumerate(logits):
            if not lo <= z <= hi:
                raise RewardFunctionError(
                    f"reward function {self.name!r}: logit {z:.6g} for completion {i} is outside the declared "
                    f"bounds [{lo:g}, {hi:g}]; widen `bounds` or use map='sigmoid'.",
                    self.name,
                )
        return [(z - lo) / (hi - lo) for z in logits]


def _sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


# ------------------------------------------------------------------------------------------
# Diversity
# ------------------------------------------------------------------------------------------


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
    >>> from oracles.rewards import distinct_n
    >>> distinct_n(["a b a b", "a b c"], n=1)
    0.42857142857142855
    >>> distinct_n(["a b a b", "a b c"], n=2)
    0.6
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"`n` must be an integer >= 1; got {n!r}.")
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
    >>> from oracles.rewards import member_distinct_n
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
