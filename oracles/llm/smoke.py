r"""The stand-ins of a smoke run (:mod:`oracles.llm.experiment`): a word-level tokenizer over the
shipped prompts, tiny random causal LMs and sequence classifiers of a given family, built from
configs (nothing is downloaded)."""

__all__ = ["smoke_words", "tiny_causal_lm", "tiny_classifier", "tiny_tokenizer"]

_SPECIAL = ["<pad>", "<eos>", "<unk>"]
_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} \n{% endfor %}"
    "{% if add_generation_prompt %}assistant : {% endif %}"
)


def tiny_tokenizer(words):
    """A word-level tokenizer over ``words`` (plus pad/eos/unk), with a plain chat template; in memory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(_SPECIAL + [w for w in words if w not in _SPECIAL])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")
    out = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    out.chat_template = _CHAT_TEMPLATE
    return out


def _tiny_config(family, vocab_size, **extra):
    from transformers import AutoConfig

    return AutoConfig.for_model(
        family,
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
        tie_word_embeddings=False,
        **extra,
    )


def tiny_causal_lm(family, vocab_size, seed=0):
    """A tiny random causal LM of ``family`` (2 layers, hidden 32) built from a config; seeded."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(_tiny_config(family, vocab_size))


def tiny_classifier(family, words, seed=0, num_labels=1):
    """``(model, tokenizer)``: a tiny random sequence classifier (one logit) of ``family``; the smoke
    stand-in for a reward or cost model, loaded through :class:`~oracles.llm.rewards.LazyClassifierReward`."""
    import torch
    from transformers import AutoModelForSequenceClassification

    tok = tiny_tokenizer(words)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_config(_tiny_config(family, len(tok), num_labels=num_labels))
    return model.eval(), tok


def smoke_words(rows):
    """The tiny tokenizer's vocabulary: every word of the smoke prompts and answers, and of the template."""
    from tokenizers import pre_tokenizers

    pre = pre_tokenizers.Whitespace()
    words = set("0123456789") | {"####", "assistant", "user", "system", ":"}
    for r in rows:
        texts = [m["content"] for m in r["prompt"]] if isinstance(r["prompt"], list) else [r["prompt"]]
        texts += [str(v) for k, v in r.items() if k != "prompt"]
        for t in texts:
            words.update(w for w, _ in pre.pre_tokenize_str(t))
    return sorted(words)
