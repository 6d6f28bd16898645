"""oracles.llm.decoding: the decoding-time LogitMix oracle."""

import numpy as np
import pytest

pytest.importorskip("trl", reason="oracles.llm needs the `llm` extra (torch, transformers, trl, peft)")

from oracles.llm import LogitMixOracle, load_adapter  # noqa: E402
from oracles.llm.rewards import Brevity, Coverage  # noqa: E402
from palmopt.oracle import checked  # noqa: E402

from .tiny import EVAL, make_model, make_tokenizer  # noqa: E402


def test_logit_mix_oracle(trained):
    oracle, (sol_a, sol_b) = trained
    tok = make_tokenizer()
    specialists = [load_adapter(make_model, sol_a.policy), make_model(seed=1).eval()]
    mixer = LogitMixOracle(
        specialists, tok, [Brevity(3), Coverage()], EVAL, config={"max_new_tokens": 4, "eval_samples": 3}
    )
    sol = checked(mixer)([0.5, 0.5])
    assert np.all((0 <= sol.values) & (sol.values <= 1)) and sol.stderr.shape == (2,)
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


def test_logit_mix_uses_its_own_generator_and_the_tokenizer_as_given():
    import torch

    tok = make_tokenizer(pad_token=None)
    specialists = [make_model(seed=0).eval(), make_model(seed=1).eval()]
    mixer = LogitMixOracle(
        specialists, tok, [Brevity(3), Coverage()], EVAL, config={"max_new_tokens": 4, "num_threads": 1}
    )
    before = torch.random.get_rng_state().clone()
    a, b = mixer([0.5, 0.5]), mixer([0.5, 0.5])
    assert np.array_equal(a.values, b.values)  # seeded by the config, not by the global state
    assert mixer.generate([0.5, 0.5], EVAL[:2], seed=4) == mixer.generate([0.5, 0.5], EVAL[:2], seed=4)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert tok.pad_token is None and mixer.tokenizer is tok
