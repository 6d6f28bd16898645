"""examples/llm_toy.py end to end (quick settings)."""

import importlib.util
import os

import numpy as np
import pytest

pytest.importorskip("trl", reason="the example needs the `llm` extra (torch, transformers, trl, peft)")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
