"""oracles.llm.grpo on CPU: the GRPO oracle on a tiny model (tests/llm/tiny.py); each call trains
a few GRPO steps."""

import os
import random

import numpy as np
import pytest

pytest.importorskip("trl", reason="oracles.llm needs the `llm` extra (torch, transformers, trl, peft)")

import torch  # noqa: E402

import palmopt  # noqa: E402
from oracles.llm import GRPOOracle, GRPOOracleConfig, RewardFunctionError  # noqa: E402
from oracles.llm.hf import torch_threads  # noqa: E402
from oracles.llm.rewards import Brevity, Coverage  # noqa: E402
from palmopt.oracle import OracleError, checked  # noqa: E402
from palmopt.store import RunStore, StoreMismatchError  # noqa: E402

from .tiny import (  # noqa: E402
    EVAL,
    LETTERS,
    TINY,
    TRAIN,
    WORDS,
    make_model,
    make_oracle,
    make_reward_model,
    make_tokenizer,
    one,
    read_json,
    zero,
)

# -- one call ------------------------------------------------------------------------------


def test_call_returns_held_out_values_in_the_unit_cube(trained):
    oracle, (sol, _) = trained
    assert oracle.d == 2 and oracle.reward_names == ("brevity", "coverage")
    assert sol.values.shape == (2,) and np.all(np.isfinite(sol.values))
    assert np.all((0 <= sol.values) & (sol.values <= 1))
    se = sol.stderr
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
    assert sol.values.tolist() == [1.0, 0.0] and sol.stderr.tolist() == [0.0, 0.0]


def test_repeated_call_is_answered_from_the_run_directory(trained):
    oracle, (sol, _) = trained
    again = oracle([1.0, 0.0])
    assert again.info["cached"] is True and again.policy == sol.policy
    assert np.array_equal(again.values, sol.values) and np.array_equal(again.stderr, sol.stderr)
    assert "stderr" not in again.info  # the field, not a copy in info
    assert np.array_equal(oracle.history()[0][1].stderr, sol.stderr)
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


# -- the caller's state --------------------------------------------------------------------


def _global_rng_states():
    return torch.random.get_rng_state().clone(), np.random.get_state()[1].copy(), random.getstate()


def test_a_call_leaves_the_callers_random_state_alone(tmp_path):
    """TRL seeds torch, numpy and Python globally; the oracle gives the caller its states back."""
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    before = _global_rng_states()
    oracle = make_oracle(str(tmp_path))
    sol = oracle([0.4, 0.6])
    oracle.sample(sol.policy, EVAL[:2], n=2, seed=5)
    after = _global_rng_states()
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2] == after[2]
    # and the call is reproducible: the same seed gives the same adapter's values in another directory
    again = make_oracle(str(tmp_path / "again"))([0.4, 0.6])
    assert np.array_equal(sol.values, again.values)


def test_the_callers_tokenizer_is_not_modified(tmp_path):
    tok = make_tokenizer(pad_token=None)
    assert tok.pad_token is None
    oracle = make_oracle(str(tmp_path), tokenizer=tok)
    sol = oracle([0.5, 0.5])
    assert np.all((0 <= sol.values) & (sol.values <= 1))
    assert tok.pad_token is None  # the oracle trained with a copy that pads with end-of-sequence
    assert oracle.tokenizer is not tok and oracle.tokenizer.pad_token == "<eos>"
    padded = make_tokenizer()
    assert make_oracle(str(tmp_path), tokenizer=padded).tokenizer is padded  # nothing to copy


