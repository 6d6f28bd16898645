"""oracles.llm.rewards: the maps into [0, 1] and the checks on reward output."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oracles.llm.rewards import (
    GSM8K_FORMAT,
    AnswerCorrectness,
    Brevity,
    Coverage,
    FormatCompliance,
    RewardFunctionError,
    check_reward_output,
    completion_text,
    extract_final_answer,
    reward_name,
)

words = st.lists(st.sampled_from(["a", "b", "c", "d", "x"]), max_size=12).map(" ".join)


# -- brevity ----------------------------------------------------------------------------


def test_brevity_map():
    r = Brevity(4)
    assert r(["p"] * 4, ["", "a", "a b c d", "a b c d e f"]) == [1.0, 0.75, 0.0, 0.0]
    assert Brevity(4, power=2)(["p"], ["a b"]) == [0.75]
    assert Brevity(10, unit="chars")(["p"], ["abcde"]) == [0.5]
    assert Brevity(4, unit="tokens")(["p", "p"], ["x", "y"], completion_ids=[[5], [5, 6, 1]]) == [0.75, 0.25]


def test_brevity_tokens_need_ids():
    with pytest.raises(KeyError, match="brevity.*completion_ids"):
        Brevity(4, unit="tokens")(["p"], ["a"])


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"max_length": 0}, ValueError, "`max_length` must be >= 1"),
        ({"max_length": 2.5}, TypeError, "`max_length` must be an integer"),
        ({"max_length": 3, "power": 0}, ValueError, "`power` must be a finite number > 0"),
        ({"max_length": 3, "unit": "bytes"}, ValueError, "unit"),
    ],
)
def test_brevity_rejects_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Brevity(**kwargs)


@given(words, words)
def test_brevity_in_unit_interval_and_monotone(a, b):
    r = Brevity(6, power=1.5)
    ra, rb = r(["p", "p"], [a, b])
    assert 0.0 <= ra <= 1.0 and 0.0 <= rb <= 1.0
    if len(a.split()) <= len(b.split()):
        assert ra >= rb


# -- coverage ---------------------------------------------------------------------------


def test_coverage_from_column_and_fixed_words():
    r = Coverage()
    assert r(["p", "p", "p"], ["a b", "c", "anything"], required=[["a", "b", "c"], "c d", []]) == [2 / 3, 0.5, 1.0]
    assert Coverage(words=["Yes"], case_sensitive=False)(["p", "p"], ["yes sir", "no"]) == [1.0, 0.0]
    assert Coverage(power=0.5)(["p"], ["a"], required=[["a", "b", "c", "d"]]) == [0.5]


def test_coverage_missing_column_names_the_reward():
    with pytest.raises(KeyError, match="'coverage' needs the dataset column 'required'"):
        Coverage()(["p"], ["a"])


@given(words, st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3))
def test_coverage_in_unit_interval(text, req):
    (v,) = Coverage()(["p"], [text], required=[req])
    assert 0.0 <= v <= 1.0


# -- correctness and format --------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("She has 3 + 4 = 7 apples.\n#### 7", "7"),
        ("#### 1,250", "1,250"),
        ("so \\boxed{42} is it", "42"),
        ("The answer is 3.5.", "3.5"),
        ("first 3 then 12", "12"),
        ("no number", None),
        ([{"role": "assistant", "content": "#### -2"}], "-2"),
    ],
)
def test_extract_final_answer(text, expected):
    assert extract_final_answer(text) == expected


def test_answer_correctness_gsm8k():
    r = AnswerCorrectness()
    refs = ["Natalia sold 48/2 = 24 clips in May.\n#### 72", "#### 1000", "#### 5", "#### 5"]
    got = r(["q"] * 4, ["48 + 24 = 72\n#### 72", "It costs $1,000.", "#### 5.0", "#### 6"], answer=refs)
    assert got == [1.0, 0.0, 1.0, 0.0]  # strict: "It costs $1,000." has no marked answer
    lenient = AnswerCorrectness(fallback=True)
    assert lenient(["q"] * 2, ["It costs $1,000.", "so the answer is 5"], answer=refs[1:3]) == [1.0, 1.0]
    # a completion truncated in its reasoning earns nothing, even when its last number is the answer
    assert r(["q"], ["48/2 = 24, so 48 + 24 = 72 and then"], answer=refs[:1]) == [0.0]
    assert r(["q"], [r"so \boxed{72}"], answer=refs[:1]) == [1.0]
    with pytest.raises(KeyError, match="'correctness' needs the dataset column 'answer'"):
        r(["q"], ["#### 1"])


def test_format_compliance():
    assert FormatCompliance()(["q", "q", "q"], ["x = 2\n#### 2", "2", "#### 2 because"]) == [1.0, 0.0, 0.0]
    partial = FormatCompliance(["<think>", "</think>", r"<answer>.*</answer>"])
    assert partial(["q"], ["<think>hm</think><answer>4</answer>"]) == [1.0]
    assert partial(["q"], ["<think>"]) == [pytest.approx(1 / 3)]
    assert GSM8K_FORMAT
    with pytest.raises(ValueError, match="patterns"):
        FormatCompliance([])


# -- checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, message",
    [
        ([0.5], "'judge' returned 1 values for 2 completions"),
        ([0.5, None], "'judge' returned None for completion 1"),
        ([0.5, float("nan")], "'judge' returned nan for completion 1"),
        ([float("inf"), 0.5], "'judge' returned inf for completion 0"),
        ([True, 0.5], "'judge' returned True for completion 0"),
        ([0.5, "1"], "'judge' returned '1' for completion 1"),
        (0.5, "'judge' returned float, not a sequence"),
    ],
)
def test_check_reward_output_names_the_function(values, message):
    with pytest.raises(RewardFunctionError, match=message) as err:
        check_reward_output(values, 2, "judge", ["a", "b"])
    assert err.value.reward_name == "judge"


def test_check_reward_output_accepts_numpy_scalars():
    np = pytest.importorskip("numpy")
    assert check_reward_output(np.array([0.25, 1.0]), 2, "r") == [0.25, 1.0]


def test_names_and_texts():
    import functools

    def judge(prompts, completions, **kw):
        return [0.0] * len(completions)

    assert reward_name(judge) == "judge"
    assert reward_name(functools.partial(judge)) == "judge"
    assert [reward_name(r) for r in (Brevity(3), Coverage(), AnswerCorrectness(), FormatCompliance())] == [
        "brevity",
        "coverage",
        "correctness",
        "format",
    ]
    assert completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == "a"
    assert "power=2" in repr(Brevity(3, power=2))


# -- the sequence-classification adapter (needs torch + transformers) ----------------------


def _tiny_classifier(pad_token="<pad>", pad_token_id=0):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    from .tiny import make_reward_model

    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", "<unk>", "a", "b", "c", "q"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=pad_token, eos_token="<eos>", unk_token="<unk>"
    )
    return make_reward_model(len(vocab), pad_token_id), tokenizer


def test_sequence_classifier_reward_maps_logits():
    from oracles.llm.rewards import SequenceClassifierReward

    model, tokenizer = _tiny_classifier()
    prompts, completions = ["q ", "q ", "q "], ["a b", "c", "a a a c"]
    r = SequenceClassifierReward(model, tokenizer, batch_size=2)
    logits = r.logits(prompts, completions)
    values = r(prompts, completions)
    assert len(values) == 3 and all(0.0 < v < 1.0 for v in values)
    assert values == pytest.approx([1 / (1 + math.exp(-z)) for z in logits])
    # scoring is per text: batching and padding do not change a text's logit
    assert r.logits(prompts[:1], completions[:1]) == pytest.approx(logits[:1], abs=1e-5)
    lo, hi = min(logits) - 1, max(logits) + 1
    lin = SequenceClassifierReward(model, tokenizer, map="linear", bounds=(lo, hi))
    assert lin(prompts, completions) == pytest.approx([(z - lo) / (hi - lo) for z in logits])
    tight = SequenceClassifierReward(
        model, tokenizer, map="linear", bounds=(max(logits) + 1, max(logits) + 2), name="rm"
    )
    with pytest.raises(RewardFunctionError, match="'rm': logit .* outside the declared bounds"):
        tight(prompts, completions)
    with pytest.raises(ValueError, match="bounds"):
        SequenceClassifierReward(model, tokenizer, map="linear")
    with pytest.raises(ValueError, match="label"):
        SequenceClassifierReward(model, tokenizer, label=3)
    assert "SequenceClassifierReward(name=" in repr(r)


def test_sequence_classifier_reward_leaves_tokenizer_and_model_alone():
    from oracles.llm.rewards import SequenceClassifierReward

    model, tokenizer = _tiny_classifier(pad_token=None, pad_token_id=None)
    prompts, completions = ["q ", "q ", "q "], ["a b", "c", "a a a c"]
    r = SequenceClassifierReward(model, tokenizer, batch_size=3)
    logits = r.logits(prompts, completions)  # one padded batch: padded with end-of-sequence
    assert logits == pytest.approx([r.logits([p], [c])[0] for p, c in zip(prompts, completions)], abs=1e-5)
    assert tokenizer.pad_token is None and model.config.pad_token_id is None
    assert r.tokenizer is not tokenizer and r.tokenizer.pad_token == "<eos>"


# -- reward models named by path, loaded lazily ----------------------------------------------

WORDS_RM = ["need", ":", "->", *"abcdefgh"]


def _lazy(**kwargs):
    from oracles.llm.rewards import LazyClassifierReward

    return LazyClassifierReward(
        "oracles.llm.smoke:tiny_classifier",
        name=kwargs.pop("name", "helpful"),
        factory_kwargs={"family": "llama", "words": WORDS_RM, "seed": 3},
        **kwargs,
    )


def test_lazy_reward_model_loads_on_first_use_and_never_travels_pickled():
    import pickle

    pytest.importorskip("transformers")
    r = _lazy()
    assert not r.loaded
    prompts, completions = ["need : a b ->"] * 3, ["a", "b c", ""]
    first = r(prompts, completions)
    assert r.loaded and all(0 < v < 1 for v in first)  # no bounds: sigmoid of the logit
    clone = pickle.loads(pickle.dumps(r))
    assert not clone.loaded and len(pickle.dumps(r)) < 2000  # the weights stayed behind
    assert clone(prompts, completions) == pytest.approx(first)  # and load again where it is called
    cost = _lazy(name="harmless", negate=True)
    assert cost.scores(prompts, completions) == pytest.approx([-z for z in r.scores(prompts, completions)])


def test_calibration_maps_base_samples_into_the_unit_interval_and_counts_clipping():
    pytest.importorskip("transformers")
    r = _lazy()
    prompts = ["need : a b ->"] * 6
    base = ["a", "b", "a b", "c", "", "d e"]
    cal = r.calibrated(prompts, base, quantiles=(0.0, 1.0), margin=0.0)
    values = cal(prompts, base)
    assert min(values) == pytest.approx(0.0) and max(values) == pytest.approx(1.0)
    assert cal.n_scored == 6 and cal.n_clipped == 0
    lo, hi = cal.bounds
    narrow = cal.with_bounds(lo, lo + (hi - lo) / 4)  # most base samples now score above the range
    out = narrow(prompts, base)
    assert all(0 <= v <= 1 for v in out) and narrow.n_clipped >= 3 and narrow.n_scored == 6  # clipped, not an error
    assert repr(cal) != repr(r) and "bounds=" in repr(cal)  # the calibration is part of the fingerprint
