r"""A learned reward: a sequence-classification reward model's logit, mapped into ``[0, 1]``.

:class:`SequenceClassifierReward` maps the logit by ``sigmoid((logit - shift) / scale)``, or by
``(logit - low) / (high - low)`` for declared bounds (a logit outside them is an error).
It imports torch only when called.
"""

import contextlib
import copy
import math
import os

from palmopt.validation import check_count, check_real, check_value_range

from ..hf import with_pad_token

from .base import RewardFunctionError, check_reward_output, completion_text

__all__ = ["LazyClassifierReward", "SequenceClassifierReward"]


class SequenceClassifierReward:
    r"""Adapt a sequence-classification reward model (``AutoModelForSequenceClassification``).

    The model scores ``prompt + completion`` (a conversation through the tokenizer's chat
    template); the logit of output ``label`` is mapped into ``[0, 1]`` by

    * ``map="sigmoid"`` (default): ``r = 1 / (1 + exp(-(logit - shift) / scale))``;
    * ``map="linear"``: ``r = (logit - low) / (high - low)`` with ``bounds=(low, high)``; a
      logit outside the bounds raises :class:`~oracles.llm.rewards.RewardFunctionError`
      (clipping would hide it).

    Neither the model nor the tokenizer is modified: a tokenizer without a pad token is copied
    (the copy pads with end-of-sequence), and the model reads the tokenizer's pad id only for
    the duration of each call.

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
        check_real(scale, "scale", strict=True)
        check_count(batch_size, "batch_size")
        if map == "linear":
            if bounds is None:
                raise ValueError("`bounds` must be given, (low, high) with low < high, for map='linear'.")
            bounds = check_value_range(bounds, "bounds")
        n_labels = getattr(model.config, "num_labels", None)
        if n_labels is not None and not 0 <= label < n_labels:
            raise ValueError(f"`label` must be in [0, {n_labels}) for this model; got {label}.")
        tokenizer = with_pad_token(tokenizer)  # pads with end-of-sequence on a copy if it must
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
        texts = self._texts(prompts, completions)
        device = next(self.model.parameters()).device
        out = []
        was_training = self.model.training
        self.model.eval()
        try:
            # the model finds each text's last token by the pad id: the tokenizer's, for this call only
            with _attribute(self.model.config, "pad_token_id", tok.pad_token_id):
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


@contextlib.contextmanager
def _attribute(obj, name, value):
    """Set ``obj.name = value`` inside the block; the previous value comes back afterwards."""
    missing = object()
    old = getattr(obj, name, missing)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if old is missing:
            delattr(obj, name)
        else:
            setattr(obj, name, old)


def _sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


class LazyClassifierReward:
    r"""A reward model named by where to load it from, loaded on first use in the process that scores.

    The oracle (and anything that pickles it: process pools, Ray workers) carries only the
    *specification* -- a model name or path, or a ``"module:function"`` factory, with dtype and
    device -- never the weights; the model is loaded the first time the reward is called and is
    dropped when the object is pickled.

    The score is the logit of output ``label``, negated for cost models (``negate=True``:
    lower cost is better), then mapped into ``[0, 1]``:

    * with ``bounds=(low, high)`` (from :meth:`calibrated`, e.g. on the base policy's samples):
      ``r = clip((s - low) / (high - low), 0, 1)``; a score outside the bounds is *clipped and
      counted* (``n_clipped`` of ``n_scored``), not an error -- a trained policy is expected to
      leave the base policy's range now and then;
    * without bounds: ``sigmoid(s)``.

    Parameters
    ----------
    source : str
        ``AutoModelForSequenceClassification.from_pretrained`` name or path (its tokenizer from
        the same place), or ``"package.module:function"``: a factory ``function(**factory_kwargs)
        -> (model, tokenizer)``.
    name : str
        The reward's name (logs, reports).
    dtype : {None, "float32", "bfloat16", "float16", "auto"}
    device : str, optional
        ``None``: CUDA when available, else CPU.
    label : int
    negate : bool
        Score ``-logit`` (cost models).
    bounds : (float, float), optional
    batch_size, max_length :
        As in :class:`SequenceClassifierReward`.
    factory_kwargs : Mapping, optional

    Examples
    --------
    >>> from oracles.llm.rewards import LazyClassifierReward
    >>> cost = LazyClassifierReward("PKU-Alignment/beaver-7b-v1.0-cost", name="harmlessness", negate=True)
    >>> cost.loaded, cost.with_bounds(-3.0, 5.0)
    (False, LazyClassifierReward(name='harmlessness', source='PKU-Alignment/beaver-7b-v1.0-cost', label=0, negate=True, bounds=(-3.0, 5.0)))
    """

    def __init__(
        self,
        source,
        *,
        name,
        dtype=None,
        device=None,
        label=0,
        negate=False,
        bounds=None,
        batch_size=16,
        max_length=None,
        factory_kwargs=None,
    ):
        if not isinstance(source, str) or not source:
            raise TypeError(f"`source` must be a model name/path or 'module:function'; got {source!r}.")
        if not isinstance(name, str) or not name:
            raise TypeError(f"`name` must be a non-empty string; got {name!r}.")
        if dtype not in (None, "auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"`dtype` must be None, 'auto', 'float32', 'bfloat16' or 'float16'; got {dtype!r}.")
        check_count(batch_size, "batch_size")
        if bounds is not None:
            bounds = check_value_range(bounds, "bounds")
        self.source = source
        self.name = self.__name__ = name
        self.dtype = dtype
        self.device = device
        self.label = int(label)
        self.negate = bool(negate)
        self.bounds = None if bounds is None else (float(bounds[0]), float(bounds[1]))
        self.batch_size = int(batch_size)
        self.max_length = max_length
        self.factory_kwargs = dict(factory_kwargs or {})
        self.n_scored = 0
        self.n_clipped = 0
        self._scorer = None

    # -- identity and pickling --------------------------------------------------------------

    def __repr__(self):
        b = None if self.bounds is None else tuple(round(x, 6) for x in self.bounds)
        return (
            f"LazyClassifierReward(name={self.name!r}, source={self.source!r}, label={self.label}, "
            f"negate={self.negate}, bounds={b})"
        )

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_scorer"] = None  # the weights never travel: a worker loads them on first use
        return state

    @property
    def loaded(self):
        return self._scorer is not None

    def with_bounds(self, low, high):
        """A copy mapping ``[low, high]`` onto ``[0, 1]`` (the loaded model is shared, not reloaded)."""
        other = copy.copy(self)
        other.bounds = tuple(float(x) for x in check_value_range((low, high), "bounds"))
        other.n_scored = other.n_clipped = 0
        return other

    def calibrated(self, prompts, completions, *, quantiles=(0.0, 1.0), margin=0.0):
        """A copy whose bounds are the ``quantiles`` of the scores of ``completions`` (e.g. the base
        policy's samples), widened by ``margin`` times their spread on each side."""
        import numpy as np

        s = np.asarray(self.scores(prompts, completions), dtype=float)
        lo, hi = np.quantile(s, quantiles)
        spread = max(hi - lo, 1e-6)
        return self.with_bounds(lo - margin * spread, hi + margin * spread)

    # -- scoring ----------------------------------------------------------------------------

    def _load(self):
        if self._scorer is None:
            self._scorer = SequenceClassifierReward(
                *_load_classifier(self.source, self.dtype, self.device, self.factory_kwargs),
                label=self.label,
                batch_size=self.batch_size,
                max_length=self.max_length,
                name=self.name,
            )
        return self._scorer

    def scores(self, prompts, completions):
        """The signed logits (``-logit`` for ``negate=True``), before the map into ``[0, 1]``."""
        z = self._load().logits(prompts, completions)
        return [-v for v in z] if self.negate else list(z)

    def __call__(self, prompts, completions, **kwargs):
        s = check_reward_output(self.scores(prompts, completions), len(completions), self.name, completions)
        self.n_scored += len(s)
        if self.bounds is None:
            return [_sigmoid(v) for v in s]
        lo, hi = self.bounds
        out = []
        for v in s:
            r = (v - lo) / (hi - lo)
            if r < 0.0 or r > 1.0:
                self.n_clipped += 1
                r = min(1.0, max(0.0, r))
            out.append(r)
        return out


def _load_classifier(source, dtype, device, factory_kwargs):
    """``(model, tokenizer)`` from a name/path or a ``"module:function"`` factory, on ``device``, in eval mode."""
    import importlib

    import torch

    if ":" in source and not os.path.exists(source):
        module, _, fn = source.partition(":")
        model, tokenizer = getattr(importlib.import_module(module), fn)(**factory_kwargs)
    else:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        kwargs = {} if dtype is None else {"dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
        model = AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(source)
    if dtype not in (None, "auto"):
        model = model.to(getattr(torch, dtype))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), tokenizer
