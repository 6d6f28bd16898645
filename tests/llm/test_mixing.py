"""oracles.llm.mixing (the ``mix`` method) and LogitMixOracle over the adapters of one base model."""

import copy
import json
import os

import numpy as np
import pytest

pytest.importorskip("trl", reason="oracles.llm needs the `llm` extra (torch, transformers, trl, peft)")

from oracles.llm import LogitMixOracle, load_adapter  # noqa: E402
from oracles.llm.mixing import mix_portfolio  # noqa: E402
from oracles.llm.rewards import Brevity, Coverage  # noqa: E402

from .tiny import EVAL, make_model, make_oracle, make_tokenizer  # noqa: E402

PROMPTS = EVAL[:2] + [{"prompt": "need : a ->", "required": ["a"]}]  # different lengths: left padding


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """Two LoRA adapters of the tiny model with random (non-zero) weights: clearly different specialists."""
    import torch
    from peft import LoraConfig, get_peft_model

    from oracles.llm.hf import quiet

    root = tmp_path_factory.mktemp("adapters")
    paths = []
    for i in range(2):
        with torch.random.fork_rng(devices=[]), quiet():
            torch.manual_seed(10 + i)
            config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
            model = get_peft_model(make_model(), config)
        model.save_pretrained(root / f"s{i}")
        paths.append(str(root / f"s{i}"))
    return paths


def _mixer(specialists, **config):
    return LogitMixOracle(
        specialists, make_tokenizer(), [Brevity(3), Coverage()], EVAL, config={"max_new_tokens": 4, **config}
    )


def _next_token_logprobs(model, tok):
    import torch

    enc = tok([r["prompt"] for r in PROMPTS], return_tensors="pt", padding=True, padding_side="left")
    with torch.inference_mode():
        return torch.log_softmax(model(**enc).logits[:, -1].float(), dim=-1)


def test_one_base_model_mix_at_a_unit_weight_is_that_specialist(adapters):
    import torch

    tok = make_tokenizer()
    one = LogitMixOracle.from_adapters(
        make_model, adapters, tok, [Brevity(3), Coverage()], EVAL, config={"max_new_tokens": 4}
    )
    model = one.models[0]
    assert one.models[1] is model and one.adapters == ["s0", "s1"] and one.names == tuple(adapters)
    alone = [load_adapter(make_model, a) for a in adapters]
    lp = [_next_token_logprobs(m, tok) for m in alone]
    assert not torch.allclose(lp[0], lp[1], atol=1e-3)  # the specialists differ: the checks below can fail
    for i in range(2):
        model.set_adapter(f"s{i}", inference_mode=True)
        assert torch.allclose(_next_token_logprobs(model, tok), lp[i], atol=1e-6)
    # greedy decoding of the mix at e_i (temperature -> 0) is greedy decoding of specialist i alone
    for i, w in enumerate(np.eye(2)):
        enc = tok([r["prompt"] for r in PROMPTS], return_tensors="pt", padding=True, padding_side="left")
        ref = alone[i].generate(**enc, max_new_tokens=4, do_sample=False, eos_token_id=1, pad_token_id=0)
        greedy = tok.batch_decode(ref[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        assert one.generate(w, PROMPTS, temperature=1e-6) == greedy
    # sampled: the same completions as the mix of d separate models, at the vertices and inside
    copies = _mixer(alone)
    for w in ([1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.8]):
        assert one.generate(w, PROMPTS, n=3, seed=5) == copies.generate(w, PROMPTS, n=3, seed=5)


def test_the_shared_model_gets_its_adapter_and_flags_back(adapters):
    tok = make_tokenizer()
    one = LogitMixOracle.from_adapters(
        make_model, adapters, tok, [Brevity(3), Coverage()], EVAL, config={"max_new_tokens": 2}
    )
    model = one.models[0]
    model.set_adapter("s1")  # peft: trainable
    flags = [p.requires_grad for p in model.parameters()]
    sol = one([0.5, 0.5])
    assert model.active_adapter == "s1" and [p.requires_grad for p in model.parameters()] == flags
    assert sol.info["cost"]["tokens_generated"] > 0 and sol.info["cost"]["device"] == "cpu"
    with pytest.raises(ValueError, match=r"'s9' is not an adapter of the model paired with it"):
        _mixer([(model, "s0"), (model, "s9")])


def _counting(calls):
    def factory():
        calls.append(1)
        return make_model()

    return factory


def test_mix_portfolio_one_base_model_persisted_and_resumed(trained, tmp_path):
    oracle, sols = trained
    calls = []
    counted = copy.copy(oracle)
    counted.base_model = _counting(calls)  # same fingerprint: the specialists come from the run directory
    out = str(tmp_path)
    p, specialists, seconds, tokens = mix_portfolio(counted, 3, out)
    assert calls == [1]  # one base model for all the adapters and all the weights
    assert specialists == [str(s.policy) for s in sols]
    assert p.method == "mix" and len(p) == 3 and p.n_oracle_calls == 2
    assert np.allclose(p.weights.sum(axis=1), 1) and np.all((0 <= p.values) & (p.values <= 1))
    assert np.asarray(p.info["stderr"]).shape == (3, 2) and seconds > 0 and tokens > 0
    files = sorted(os.listdir(tmp_path / "mix"))
    assert len(files) == 3 and all(f.startswith("mix-w") and f.endswith(".json") for f in files)
    assert sorted(map(os.path.basename, p.policies)) == files
    with open(p.policies[0]) as f:
        record = json.load(f)
    assert record["key"]["specialists"] == specialists and record["key"]["config"]["seed"] == oracle.config.seed + 1
    stamps = {f: os.stat(tmp_path / "mix" / f).st_mtime_ns for f in files}
    # a rerun reads every result from disk: no model built, nothing rewritten, the same portfolio
    again, _, seconds_again, tokens_again = mix_portfolio(counted, 3, out)
    assert calls == [1] and stamps == {f: os.stat(tmp_path / "mix" / f).st_mtime_ns for f in files}
    assert np.array_equal(again.values, p.values) and (seconds_again, tokens_again) == (seconds, tokens)


def test_mix_refuses_sampling_settings_it_cannot_apply(tmp_path):
    oracle = make_oracle(str(tmp_path / "run"), config={"trl_args": {"min_p": 0.1}})
    with pytest.raises(ValueError, match=r"also set \{'min_p': 0.1\}"):
        mix_portfolio(oracle, 3, str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "run" / "calls") and not os.path.exists(tmp_path / "out")