def test_num_threads_is_a_config_option_scoped_to_the_call(tmp_path):
    seen = []

    def threads(prompts, completions, **kw):
        seen.append(torch.get_num_threads())
        return [0.5] * len(completions)

    with torch_threads(2):
        oracle = make_oracle(str(tmp_path), rewards=[Brevity(3), threads], config={"num_threads": 1})
        seen.clear()
        oracle([0.5, 0.5])
        assert set(seen) == {1} and torch.get_num_threads() == 2
        seen.clear()
        make_oracle(str(tmp_path / "default"), rewards=[Brevity(3), threads])([0.5, 0.5])
        assert set(seen) == {2}  # None: torch's setting is left alone
    # how to run is not what is computed: the fingerprint ignores it
    assert oracle.fingerprint() == make_oracle(str(tmp_path), rewards=[Brevity(3), threads]).fingerprint()
    with pytest.raises(ValueError, match="num_threads"):
        GRPOOracleConfig(num_threads=0)


# -- refusals and errors -------------------------------------------------------------------


def test_normalize_then_sum_is_refused(tmp_path):
    with pytest.raises(ValueError, match="normalize_then_sum.*no longer optimises w·r"):
        GRPOOracleConfig(multi_objective_aggregation="normalize_then_sum")
    with pytest.raises(ValueError, match="normalize_then_sum"):
        make_oracle(str(tmp_path), config={"multi_objective_aggregation": "normalize_then_sum"})


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
    rm = make_reward_model(len(WORDS))
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


# -- noisy-oracle hooks: stderr, error, evaluate, seeds -----------------------------------


def test_error_is_undeclared_by_default_and_a_declared_pair_is_kept(tmp_path):
    assert make_oracle(str(tmp_path)).error is None  # RLHF declares no optimisation error
    assert make_oracle(str(tmp_path), error=(0.1, 0.02)).error == (0.1, 0.02)
    with pytest.raises(ValueError, match="error"):
        make_oracle(str(tmp_path), error=(1.5, 0.0))
    with pytest.raises(TypeError, match="error"):
        make_oracle(str(tmp_path), error=0.1)


def test_a_call_reports_its_cost(trained):
    _, (sol, _) = trained
    cost = sol.info["cost"]
    assert cost["device"] == "cpu" and cost["seconds"] > 0
    assert cost["tokens_generated"] == cost["tokens_generated_train"] + cost["tokens_generated_eval"] > 0
    assert 0 < cost["tokens_generated_eval"] <= len(EVAL) * TINY["eval_samples"] * TINY["max_completion_length"]


def test_evaluate_is_fresh_independent_and_scales_with_repeats(trained):
    oracle, (sol, _) = trained
    one_ = oracle.evaluate(sol.policy)
    three = oracle.evaluate(sol.policy, repeats=3)
    assert one_.info["eval_samples_per_prompt"] == TINY["eval_samples"]
    assert three.info["eval_samples_per_prompt"] == 3 * TINY["eval_samples"]
    assert one_.info["eval_seed"] != three.info["eval_seed"]  # fresh sampling seeds
    for s in (one_, three):
        assert np.all((0 <= s.values) & (s.values <= 1))
        assert s.stderr.shape == (2,) and np.all(np.isfinite(s.stderr)) and np.all(s.stderr >= 0)
        assert s.policy == sol.policy and s.info["cost"]["tokens_generated"] > 0
    a, b = oracle.evaluate(sol.policy, seed=7), oracle.evaluate(sol.policy, seed=7)
    assert np.array_equal(a.values, b.values)  # a given seed reproduces
    checked(oracle)  # the hook does not change the protocol
    with pytest.raises(ValueError, match="repeats"):
        oracle.evaluate(sol.policy, repeats=0)


def test_with_seed_is_the_same_oracle_but_the_training_seed(trained):
    oracle, (sol, _) = trained
    other = oracle.with_seed(5)
    assert oracle.seed == 0 and other.seed == 5 and other.config.eval_samples == oracle.config.eval_samples
    assert other.fingerprint() != oracle.fingerprint()
    assert other.with_seed(0).fingerprint() == oracle.fingerprint()
    rep = other([1.0, 0.0])
    assert rep.info["cached"] is False and rep.info["seed"] == 5 and rep.policy != sol.policy
    assert oracle([1.0, 0.0]).info["cached"] is True  # the replicate did not overwrite seed 0's call
    assert os.path.isdir(sol.policy)


