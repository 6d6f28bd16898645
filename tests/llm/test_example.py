"""examples/llm_toy.py end to end (quick settings)."""

import importlib.util
import os

import numpy as np
import pytest

pytest.importorskip("trl", reason="the example needs the `llm` extra (torch, transformers, trl, peft)")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _toy():
    spec = importlib.util.spec_from_file_location("llm_toy", os.path.join(ROOT, "examples", "llm_toy.py"))
    toy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toy)
    return toy


def test_the_toys_exact_front_and_true_gaps():
    toy = _toy()
    c = np.arange(4)
    assert np.allclose(toy.FRONT, np.c_[1 - c**2 / 9, c / 3])  # (1 - c²/9, c/3), c required letters written
    assert toy.true_gaps(toy.FRONT, 0.0, 0.0)["delta_star"] == 0.0  # the front serves everyone exactly
    # the two specialists miss the middle: at w = (1/2, 1/2), OPT = (1 - 1/9 + 1/3) / 2 = 11/18, they give 1/2
    gaps = toy.true_gaps([[1.0, 0.0], [0.0, 1.0]], 0.05, 0.02)
    assert gaps["delta_star"] == pytest.approx(11 / 18 - 1 / 2, abs=1e-4) and not gaps["holds"]


@pytest.mark.slow
def test_llm_toy_end_to_end(tmp_path):
    toy = _toy()
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
    assert "oracle calls" in toy.report(s) and "TRUE worst gaps" in toy.report(s)
    assert s["certificate"]["relative_to"] == "the oracle's answers"  # GRPOOracle declares no error
    for key in ("reported", "reevaluated"):  # the true gaps, against the closed-form front
        assert s["true_gap"][key]["delta_star"] >= 0
    assert len(s["true_gap"]["reevaluated_values"]) == s["portfolio_size"]
