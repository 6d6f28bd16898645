r"""PALM's budget split between the net and the pruning rule (``palmopt.palm``'s module docstring).

Claim.  With ``1-ε_1 = (1-ε)^(1-split)``, ``1-ε_2 = (1-ε)^split``, ``δ_1 = (1-split)δ``,
``δ_2 = split·δ``, the net built at ``(ε_1, δ_1)`` followed by set-cover pruning with the rule
``l·V_j ≥ (1-ε_2) l·V_g - δ_2`` yields an (ε, δ)-portfolio for every ``split ∈ (0, 1)``:

.. math:: w·V_j ≥ (1-ε_2)(1-ε_1)(OPT(w) - δ_1) - δ_2 ≥ (1-ε) OPT(w) - δ .

Checked on tabular instances against their exact fronts with :func:`palmopt.certify` (whole
simplex, LP certificates), for several splits; the evidence also shows how the portfolio size
and the number of oracle calls move with the split.
"""

import time

from palmopt import bounds
from palmopt.certify import certify
from palmopt.palm import budget_split, palm
from palmopt.status import Status

from . import ClaimResult
from ._instances import describe, front, instance

__all__ = ["pruning_split"]

DEFAULT_INSTANCES = (
    ("random_momdp", 2, 0),
    ("random_momdp", 2, 1),
    ("many_policies", 2, 0),
    ("demo_instance", 3, 0),
)
DEFAULT_SPLITS = (0.1, 0.3, 0.5, 0.7, 0.9)
DEFAULT_TARGETS = ((0.1, 0.1), (0.2, 0.2))
#: Splits whose net needs more oracle calls than this are skipped (recorded as such).
MAX_CALLS = 10_000


def pruning_split(
    instances=DEFAULT_INSTANCES,
    splits=DEFAULT_SPLITS,
    targets=DEFAULT_TARGETS,
    *,
    prune="greedy",
    max_calls=MAX_CALLS,
):
    """Certify PALM's portfolios for several budget splits against exact fronts.

    Parameters
    ----------
    instances : sequence of (kind, d, seed)
        Tabular instances (``proofs_check._instances``).
    splits : sequence of float in (0, 1)
    targets : sequence of (eps, delta)
    prune : {"greedy", "exact"}
    max_calls : int
        Skip a (target, split) whose net has more points than this.

    Returns
    -------
    ClaimResult
        ``evidence``: ``runs_certified`` (``n/m``), the largest certified violation (``≤ 0``),
        and per run the instance, target, split, net size, distinct policies, portfolio size
        and the exact certificate's ``eps*``, ``delta*`` and violation.  Also the portfolio
        size at each split (``size_by_split``), the trade-off the split controls: a larger
        split leaves a finer net (more oracle calls) but a coarser pruning rule (fewer members).
    """
    t0 = time.perf_counter()
    rows = []
    for spec in instances:
        mdp, T = instance(*spec), front(*spec)
        for eps, delta in targets:
            for split in splits:
                eps1, delta1, _, _ = budget_split(eps, delta, split)
                n_net = bounds.net_size(mdp.d, eps1, delta1)
                row = {"instance": describe(spec), "d": mdp.d, "eps": eps, "delta": delta, "split": split,
                       "net_size": n_net}
                if n_net > max_calls:
                    rows.append({**row, "skipped": True})
                    continue
                p = palm(mdp, eps, delta, split=split, prune=prune, progress=False, max_points=max_calls)
                cert = certify(p, T, eps, delta)
                rows.append(
                    {
                        **row,
                        "skipped": False,
                        "n_distinct": p.info["n_distinct"],
                        "size": len(p),
                        "front_size": len(T),
                        "holds": cert.holds,
                        "status": str(cert.status),
                        "violation": cert.violation,
                        "eps_star": cert.eps_star,
                        "delta_star": cert.delta_star,
                    }
                )
    done = [r for r in rows if not r["skipped"]]
    certified = [r for r in done if r["holds"] and r["status"] == Status.SUCCESS]
    by_split = {}
    for r in done:
        by_split.setdefault(r["split"], []).append(r["size"])
    return ClaimResult(
        claim="pruning_split",
        parameters={
            "instances": [describe(s) for s in instances],
            "splits": list(splits),
            "targets": [tuple(t) for t in targets],
            "prune": prune,
            "max_calls": max_calls,
        },
        evidence={
            "runs_certified": f"{len(certified)}/{len(done)}",
            "max_violation": max(r["violation"] for r in done) if done else None,
            "skipped": len(rows) - len(done),
            "mean_size_by_split": {s: sum(v) / len(v) for s, v in sorted(by_split.items())},
            "seconds": time.perf_counter() - t0,
            "runs": rows,
        },
        passed=bool(done) and len(certified) == len(done),
    )
