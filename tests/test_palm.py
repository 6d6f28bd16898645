import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import palmopt
from palmopt.palm import budget_split

from .strategies_tabular import momdps


def tolerance(d):
    return st.floats({2: 0.05, 3: 0.12, 4: 0.25}[d], 0.5)


@settings(max_examples=12)
@given(data=st.data())
def test_palm_portfolio_is_certified(data):
    mdp = data.draw(momdps(max_states=3, max_actions=3, d_min=2, d_max=4))
    eps, delta = data.draw(tolerance(mdp.d)), data.draw(tolerance(mdp.d))
    front = mdp.reference_front()
    sizes = {}
    for prune in ("greedy", "exact", "none"):
        p = palmopt.palm(mdp, eps, delta, prune=prune, progress=False)
        cert = palmopt.certify(p, front, eps, delta)
        assert cert.holds and cert.status == "success", (prune, cert)
        sizes[prune] = len(p)
        assert p.info["size_after_prune"] == len(p) <= p.info["n_distinct"]
    assert sizes["exact"] <= sizes["greedy"] <= sizes["none"]


def test_budget_split_composes_to_the_target():
    for eps, delta, split in [(0.1, 0.1, 0.5), (0.3, 0.01, 0.2), (0.02, 0.2, 0.9)]:
        e1, d1, e2, d2 = budget_split(eps, delta, split)
        assert (1 - e1) * (1 - e2) == pytest.approx(1 - eps)
        assert d1 + d2 == pytest.approx(delta)


def test_pruning_rule_is_what_the_proof_needs():
    """Against the true optimum at every net point: a portfolio pruned at the full budget
    (split = 1 - tiny) can fail, the split one cannot (checked on a curved front)."""
    from oracles.tabular.instances import many_policies

    mdp = many_policies(2, n_arms=40, rng=0)
    front = mdp.reference_front()
    p = palmopt.palm(mdp, 0.05, 0.01, progress=False)
    assert palmopt.certify(p, front, 0.05, 0.01).holds
    assert len(p) < p.info["n_distinct"]  # pruning did something


def test_routing_returns_the_best_member():
    mdp = palmopt.as_oracle(lambda w: np.array([w[0], 1 - w[0] ** 2]), d=2, name="curve")
    p = palmopt.palm(mdp, 0.1, 0.05, progress=False)
    W = palmopt.nets.random(2, 500, rng=0)
    np.testing.assert_array_equal(p.route(W), np.argmax(W @ p.values.T, axis=1))


class Counting:
    def __init__(self):
        self.d, self.calls = 2, 0

    def __call__(self, w):
        self.calls += 1
        return palmopt.Solution(values=w)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"eps": 1.5}, ValueError, "`eps` must be in"),
        ({"eps": 0.1, "delta": float("nan")}, ValueError, "`delta` must be in"),
        ({"eps": 0.1, "prune": "fast"}, ValueError, "`prune` must be one of"),
        ({"eps": 0.1, "prune": None}, TypeError, "`prune` must be one of"),
        ({"eps": 0.1, "split": 1.0}, ValueError, "`split` must be in"),
        ({"eps": 0.001, "max_points": 100}, ValueError, "max_points=100"),
        ({"eps": 0.1, "store": 3}, TypeError, "`store` must be"),
        ({"eps": 0.1, "executor": "gpu"}, TypeError, "`executor` must be"),
    ],
)
def test_bad_input_is_rejected_before_the_first_call(kwargs, exc, match):
    oracle = Counting()
    with pytest.raises(exc, match=match):
        palmopt.palm(oracle, progress=False, **kwargs)
    assert oracle.calls == 0


def test_an_object_without_d_is_not_an_oracle():
    with pytest.raises(TypeError, match="integer attribute `d`"):
        palmopt.palm(lambda w: w, 0.1)


def test_oracle_garbage_is_reported_with_its_weight():
    bad = palmopt.as_oracle(lambda w: np.array([w[0], 1.5]), d=2, name="too-big")
    with pytest.raises(palmopt.OracleError, match=r"outside the declared range \[0, 1\] at w = \[") as info:
        palmopt.palm(bad, 0.2, progress=False)
    assert info.value.weight.shape == (2,)


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_pool_executors_give_the_serial_portfolio(executor):
    from .slow_oracle import make

    serial = palmopt.palm(make(), 0.3, progress=False)
    pooled = palmopt.palm(make(), 0.3, progress=False, executor=executor)
    np.testing.assert_array_equal(serial.values, pooled.values)
    np.testing.assert_array_equal(serial.weights, pooled.weights)


@settings(max_examples=8)
@given(data=st.data())
def test_lazy_palm_keeps_the_guarantee_with_fewer_calls(data):
    mdp = data.draw(momdps(max_states=3, max_actions=3, d_min=2, d_max=4))
    eps, delta = data.draw(tolerance(mdp.d)), data.draw(tolerance(mdp.d))
    lazy = palmopt.palm(mdp, eps, delta, lazy=True, progress=False)
    cert = palmopt.certify(lazy, mdp.reference_front(), eps, delta)
    assert cert.holds and cert.status == "success", cert
    assert lazy.n_oracle_calls <= lazy.info["net_size"]


def test_lazy_palm_resumes_from_its_store(tmp_path):
    from .slow_oracle import SlowOracle

    first = palmopt.palm(SlowOracle(), 0.1, lazy=True, store=str(tmp_path), progress=False)
    again = SlowOracle()
    second = palmopt.palm(again, 0.1, lazy=True, store=str(tmp_path), progress=False)
    assert again.calls == 0 and first.n_oracle_calls < first.info["net_size"] / 100
    np.testing.assert_array_equal(first.values, second.values)
