"""The claim checks of ``proofs_check``: each passes on small parameters, its machinery agrees
with independent computations, and ``python -m proofs_check --quick`` exits 0."""

import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

import proofs_check
from palmopt import bounds
from proofs_check import ClaimResult
from proofs_check.counting import brute_force_count
from proofs_check.rounding import cell_worst_case, symbolic_chain
from proofs_check.sphere import arc_minimum, covering_radius

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- the result object


def test_claim_result_is_an_immutable_value_with_a_helpful_repr():
    r = ClaimResult("toy", {"d": np.int64(2)}, {"gap": np.float64(-0.5), "rows": np.arange(3)}, np.bool_(True))
    assert r.passed is True and r.parameters["d"] == 2 and type(r.parameters["d"]) is int
    assert r.evidence["rows"] == [0, 1, 2]
    assert repr(r) == "ClaimResult(claim='toy', passed=True, gap=-0.5; parameters: d=2)"
    with pytest.raises(TypeError):
        r.evidence["gap"] = 1.0
    with pytest.raises(AttributeError):
        r.passed = False
    assert pickle.loads(pickle.dumps(r)).to_dict() == r.to_dict()


# ---------------------------------------------------------------------------- each claim, small


def test_rounding_lemma():
    r = proofs_check.rounding_lemma(cases=((2, 0.1, 0.1), (3, 0.3, 0.2)), n_lp=10, n_interior=200)
    assert r.passed, r
    assert r.evidence["max_violation"] < 0 and r.evidence["symbolic_ok"]
    for case in r.evidence["cases"]:  # the search reaches the predicted supremum exactly
        assert case["max_value"] == pytest.approx(-case["delta"] * (1 + (case["d"] - 1) * case["eps"]) / case["d"])


def test_net_count():
    r = proofs_check.net_count(grid=((1, 0.2, 0.2), (2, 0.1, 0.1), (3, 0.3, 0.1), (4, 0.5, 0.5)))
    assert r.passed, r
    assert r.evidence["count_mismatches"] == 0 and r.evidence["brute_forced"] == 4


def test_lower_bound():
    r = proofs_check.lower_bound(
        cases=((2, 0.1, 0.01), (3, 0.2, 0.01)), resolution={2: 300, 3: 30}, users={2: 100, 3: 15},
        sample_resolution={2: 30},
    )
    assert r.passed, r
    two, three = r.evidence["cases"]
    assert two["arc_exact"] == two["continuum_lower"] == two["continuum_upper"] == 2
    assert three["formula"] <= three["continuum_lower"] <= three["continuum_upper"]


def test_pruning_split():
    r = proofs_check.pruning_split(instances=(("random_momdp", 2, 0),), splits=(0.2, 0.8), targets=((0.2, 0.2),))
    assert r.passed, r
    assert r.evidence["runs_certified"] == "2/2"


def test_adaptive_soundness():
    r = proofs_check.adaptive_soundness(instances=(("demo_instance", 3, 0),), targets=((0.05, 0.0),), budgets=(None, 1))
    assert r.passed, r
    assert r.evidence["overclaims"] == 0 and r.evidence["budget_exhausted"] == 1


def test_corner_principle():
    r = proofs_check.corner_principle(instances=(("random_momdp", 3, 1),), sizes=(2, 4), n_dense=3000, n_dense_ub=40)
    assert r.passed, r
    assert r.evidence["max_excess"] <= 1e-9


def test_scalarized_palm():
    pytest.importorskip("cvxpy", reason="the exact non-linear optima come from the cvxpy occupancy programme")
    r = proofs_check.scalarized(instances=((2, 1, 0.2, 0.05),), grid={2: 40})
    assert r.passed, r
    assert r.evidence["max_violation"] <= 1e-9 and r.evidence["refused_p_le_0"]
    rows = r.evidence["rows"]
    assert [row["scalarization"] for row in rows] == ["Linear()", "Tchebycheff()", "PMean(p=0.5)"]
    assert all(row["size"] >= 1 and row["calls"] <= row["net_size"] for row in rows)
    cex = r.evidence["counterexample"]
    assert cex["g_exact"] == 0.0 and cex["g_oracle"] < cex["target"] and cex["opt"] > 0.9


def test_noisy_certificate():
    r = proofs_check.noisy_certificate(mc_runs=1000, instances=12)
    assert r.passed and r.evidence["false_certificates"] == 0 and r.evidence["robust_held"] > 0
    for row in r.evidence["coverage"]:
        assert row["failure_rate"] <= row["allowance"]


