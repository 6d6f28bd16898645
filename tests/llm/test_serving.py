"""oracles.llm.serving: a portfolio of adapters saved, loaded and routed to."""

import os

import pytest

pytest.importorskip("trl", reason="oracles.llm needs the `llm` extra (torch, transformers, trl, peft)")

import palmopt  # noqa: E402
from oracles.llm import generate  # noqa: E402

from .tiny import EVAL  # noqa: E402


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


def test_generate_without_an_oracle_leaves_the_tokenizer_alone(trained):
    import torch

    from .tiny import make_model, make_tokenizer

    oracle, (sol_a, sol_b) = trained
    p = palmopt.Portfolio(
        values=[sol_a.values, sol_b.values], weights=[[1, 0], [0, 1]], policies=[sol_a.policy, sol_b.policy]
    )
    tok = make_tokenizer(pad_token=None)
    before = torch.random.get_rng_state().clone()
    a = generate(p, [0.2, 0.8], EVAL[:3], base_model=make_model, tokenizer=tok, n=2, max_new_tokens=4, seed=3)
    b = generate(p, [0.2, 0.8], EVAL[:3], base_model=make_model, tokenizer=tok, n=2, max_new_tokens=4, seed=3)
    assert a.completions == b.completions  # seeded per request
    assert tok.pad_token is None and torch.equal(torch.random.get_rng_state(), before)
