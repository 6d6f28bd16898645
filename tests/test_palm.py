import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import palmopt
from palmopt.palm import budget_split

from oracles.tabular import demo_instance

from .strategies import policy_values
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


# ---------------------------------------------------------------------- non-linear preferences


class _SetOracle:
    """The exact oracle of a finite achievable set for a scalarization: argmax_j g_w(V_j)."""

    def __init__(self, V, scalarization):
        self.V, self.scalarization, self.d = np.asarray(V, dtype=float), scalarization, np.shape(V)[1]
        self.calls = 0

    def __call__(self, w):
        self.calls += 1
        return palmopt.Solution(values=self.V[int(np.argmax(self.scalarization(w, self.V)[0]))])


def _users(d, tau, n=400, seed=0):
    """Random users, vertices, and users with one coordinate at tau/2, tau and 2 tau."""
    rng = np.random.default_rng(seed)
    W = [rng.dirichlet(np.ones(d) * 0.5, size=n), np.eye(d)]
    for f in (0.5, 1.0, 2.0):
        for i in range(d):
            w = np.full((1, d), (1 - f * tau) / (d - 1))
            w[0, i] = f * tau
            W.append(w)
            if d > 2:
                w = np.zeros((1, d))
                w[0, i], w[0, (i + 1) % d] = f * tau, 1 - f * tau
                W.append(w)
    return np.vstack(W)


@settings(max_examples=10)
@given(
    g=st.sampled_from([palmopt.scalarizations.Tchebycheff(), palmopt.scalarizations.PMean(0.5),
                       palmopt.scalarizations.PMean(0.25)]),
    eps=st.floats(0.2, 0.4), delta=st.floats(0.1, 0.3), prune=st.sampled_from(["greedy", "none"]),
    data=st.data(),
)
def test_palm_serves_nonlinear_users_against_the_true_optimum(g, eps, delta, prune, data):
    """Every user, boundary users included, gets (1-eps) OPT_g(w) - delta from some member, OPT_g
    computed independently as max over the achievable set."""
    d = data.draw(st.integers(2, 3 if g != palmopt.scalarizations.PMean(0.25) else 2))  # keep nets small
    V = data.draw(policy_values(d, 1, 8))
    oracle = _SetOracle(V, g)
    p = palmopt.palm(oracle, eps, delta, prune=prune, progress=False)
    assert p.info["scalarization"] == repr(g)
    W = _users(V.shape[1], p.info["delta_net"] / V.shape[1])
    opt = g(W, V).max(axis=1)
    best = g(W, p.values).max(axis=1)
    assert (best >= (1 - eps) * opt - delta - 1e-12).all()


def test_pmean_is_rounded_at_its_own_budget_and_recorded():
    V = np.array([[1.0, 0.0], [0.7, 0.7], [0.0, 1.0]])
    g = palmopt.scalarizations.PMean(0.5)
    p = palmopt.palm(_SetOracle(V, g), 0.19, 0.2, progress=False)
    e1, d1, e2, d2 = budget_split(*g.rounding_budget(0.19, 0.2))
    assert (p.info["eps_net"], p.info["delta_net"], p.info["eps_prune"]) == pytest.approx((e1, d1, e2))
    assert (p.info["eps_rounding"], p.info["delta_rounding"]) == pytest.approx((0.1, 0.1))
    assert p.info["net_size"] == palmopt.bounds.net_size(2, e1, d1)
    lin = palmopt.palm(_SetOracle(V, palmopt.scalarizations.Linear()), 0.19, 0.2, progress=False)
    assert lin.info["scalarization"] == "Linear()" and lin.info["net_size"] < p.info["net_size"]


def test_refusals_come_before_the_first_call():
    V = np.array([[1.0, 0.0], [0.9, 0.9]])
    for p in (0.0, -1.0):
        oracle = _SetOracle(V, palmopt.scalarizations.PMean(p))
        with pytest.raises(ValueError, match="rounding lemma does not hold"):
            palmopt.palm(palmopt.oracle.checked(oracle), 0.1, 0.1, progress=False)
        assert oracle.calls == 0
    oracle = _SetOracle(V, palmopt.scalarizations.Tchebycheff())
    with pytest.raises(ValueError, match="lazy PALM.*Tchebycheff"):
        palmopt.palm(oracle, 0.1, 0.1, lazy=True, progress=False)
    assert oracle.calls == 0


def test_lazy_palm_serves_pmean_users_with_fewer_calls():
    theta = np.linspace(0, np.pi / 2, 60)
    V = np.c_[np.cos(theta), np.sin(theta)] ** 2
    g = palmopt.scalarizations.PMean(0.5)
    full = palmopt.palm(_SetOracle(V, g), 0.1, 0.05, progress=False)
    lazy = palmopt.palm(_SetOracle(V, g), 0.1, 0.05, lazy=True, progress=False)
    assert lazy.n_oracle_calls < full.n_oracle_calls
    W = _users(2, lazy.info["delta_net"] / 2, n=2000)
    opt = g(W, V).max(axis=1)
    for p in (full, lazy):
        assert (g(W, p.values).max(axis=1) >= 0.9 * opt - 0.05 - 1e-12).all()