def test_noisy_certificate_check_can_fail():
    """The check is not vacuous: boxes too narrow for the noise fail the coverage part."""
    from palmopt.uncertainty import NoiseBudget

    budget = NoiseBudget(0.99)
    z = [budget.next(3) for _ in range(20)]
    rng = np.random.default_rng(0)
    errors = 3.0 * rng.normal(size=(500, 20, 3))  # three times the stated standard error
    assert np.mean(np.any(np.abs(errors) > np.array(z)[None, :, None], axis=(1, 2))) > 0.5


def test_observed_error_bound():
    r = proofs_check.observed_error_bound(instances=15)
    assert r.passed and r.evidence["overstated"] == 0 and r.evidence["flagged"] > 0


def test_scalarized_grid_and_measure_are_what_they_say():
    pytest.importorskip("cvxpy")
    from palmopt.scalarizations import Tchebycheff
    from proofs_check.scalarized import measure, small_momdp, weight_grid

    W = weight_grid(3, 4, taus=(0.01,))
    assert np.allclose(W.sum(axis=1), 1) and (W >= 0).all()
    assert any(np.isclose(W, 0.005).any(axis=1)) and any(np.isclose(W, 0.02).any(axis=1))
    assert len(weight_grid(2, 10)) == 11
    oracle = small_momdp(2, 0, Tchebycheff())
    W = weight_grid(2, 8)
    best_values = np.array([oracle(w).values for w in W])  # every optimum: nothing falls short
    viol, gap, UB, best = measure(oracle, best_values, W)
    assert (gap >= -1e-12).all() and gap.max() <= 1e-5 and (UB >= best - 1e-12).all()
    viol, gap, _, _ = measure(oracle, best_values[:1], W, 0.1, 0.0)  # one member: positive gaps
    assert gap.max() > 0.01


# ---------------------------------------------------------------------------- the machinery


def test_symbolic_chain_verifies_every_step():
    chain = symbolic_chain()
    assert chain["ok"]
    assert all(step["ok"] for step in chain.values() if isinstance(step, dict))


def test_closed_form_worst_case_matches_linprog():
    rng = np.random.default_rng(3)
    for _ in range(30):
        d = int(rng.integers(2, 5))
        w = rng.dirichlet(np.ones(d))
        l = w * rng.uniform(0.5, 1.0, d) * (rng.random(d) > 0.3)
        eps, delta = rng.uniform(0.01, 0.5, 2)
        res = linprog(-np.r_[(1 - eps) * w, -w], A_ub=np.r_[l, -l][None, :], b_ub=[0.0], bounds=[(0, 1)] * (2 * d))
        assert cell_worst_case(w[None, :], l[None, :], eps, delta)[0] == pytest.approx(-res.fun - delta, abs=1e-9)


@pytest.mark.parametrize("d,eps,delta", [(2, 0.3, 0.2), (3, 0.25, 0.1), (5, 0.5, 0.5)])
def test_brute_force_count_is_the_net_size(d, eps, delta):
    assert brute_force_count(d, eps, delta) == bounds.net_size(d, eps, delta)


@pytest.mark.parametrize("eps", [0.02, 0.05, 0.1])
def test_arc_minimum_with_no_additive_slack_is_the_bound(eps):
    # delta -> 0: every arc has half-width theta, so the minimum is ceil(pi / (4 theta))
    k, monotone, reach = arc_minimum(eps, 1e-9)
    assert monotone and reach >= math.pi / 2
    assert k == math.ceil(math.pi / (4 * math.acos(1 - eps)) - 1e-9)


@pytest.mark.parametrize("d,N", [(2, 50), (3, 20)])
def test_covering_radius_bounds_random_directions(d, N):
    T = bounds.sphere_front(d, N)
    U = np.abs(np.random.default_rng(0).standard_normal((5000, d)))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    nearest = np.sqrt(((U[:, None, :] - T[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    assert nearest.max() <= covering_radius(d, N, T)


# ---------------------------------------------------------------------------- the command line


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "proofs_check", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_command_line_quick_run_passes():
    proc = _run("--quick")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in proofs_check.CHECKS:
        assert name in proc.stdout
    n = len(proofs_check.CHECKS)
    assert "FAIL" not in proc.stdout and f"{n}/{n} claims pass" in proc.stdout


def test_command_line_usage_error_exits_2():
    assert _run("--only", "no_such_claim").returncode == 2
