"""Baseline portfolios: one oracle call per weight, duplicates kept once, OLS's additive stop."""

import numpy as np
import pytest

import palmopt
from oracles.tabular.instances import many_policies
from palmopt import baselines

from .slow_oracle import SlowOracle

V = np.array([[1.0, 0.0], [0.6, 0.6], [0.0, 1.0]])


def counted():
    calls = []

    def fn(w):
        calls.append(np.array(w))
        return V[np.argmax(V @ w)]

    return palmopt.as_oracle(fn, d=2, name="three"), calls


def test_from_weights_calls_once_per_weight_and_keeps_distinct_values():
    oracle, calls = counted()
    p = baselines.from_weights(oracle, [[1, 0], [0.5, 0.5], [0.4, 0.6], [0, 1]])
    assert len(calls) == p.n_oracle_calls == 4
    np.testing.assert_array_equal(p.values, V)
    np.testing.assert_array_equal(p.weights, [[1, 0], [0.5, 0.5], [0, 1]])  # the first weight of each


@pytest.mark.parametrize("k", [1, 3, 7])
def test_uniform_and_random_use_k_weights(k):
    oracle, calls = counted()
    assert baselines.uniform(oracle, k).info["n_weights"] == k == len(calls)
    assert baselines.random(oracle, k, rng=3).n_oracle_calls == k
    a, b = baselines.random(oracle, k, rng=3), baselines.random(oracle, k, rng=3)
    np.testing.assert_array_equal(a.weights, b.weights)  # seeded: reproducible


def test_specialists_are_the_vertices():
    p = baselines.specialists(counted()[0])
    np.testing.assert_array_equal(p.weights, np.eye(2))
    np.testing.assert_array_equal(p.values, [[1.0, 0.0], [0.0, 1.0]])


def test_ols_baseline_meets_its_additive_target():
    mdp = many_policies(3, rng=0)
    p = baselines.ols(mdp, 0.05)
    assert p.method == "ols" and (p.eps, p.delta) == (0.0, 0.05)
    assert palmopt.certify(p, mdp.reference_front()).certified  # exact truth, not its own bound


def test_baselines_resume_from_the_store(tmp_path):
    first = baselines.uniform(SlowOracle(), 6, store=str(tmp_path))
    again = SlowOracle()
    second = baselines.uniform(again, 6, store=str(tmp_path))
    assert again.calls == 0
    np.testing.assert_array_equal(first.values, second.values)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda o: baselines.uniform(o, 0), ValueError, "`k` must be >= 1"),
        (lambda o: baselines.random(o, 2.5), TypeError, "`k` must be an integer"),
        (lambda o: baselines.random(o, 2, 0), TypeError, "positional"),
        (lambda o: baselines.from_weights(o, [[0.7, 0.7]]), ValueError, "rows of `W` must lie on the simplex"),
    ],
)
def test_bad_input_is_rejected_before_any_call(call, exc, match):
    oracle, calls = counted()
    with pytest.raises(exc, match=match):
        call(oracle)
    assert not calls
