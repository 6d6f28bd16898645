r"""A learned reward: a sequence-classification reward model's logit, mapped into ``[0, 1]``.

:class:`SequenceClassifierReward` maps the logit by ``sigmoid((logit - shift) / scale)``, or by
``(logit - low) / (high - low)`` for declared bounds (a logit outside them is an error).
It imports torch only when called.
"""

import contextlib
import math

from palmopt.validation import check_count, check_real, check_value_range

from ..hf import with_pad_token

from .base import RewardFunctionError, check_reward_output, completion_text

__all__ = ["SequenceClassifierReward"]


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
