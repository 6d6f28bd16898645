"""oracles.rlhf on CPU: a tiny causal LM built from a config and an in-memory word-level
tokenizer (nothing downloaded).  Each oracle call trains a few GRPO steps."""

import importlib.util
import json
import os

import numpy as np
import pytest

pytest.importorskip("trl", reason="oracles.rlhf needs the `llm` extra (torch, transformers, trl, peft)")

import torch  # noqa: E402

import palmopt  # noqa: E402
from palmopt.oracle import OracleError, checked  # noqa: E402
from oracles.rewards import Brevity, Coverage, RewardFunctionError  # noqa: E402
from oracles.rlhf import (  # noqa: E402
    GRPOOracle,
    GRPOOracleConfig,
    LogitMixConfig,
    LogitMixOracle,
    generate,
    load_adapter,
)
from palmopt.store import RunStore, StoreMismatchError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run several times faster on one thread (OpenMP start-up per op)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def make_model(seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
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
    return LlamaForCausalLM(config)


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
        tokenizer=make_tokenizer(),
        config={**TINY, **(config or {})},
        **kwargs,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One oracle and two calls, shared by the tests that only read them."""
    run = tmp_path_factory.mktemp("grpo")
    oracle = make_oracle(str(run))
    sols = [checked(oracle)(w) for w in ([1.0, 0.0], [0.0, 1.0])]
    return oracle, sols


# -- one call ------------------------------------------------------------------------------


def test_call_returns_held_out_values_in_the_unit_cube(trained):
    oracle, (sol, _) = trained
    assert oracle.d == 2 and oracle.reward_names == ("brevity", "coverage")
    assert sol.values.shape == (2,) and np.all(np.isfinite(sol.values))
    assert np.all((0 <= sol.values) & (sol.values <= 1))
    se = np.array(sol.info["stderr"])
    assert se.shape == (2,) and np.all(np.isfinite(se)) and np.all(se >= 0)
    assert os.path.isfile(os.path.join(sol.policy, "adapter_config.json"))
    assert sol.info["seed"] == 0 and sol.info["eval_seed"] == 1
    assert set(sol.info["versions"]) == {"torch", "transformers", "trl", "peft"}
    # the values are the mean of the held-out samples' rewards, not of the training logs
    samples = read_json(sol.info["eval_samples"])
    assert len(samples) == len(EVAL) * TINY["eval_samples"]
    assert {s["prompt"] for s in samples} == {r["prompt"] for r in EVAL}
    assert np.allclose(np.mean([s["rewards"] for s in samples], axis=0), sol.values)
    assert os.path.basename(os.path.dirname(sol.policy)).startswith("w1.0000-0.0000-")


def test_weighted_training_reward_is_w_dot_r(tmp_path):
    oracle = make_oracle(str(tmp_path), rewards=[one, zero])
    sol = oracle([0.7, 0.3])
    log = read_json(sol.info["train_log"])
    steps = [h for h in log if "reward" in h]
    assert len(steps) == TINY["max_steps"]
    for h in steps:  # TRL's logged reward: sum_i w_i r_i with r = (1, 0)
        assert h["reward"] == pytest.approx(0.7, abs=1e-6)
        assert h["rewards/one/mean"] == 1.0 and h["rewards/zero/mean"] == 0.0
    assert sol.values.tolist() == [1.0, 0.0] and sol.info["stderr"] == [0.0, 0.0]


def test_repeated_call_is_answered_from_the_run_directory(trained):
    oracle, (sol, _) = trained
    again = oracle([1.0, 0.0])
    assert again.info["cached"] is True and again.policy == sol.policy
    assert np.array_equal(again.values, sol.values)
    assert [w.tolist() for w, _ in oracle.history()] == [[1.0, 0.0], [0.0, 1.0]]


def test_warm_start_uses_the_nearest_adapter(trained, tmp_path):
    import shutil

    oracle, _ = trained

    shutil.copytree(os.path.join(oracle.run_dir, "calls"), os.path.join(tmp_path, "calls"))
    warm = make_oracle(str(tmp_path), config={"warm_start": True})
    assert warm.fingerprint() != oracle.fingerprint()
    assert warm([0.8, 0.2]).info["warm_start_from"] is None  # the copied calls have another fingerprint
    sol = warm([0.3, 0.7])
    start = sol.info["warm_start_from"]
    assert "w0.8000-0.2000-" in start and start.endswith("adapter") and os.path.isdir(start)


def test_conversational_prompts(tmp_path):
    tok = make_tokenizer()
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    conv = [{"prompt": [{"role": "user", "content": r["prompt"]}], "required": r["required"]} for r in TRAIN]
    oracle = GRPOOracle(make_model, [Brevity(3), Coverage()], conv, conv[:3], str(tmp_path), tokenizer=tok, config=TINY)
    sol = oracle([0.5, 0.5])
    assert np.all((0 <= sol.values) & (sol.values <= 1))
    samples = read_json(sol.info["eval_samples"])
    assert all(s["completion"][0]["role"] == "assistant" for s in samples)


# -- refusals and errors -------------------------------------------------------------------


def test_normalize_then_sum_is_refused(tmp_path):
    with pytest.raises(ValueError, match="normalize_then_sum.*no longer optimises w·r"):
        GRPOOracleConfig(multi_objective_aggregation="normalize_then_sum")
    with pytest.raises(ValueError, match="normalize_then_sum"):
        make_oracle(str(tmp_path), config={"multi_objective_aggregation": "normalize_then_sum"})


def test_unknown_config_keys_are_rejected(tmp_path):
    with pytest.raises(
        ValueError, match=r"unknown GRPOOracleConfig key\(s\): 'lr', 'max_step' \(did you mean 'max_steps'\?\)"
    ):
        make_oracle(str(tmp_path), config={"lr": 1e-3, "max_step": 3})
    with pytest.raises(TypeError):
        GRPOOracleConfig(lr=1e-3)
    with pytest.raises(ValueError, match="does not know"):
        make_oracle(str(tmp_path), config={"trl_args": {"not_a_grpo_arg": 1}})
    with pytest.raises(ValueError, match="may not set \\['reward_weights'\\]"):
        GRPOOracleConfig(trl_args={"reward_weights": [1, 0]})
    with pytest.raises(ValueError, match="multiple of `num_generations`"):
        GRPOOracleConfig(per_device_train_batch_size=6, num_generations=4)
    with pytest.raises(ValueError, match=r"unknown LogitMixConfig key\(s\): 'samples'"):
        LogitMixConfig.from_dict({"samples": 3})


def short(prompts, completions, **kw):
    return [0.5] * (len(completions) - 1)


def nan_reward(prompts, completions, **kw):
    return [float("nan")] * len(completions)


def none_reward(prompts, completions, **kw):
    return [None] * len(completions)


def big_reward(prompts, completions, **kw):
    return [7.0] * len(completions)


@pytest.mark.parametrize(
    "fn, message",
    [
        (short, "reward function 'short' returned 1 values for 2 completions"),
        (nan_reward, "reward function 'nan_reward' returned nan for completion 0"),
        (none_reward, "reward function 'none_reward' returned None for completion 0"),
        (big_reward, r"reward function 'big_reward' returned 7.0 .* outside its declared range \[0, 1\]"),
    ],
)
def test_bad_reward_functions_fail_before_training(tmp_path, fn, message):
    with pytest.raises(RewardFunctionError, match=message):
        make_oracle(str(tmp_path), rewards=[Brevity(3), fn])
    assert not os.path.exists(os.path.join(tmp_path, "calls"))


def nan_on_letters(prompts, completions, **kw):
    return [float("nan") if any(c in LETTERS for c in t.split()) else 0.0 for t in completions]


def test_bad_reward_during_training_names_the_function(tmp_path):
    oracle = checked(make_oracle(str(tmp_path), rewards=[Brevity(3), nan_on_letters]))
    with pytest.raises(OracleError, match="RewardFunctionError.*'nan_on_letters' returned nan") as err:
        oracle([0.5, 0.5])
    assert isinstance(err.value.__cause__, RewardFunctionError)
    assert err.value.__cause__.reward_name == "nan_on_letters"
    assert not os.listdir(os.path.join(tmp_path, "calls"))  # nothing half-written


def test_reward_ranges_map_into_the_unit_interval(tmp_path):
    def score(prompts, completions, **kw):
        return [10.0] * len(completions)

    oracle = make_oracle(str(tmp_path), rewards=[score, one], reward_ranges=[(0, 20), (0, 1)])
    assert oracle.rewards[0](["p"], ["x"]) == [0.5]
    with pytest.raises(ValueError, match="reward_ranges"):
        make_oracle(str(tmp_path), rewards=[score, one], reward_ranges=[(1, 1), (0, 1)])


def test_sequence_classification_model_as_reward(tmp_path):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    rm = LlamaForSequenceClassification(
        LlamaConfig(
            vocab_size=len(WORDS),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            num_labels=1,
            pad_token_id=0,
        )
    ).eval()
    oracle = make_oracle(str(tmp_path), rewards=[Brevity(3), rm])
    values = oracle.rewards[1]([r["prompt"] for r in EVAL], ["a", "b c", "", "h"])
    assert len(values) == 4 and all(0 < v < 1 for v in values)


# -- identity and persistence --------------------------------------------------------------


def test_fingerprint_identifies_model_rewards_prompts_config(trained, tmp_path):
    oracle, _ = trained
    fp = oracle.fingerprint()
    assert "brevity" in fp and "coverage" in fp
    assert make_oracle(str(tmp_path)).fingerprint() == fp  # the run directory is not part of it
    variants = [
        make_oracle(str(tmp_path), rewards=[Brevity(4), Coverage()]),
        make_oracle(str(tmp_path), train=TRAIN[:-1]),
        make_oracle(str(tmp_path), eval=EVAL[:-1]),
        make_oracle(str(tmp_path), config={"max_steps": 3}),
        make_oracle(str(tmp_path), model_name="another-base"),
    ]
    assert len({fp, *(v.fingerprint() for v in variants)}) == 1 + len(variants)


def test_run_store_resumes_and_refuses_another_oracle(trained, tmp_path):
    oracle, (sol_a, sol_b) = trained
    store = os.path.join(tmp_path, "store")
    p1 = palmopt.baselines.specialists(oracle, store=store)
    with RunStore(store, oracle.fingerprint(), {"method": "specialists", "weights": np.eye(2).tolist()}) as s:
        assert len(s) == 2
    p2 = palmopt.baselines.specialists(oracle, store=store)
    assert np.array_equal(p1.values, p2.values) and p1.policies == p2.policies
    other = make_oracle(str(tmp_path), config={"max_steps": 3})
    with pytest.raises(StoreMismatchError):
        palmopt.baselines.specialists(other, store=store)


def test_portfolio_save_load_and_generate(trained, tmp_path):
    oracle, (sol_a, sol_b) = trained
    p = palmopt.Portfolio(
        values=[sol_a.values, sol_b.values], weights=[[1, 0], [0, 1]], policies=[sol_a.policy, sol_b.policy]
    )
    path = p.save(os.path.join(tmp_path, "portfolio"), oracle=oracle)
    q = palmopt.Portfolio.load(path, oracle=oracle)
    assert all(os.path.isfile(os.path.join(a, "adapter_config.json")) for a in q.policies)
    assert all(str(tmp_path) in a for a in q.policies)
    cache = {}
    for w in ([0.9, 0.1], [0.1, 0.9]):
        g = generate(q, w, EVAL[:3], oracle=oracle, n=2, cache=cache)
        assert g.member == int(q.route(w)[0]) and g.adapter == q.policies[g.member]
        assert len(g.completions) == 6 and all(isinstance(c, str) for c in g.completions)
    assert len(cache) == len({int(q.route(w)[0]) for w in ([0.9, 0.1], [0.1, 0.9])})
    # greedy decoding is reproducible and matches the member's own sampler
    g1 = generate(q, [0.9, 0.1], EVAL, oracle=oracle, do_sample=False, cache=cache)
    assert g1.completions == tuple(oracle.sample(q.policies[g1.member], EVAL, do_sample=False))
    with pytest.raises(TypeError, match="base_model"):
        generate(q, [0.5, 0.5], EVAL)


# -- decoding-time oracle --------------------------------------------------------------------


def test_logit_mix_oracle(trained):
    oracle, (sol_a, sol_b) = trained
    tok = make_tokenizer()
    specialists = [load_adapter(make_model, sol_a.policy), make_model(seed=1).eval()]
    mixer = LogitMixOracle(
        specialists, tok, [Brevity(3), Coverage()], EVAL, config={"max_new_tokens": 4, "eval_samples": 3}
    )
    sol = checked(mixer)([0.5, 0.5])
    assert np.all((0 <= sol.values) & (sol.values <= 1)) and len(sol.info["stderr"]) == 2
    assert np.array_equal(sol.policy, [0.5, 0.5])
    assert "LogitMixOracle" in mixer.fingerprint()
    # at a vertex and a temperature near 0 the mix is greedy decoding of that specialist
    # (prompts of different lengths: left padding, positions and the key/value cache line up)
    prompts = EVAL[:2] + [{"prompt": "need : a ->", "required": ["a"]}]
    cold = mixer.generate([0.0, 1.0], prompts, temperature=1e-6)
    model = specialists[1]
    enc = tok([r["prompt"] for r in prompts], return_tensors="pt", padding=True, padding_side="left")
    out = model.generate(**enc, max_new_tokens=4, do_sample=False, eos_token_id=1, pad_token_id=0)
    greedy = tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert cold == greedy
    with pytest.raises(ValueError, match="one model per reward"):
        LogitMixOracle(specialists[:1], tok, [Brevity(3), Coverage()], EVAL)


# -- the toy experiment ------------------------------------------------------------------------


@pytest.mark.slow
def test_llm_toy_end_to_end(tmp_path):
    spec = importlib.util.spec_from_file_location("llm_toy", os.path.join(ROOT, "examples", "llm_toy.py"))
    toy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toy)
    s = toy.run(str(tmp_path), quick=True, max_calls=4)
    assert s["oracle_calls"] <= 4 and s["portfolio_size"] >= 2
    V = np.array([c["values"] for c in s["calls"]])
    assert np.all((0 <= V) & (V <= 1))
    by_w = {tuple(c["w"]): np.array(c["values"]) for c in s["calls"]}
    brevity_first, coverage_first = by_w[(1.0, 0.0)], by_w[(0.0, 1.0)]
    assert brevity_first[0] - coverage_first[0] > 0.5  # visibly different policies
    assert coverage_first[1] - brevity_first[1] > 0.3
    assert 0 < s["diversity"]["cross_member_distinct_1"] <= 1
    assert s["logit_mix_baseline"] is not None
    assert os.path.isfile(os.path.join(tmp_path, "portfolio", "portfolio.json"))
    assert "oracle calls" in toy.report(s)