def test_evaluation_samples_with_the_training_settings(tmp_path, monkeypatch):
    import oracles.llm.grpo as grpo

    seen = []
    real = grpo.sample

    def spy(*args, **kwargs):
        seen.append(kwargs.get("generation_kwargs"))
        return real(*args, **kwargs)

    monkeypatch.setattr(grpo, "sample", spy)
    trl_args = {"min_p": 0.05, "repetition_penalty": 1.3, "generation_kwargs": {"top_k": 5}}
    oracle = make_oracle(str(tmp_path), config={"trl_args": trl_args, "temperature": 0.9})
    expected = {"temperature": 0.9, "top_p": 1.0, "top_k": 5, "min_p": 0.05, "repetition_penalty": 1.3}
    assert oracle.config.sampling() == expected
    assert oracle.config.grpo_args(np.array([0.5, 0.5]), str(tmp_path))["min_p"] == 0.05  # TRL trains with them
    sol = oracle([0.5, 0.5])
    oracle.evaluate(sol.policy)
    oracle.sample(sol.policy, EVAL[:1], n=1)
    assert seen == [expected] * 3 and sol.info["sampling"] == expected


def test_use_vllm_needs_a_model_path(tmp_path):
    with pytest.raises(ValueError, match="use_vllm.*name or path"):
        make_oracle(str(tmp_path), config={"trl_args": {"use_vllm": True}})


def test_warm_start_with_kl_anchors_to_the_base_model(tmp_path, monkeypatch):
    from peft import LoraConfig, get_peft_model

    import oracles.llm.grpo as grpo

    from oracles.llm.grpo import _anchor_reference_to_base
    from oracles.llm.hf import quiet

    cfg = LoraConfig(r=2, target_modules="all-linear", init_lora_weights=False)  # B != 0: a trained adapter
    with quiet():
        model = get_peft_model(make_model(), cfg)
        model.add_adapter("ref", cfg)
    ids = torch.tensor([[3, 4, 6, 7, 5]])
    with torch.no_grad():
        with model.disable_adapter():
            base = model(input_ids=ids).logits
        model.set_adapter("ref")
        assert not torch.allclose(model(input_ids=ids).logits, base)
        assert _anchor_reference_to_base(model) > 0
        assert torch.allclose(model(input_ids=ids).logits, base)  # the reference is now the base model
    zeroed = []
    monkeypatch.setattr(grpo, "_anchor_reference_to_base", lambda m: zeroed.append(_anchor_reference_to_base(m)))
    oracle = make_oracle(str(tmp_path), config={"warm_start": True, "beta": 0.1})
    oracle([1.0, 0.0])
    assert zeroed == []  # a fresh LoRA: TRL's reference is the base model already
    sol = oracle([0.6, 0.4])
    assert sol.info["warm_start_from"] is not None and sol.info["kl_reference"] == "base model"
    assert len(zeroed) == 1 and zeroed[0] > 0  # TRL's copy of the neighbour's adapter was neutralised


def test_evaluation_ignores_the_models_own_repetition_penalty():
    """TRL trains with ``repetition_penalty`` passed explicitly (1.0 by default); left out at evaluation,
    ``generate`` would take the model's ``generation_config`` value (an instruct model's 1.05) instead."""
    from oracles.llm.hf import sample

    tok = make_tokenizer()
    plain, penalised = make_model(seed=3), make_model(seed=3)
    penalised.generation_config.repetition_penalty = 3.0
    cfg = GRPOOracleConfig()
    assert cfg.sampling()["repetition_penalty"] == 1.0
    kwargs = dict(max_new_tokens=6, temperature=1.0, seed=7, batch_size=8)
    same = [sample(m, tok, EVAL, 4, generation_kwargs=cfg.sampling(), **kwargs)[1] for m in (plain, penalised)]
    assert same[0] == same[1]
    left_out = {k: v for k, v in cfg.sampling().items() if k != "repetition_penalty"}
    assert sample(penalised, tok, EVAL, 4, generation_kwargs=left_out, **kwargs)[1] != same[0]  # the test can fail
