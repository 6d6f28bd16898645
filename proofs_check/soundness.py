r"""Soundness of the adaptive black-box certificate (DESIGN.md §3–4, ``palmopt.adaptive``).

Claim.  Without a front, :func:`palmopt.adaptive` certifies its portfolio against the
optimistic bound ``UB(w) = max{w·v : w_q·v ≤ OPT(w_q) ∀q, 0 ≤ v ≤ 1} ≥ OPT(w)`` at the corner
weights of the portfolio's envelope.  That certificate never claims more than the truth: with
the exact certificate of the same portfolio against the exact front (:func:`palmopt.certify`),

.. math:: violation_{bb} ≥ violation_{exact},\quad ε^*_{bb} ≥ ε^*_{exact},\quad δ^*_{bb} ≥ δ^*_{exact},

so "certified" (``violation_bb ≤ 0``) implies truly certified.  Checked on tabular instances
with known fronts, for finished runs and for runs cut short by a call budget (whose portfolios
are not certified, so the three quantities are non-trivial).
"""

import time

from palmopt.adaptive import adaptive
from palmopt.certify import certify
from palmopt.status import Status

from . import ClaimResult
from ._instances import describe, front, instance

__all__ = ["adaptive_soundness"]

DEFAULT_INSTANCES = (
    ("random_momdp", 2, 0),
    ("random_momdp", 3, 1),
    ("random_momdp", 4, 2),
    ("many_policies", 2, 0),
    ("many_policies", 3, 0),
    ("few_policies", 3, 0),
    ("demo_instance", 3, 0),
)
DEFAULT_TARGETS = ((0.05, 0.0), (0.0, 0.05), (0.1, 0.05))
#: Extra oracle calls beyond the d vertex queries for the budget-limited runs (None: unlimited).
DEFAULT_BUDGETS = (None, 2)
#: LP accuracy allowed in the comparisons.
TOL = 1e-7


def adaptive_soundness(instances=DEFAULT_INSTANCES, targets=DEFAULT_TARGETS, *, budgets=DEFAULT_BUDGETS, batch=1):
    """Compare the black-box certificate of ``adaptive`` with the exact one.

    Parameters
    ----------
    instances : sequence of (kind, d, seed)
    targets : sequence of (eps, delta)
    budgets : sequence of int or None
        ``max_calls = d + budget`` (``None``: run to the target).
    batch : int
        Corners queried per round.

    Returns
    -------
    ClaimResult
        ``evidence``: ``overclaims`` (runs where a black-box quantity is below the exact one by
        more than ``1e-7``; must be 0), the smallest margins ``bb - exact`` of the violation,
        ``eps*`` and ``delta*``, how many runs were certified by each, and a row per run.
    """
    t0 = time.perf_counter()
    rows = []
    for spec in instances:
        mdp, T = instance(*spec), front(*spec)
        for eps, delta in targets:
            for budget in budgets:
                max_calls = None if budget is None else mdp.d + budget
                p = adaptive(mdp, eps, delta, max_calls=max_calls, batch=batch, progress=False)
                bb = p.certificate
                ex = certify(p, T, eps, delta)
                margins = {
                    "violation": bb.violation - ex.violation,
                    "eps_star": bb.eps_star - ex.eps_star,
                    "delta_star": bb.delta_star - ex.delta_star,
                }
                rows.append(
                    {
                        "instance": describe(spec),
                        "eps": eps,
                        "delta": delta,
                        "max_calls": max_calls,
                        "status": str(p.status),
                        "size": len(p),
                        "calls": p.n_oracle_calls,
                        "bb_holds": bb.holds,
                        "exact_holds": ex.holds,
                        "bb_violation": bb.violation,
                        "exact_violation": ex.violation,
                        "bb_eps_star": bb.eps_star,
                        "exact_eps_star": ex.eps_star,
                        "bb_delta_star": bb.delta_star,
                        "exact_delta_star": ex.delta_star,
                        "margins": margins,
                        "sound": bool(
                            min(margins.values()) >= -TOL
                            and (not bb.holds or ex.holds)
                            and bb.kind == "black-box"
                            and bb.status == Status.SUCCESS
                            and ex.status == Status.SUCCESS
                        ),
                    }
                )
    overclaims = sum(not r["sound"] for r in rows)
    return ClaimResult(
        claim="adaptive_soundness",
        parameters={
            "instances": [describe(s) for s in instances],
            "targets": [tuple(t) for t in targets],
            "budgets": list(budgets),
            "batch": batch,
        },
        evidence={
            "overclaims": overclaims,
            "runs": len(rows),
            "min_margin_violation": min(r["margins"]["violation"] for r in rows),
            "min_margin_eps_star": min(r["margins"]["eps_star"] for r in rows),
            "min_margin_delta_star": min(r["margins"]["delta_star"] for r in rows),
            "bb_certified": sum(r["bb_holds"] for r in rows),
            "exact_certified": sum(r["exact_holds"] for r in rows),
            "budget_exhausted": sum(r["status"] == Status.BUDGET_EXHAUSTED for r in rows),
            "seconds": time.perf_counter() - t0,
            "table": rows,
        },
        passed=overclaims == 0,
    )
