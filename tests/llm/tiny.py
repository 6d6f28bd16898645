"""A tiny causal LM built from a config and an in-memory word-level tokenizer (nothing downloaded),
and the prompts, rewards and oracle settings the LLM tests share.  Imports torch only when called."""

import json

from oracles.llm import GRPOOracle
from oracles.llm.rewards import Brevity, Coverage

LETTERS = list("abcdefgh")
WORDS = ["<pad>", "<eos>", "<unk>", "need", ":", "->", *LETTERS]

TINY = {
    "max_steps": 2,
    "learning_rate": 1e-3,
    "per_device_train_batch_size": 8,
    "num_generations": 4,
    "max_completion_length": 4,
    "eval_samples": 2,
}


def make_tokenizer(pad_token="<pad>"):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=pad_token, eos_token="<eos>", unk_token="<unk>")


def _seeded(model_class, config, seed):
    """``model_class(config)`` initialised from ``seed``, leaving the caller's random state as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_class(config)


def make_reward_model(vocab_size, pad_token_id=0, seed=0):
    """A fresh, seeded tiny Llama sequence classifier (one logit); the caller's random state is left as it was."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_labels=1,
        pad_token_id=pad_token_id,
    )
    return _seeded(LlamaForSequenceClassification, config, seed).eval()


def make_model(seed=0):
    """A fresh, seeded tiny Llama; the caller's random state is left as it was."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(WORDS),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=32,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    return _seeded(LlamaForCausalLM, config, seed)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def rows(pairs):
    return [{"prompt": "need : " + " ".join(p) + " ->", "required": list(p)} for p in pairs]


TRAIN = rows([(a, b) for a in "abcd" for b in "efgh"])
EVAL = rows([("a", "b"), ("c", "d"), ("e", "f"), ("g", "h")])


def one(prompts, completions, **kw):
    return [1.0] * len(completions)


def zero(prompts, completions, **kw):
    return [0.0] * len(completions)


def make_oracle(run_dir, rewards=None, config=None, **kwargs):
    return GRPOOracle(
        make_model,
        rewards if rewards is not None else [Brevity(3), Coverage()],
        kwargs.pop("train", TRAIN),
        kwargs.pop("eval", EVAL),
        run_dir,
        tokenizer=kwargs.pop("tokenizer", None) or make_tokenizer(),
        config={**TINY, **(config or {})},
        **kwargs,
    )
