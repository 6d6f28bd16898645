r"""Certificates from noisy and approximate oracles (DESIGN.md §6, ``palmopt.uncertainty``).

Claim 1 (``noisy_certificate``).  Two parts.
(a) *Coverage*: the budget of :class:`palmopt.uncertainty.NoiseBudget` makes every box hold at
once with probability ``≥ confidence``: over many Monte-Carlo runs of ``m`` Gaussian estimates
with their stated standard errors, the fraction of runs where some true value leaves its box is
``≤ 1 - confidence`` (checked with a one-sided binomial margin).
(b) *Soundness on the event*: whenever the robust certificate holds, the exact certificate of
the members' TRUE values against the true front holds -- for truths placed adversarially in
the boxes (box corners, faces and random points).  Checked on random sphere fronts with an
exact argmax oracle providing the truth.

Claim 2 (``observed_error_bound``).  The observed error is a lower bound on the truth: for an
oracle that returns, at each weight, a policy up to a known additive error below optimal, the
``needed`` additive error reported by :func:`palmopt.uncertainty.observed_error` never exceeds
the oracle's true error ``max_q OPT(w_q) - w_q·v_q``, and an excess (status
``"oracle-inconsistent"``) is only ever reported when the declared error is really exceeded.
"""

import time

import numpy as np
from scipy.stats import binom

from palmopt.certify import certify
from palmopt.uncertainty import Evidence, NoiseBudget, observed_error, robust_certificate

from . import ClaimResult

__all__ = ["noisy_certificate", "observed_error_bound"]


def _sphere(d, n, rng):
    X = np.abs(rng.normal(size=(n, d)))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def noisy_certificate(
    *, confidences=(0.8, 0.95), m=20, d=3, mc_runs=4000, instances=40, targets=((0.05, 0.02), (0.1, 0.05)), seed=0
):
    """Check coverage of the boxes and soundness of the robust certificate on their event.

    Returns
    -------
    ClaimResult
        ``evidence``: the worst coverage failure rate and its allowance per confidence, the
        number of robust certificates that held, and how many of those were false (must be 0).
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    coverage = []
    for c in confidences:
        budget = NoiseBudget(c)
        Z = np.array([budget.next(d) for _ in range(m)])
        errors = rng.normal(size=(mc_runs, m, d))  # in units of the standard error
        failed = np.any(np.abs(errors) > Z[None, :, None], axis=(1, 2))
        rate = failed.mean()
        # the largest failure count consistent with rate <= 1 - c at the 0.001 level
        allowance = binom.ppf(0.999, mc_runs, 1 - c) / mc_runs
        coverage.append({"confidence": c, "failure_rate": float(rate), "allowance": float(allowance)})

    held = false = 0
    rows = []
    for k in range(instances):
        dd = 2 + k % 2
        front = _sphere(dd, 30, rng)
        n = dd + 3 + k % 5
        Q = np.vstack([np.eye(dd), rng.dirichlet(np.ones(dd), n - dd)])
        truth = front[np.argmax(Q @ front.T, axis=1)]
        sigma = [0.002, 0.01, 0.03][k % 3]
        S = np.full_like(truth, sigma)
        Z = np.full(n, 2.5)
        for placement in ("corners", "random"):
            U = rng.choice([-1.0, 1.0], truth.shape) if placement == "corners" else rng.uniform(-1, 1, truth.shape)
            ev = Evidence(Q, truth + U * Z[:, None] * S, S, Z, value_range=(-1.0, 2.0))
            for eps, delta in targets:
                cert, _ = robust_certificate(ev, np.arange(n), eps, delta)
                if cert.holds:
                    held += 1
                    exact = certify(truth, front, eps, delta)
                    false += not exact.holds
                    rows.append({"d": dd, "sigma": sigma, "placement": placement, "eps": eps, "delta": delta,
                                 "robust_violation": cert.violation, "true_violation": exact.violation})
    coverage_ok = all(r["failure_rate"] <= r["allowance"] for r in coverage)
    return ClaimResult(
        claim="noisy_certificate",
        parameters={"confidences": list(confidences), "m": m, "d": d, "mc_runs": mc_runs, "instances": instances,
                    "targets": [list(t) for t in targets]},
        evidence={
            "false_certificates": false,
            "robust_held": held,
            "worst_failure_rate": max(r["failure_rate"] for r in coverage),
            "coverage": coverage,
            "seconds": time.perf_counter() - t0,
            "table": rows,
        },
        passed=coverage_ok and false == 0 and held > 0,
    )


def observed_error_bound(*, instances=60, errors=(0.01, 0.05, 0.1), seed=1):
    """Check that the observed error never exceeds the oracle's true error.

    Returns
    -------
    ClaimResult
        ``evidence``: ``overstated`` (runs where the observed error exceeded the true one; must
        be 0), how many runs observed an excess, and the largest ratio observed / true.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    overstated = flagged = 0
    ratio = 0.0
    for k in range(instances):
        d = 2 + k % 3
        front = _sphere(d, 40, rng)
        eta_a = errors[k % len(errors)]
        Q = np.vstack([np.eye(d), rng.dirichlet(np.ones(d), 6 + k % 7)])
        scores = Q @ front.T
        picks = []
        for s in scores:  # any vector within eta_a of the optimum, chosen at random
            ok = np.flatnonzero(s >= s.max() - eta_a)
            picks.append(rng.choice(ok))
        V = front[picks]
        true_error = float(np.max(scores.max(axis=1) - np.einsum("ij,ij->i", Q, V)))
        ev = Evidence(Q, V, np.zeros_like(V), np.zeros(len(Q)))
        excess, _, _, needed = observed_error(ev)
        if excess > 1e-9:
            flagged += 1
        overstated += needed > true_error + 1e-12
        if true_error > 0:
            ratio = max(ratio, needed / true_error)
        # declaring the true error never produces an excess
        ev_true = Evidence(Q, V, np.zeros_like(V), np.zeros(len(Q)), eta=(0.0, true_error))
        overstated += observed_error(ev_true)[0] > 1e-9
    return ClaimResult(
        claim="observed_error_bound",
        parameters={"instances": instances, "errors": list(errors)},
        evidence={
            "overstated": overstated,
            "flagged": flagged,
            "max_ratio_observed_to_true": ratio,
            "seconds": time.perf_counter() - t0,
        },
        passed=overstated == 0 and flagged > 0,
    )