# ---------------------------------------------------------------------- lazy PALM streams the net


@settings(max_examples=25)
@given(d=st.integers(1, 4), eps=st.floats(0.15, 0.7), delta=st.floats(0.1, 0.7), chunk=st.integers(1, 500),
       shuffled=st.booleans())
def test_the_streamed_net_is_the_net(d, eps, delta, chunk, shuffled):
    from palmopt.palm import _net_chunks

    net = palmopt.cover(d, eps, delta)
    rng = np.random.default_rng(0) if shuffled else None
    blocks = [lo[idx] for idx, lo in _net_chunks(d, eps, delta, chunk=chunk, rng=rng)]
    assert all(0 < len(b) <= chunk for b in blocks)
    rows = np.vstack(blocks)
    assert len(rows) == len(net) == len(np.unique(rows, axis=0))
    np.testing.assert_array_equal(np.unique(rows, axis=0), np.unique(net.lower, axis=0))


def test_lazy_palm_never_builds_the_net(monkeypatch):
    import sys

    palm_module = sys.modules["palmopt.palm"]  # the module (palmopt.palm is the function)
    monkeypatch.setattr(palm_module, "cover", lambda *a, **k: pytest.fail("lazy PALM built the net"))
    mdp = demo_instance()
    p = palmopt.palm(mdp, 0.1, 0.05, lazy=True, progress=False)
    assert p.info["net_size"] == palmopt.bounds.net_size(3, p.info["eps_net"], p.info["delta_net"])
    assert palmopt.certify(p, mdp.reference_front(), 0.1, 0.05).holds
    assert p.n_oracle_calls < 40 and len(p.weights) == len(p)


def test_the_net_size_refusal_fits_the_mode():
    for lazy in (False, True):
        oracle = Counting()
        with pytest.raises(ValueError) as info:
            palmopt.palm(oracle, 0.01, 0.001, max_points=1000, lazy=lazy, progress=False)
        msg = str(info.value)
        assert oracle.calls == 0
        assert "eps=0.01, delta=0.001" in msg and "max_points=1000" in msg and "budget split" in msg
        assert ("lazy=True" in msg) is not lazy  # lazy mode is not told to use lazy mode
        assert ("streams the net" in msg) and ("visits every point" in msg) is lazy


def test_noisy_values_prune_with_confidence_boxes_and_stay_true():
    """Noisy estimates of an exact optimiser: the pruned portfolio's TRUE values meet the target
    (measured against the true front), while pruning on the raw estimates is not guaranteed."""
    from .test_uncertainty import NoisyFront, sphere

    held = 0
    for seed in range(6):
        front = sphere(2, 30, np.random.default_rng(seed))
        p = palmopt.palm(NoisyFront(front, 0.02, seed), 0.2, 0.1, confidence=0.9, progress=False)
        assert p.info["confidence"] == 0.9 and "noise" in p.info
        true = front[np.array(p.policies, dtype=int)]
        held += palmopt.certify(true, front, 0.2, 0.1).holds
        assert len(p) <= p.info["n_distinct"] <= len(front)
    assert held == 6


def test_lazy_palm_with_noisy_values_stays_true():
    from .test_uncertainty import NoisyFront, sphere

    for seed in range(4):
        front = sphere(2, 30, np.random.default_rng(seed))
        p = palmopt.palm(NoisyFront(front, 0.02, seed), 0.2, 0.1, lazy=True, confidence=0.9, progress=False)
        assert p.info["confidence"] == 0.9
        true = front[np.array(p.policies, dtype=int)]
        assert palmopt.certify(true, front, 0.2, 0.1).holds


def test_noisy_values_are_refused_where_pruning_cannot_use_them():
    from .test_uncertainty import NoisyFront, sphere

    front = sphere(2, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="`confidence`"):
        palmopt.palm(NoisyFront(front, 0.02, 0), 0.2, 0.1, confidence=1.0, progress=False)


def test_lazy_palm_stops_at_its_call_budget():
    from .test_uncertainty import NoisyFront, sphere

    front = sphere(3, 40, np.random.default_rng(0))
    full = palmopt.palm(NoisyFront(front, 0.02, 0), 0.2, 0.1, lazy=True, progress=False)
    cut = palmopt.palm(NoisyFront(front, 0.02, 0), 0.2, 0.1, lazy=True, max_calls=3, progress=False)
    assert full.n_oracle_calls > 3 and full.status == "success"
    assert cut.n_oracle_calls == 3 and cut.status == "budget-exhausted" and cut.info["uncovered_points"] > 0
    with pytest.raises(ValueError, match="lazy=True"):
        palmopt.palm(NoisyFront(front, 0.02, 0), 0.2, 0.1, max_calls=3, progress=False)
