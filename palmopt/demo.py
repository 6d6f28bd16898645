"""``palmopt demo``: the main job on the embedded default instance (no network, no GPU).

Builds a PALM portfolio for the built-in tabular MOMDP, certifies it over the whole simplex
against the instance's exact front, compares it with the uniform and random weight baselines
of the same size and with palmopt's adaptive construction (same target, a few calls), writes a picture of the simplex coloured by serving member, and prints a
summary.  Results persist in the output directory; a rerun resumes from its run store.
"""

import json
import os
import time

from oracles.registry import from_spec

from . import baselines
from .adaptive import adaptive
from .certify import certify
from .palm import palm

DEMO_EPS = 0.05
DEMO_DELTA = 0.05


def run_demo(out="palmopt-demo", json_output=False, eps=DEMO_EPS, delta=DEMO_DELTA, progress=True):
    """Run the demo; returns the exit code (0 when PALM's certificate holds)."""
    t0 = time.perf_counter()
    oracle = from_spec("demo")
    os.makedirs(out, exist_ok=True)
    front = oracle.reference_front()
    portfolio = palm(oracle, eps, delta, prune="exact", store=out, progress=progress)
    k = len(portfolio)
    rows = [("PALM (exact prune)", portfolio)]
    rows.append(("uniform weights", baselines.uniform(oracle, k)))
    rows.append(("random weights", baselines.random(oracle, k, rng=0)))
    rows.append(("adaptive (palmopt)", adaptive(oracle, eps, delta, progress=False)))
    certs = [certify(p, front, eps, delta) for _, p in rows]
    portfolio.save(os.path.join(out, "portfolio"), oracle=oracle)

    from .plotting import plot_routing

    png = os.path.join(out, "simplex.png")
    plot_routing([(name, p, c) for (name, p), c in zip(rows, certs)], png)
    summary = {
        "instance": repr(oracle),
        "front_size": len(front),
        "eps": eps,
        "delta": delta,
        "oracle_calls": portfolio.n_oracle_calls,
        "net_size": portfolio.info["net_size"],
        "distinct_policies": portfolio.info["n_distinct"],
        "greedy_size": portfolio.info["greedy_size"],
        "portfolio_size": k,
        "methods": [
            {
                "method": name,
                "oracle_calls": p.n_oracle_calls,
                "size": len(p),
                "holds": c.holds,
                "violation": c.violation,
                "eps_star": c.eps_star,
                "delta_star": c.delta_star,
                "worst_weight": c.worst_weight.tolist(),
                "status": str(c.status),
            }
            for (name, p), c in zip(rows, certs)
        ],
        "png": png,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    if json_output:
        print(json.dumps(summary))
    else:
        print(f"palmopt demo: {oracle!r}, exact front of {len(front)} vectors, target (ε, δ) = ({eps}, {delta})")
        print(
            f"PALM: {portfolio.n_oracle_calls:,} oracle calls on the net, {portfolio.info['n_distinct']} distinct "
            f"policies, greedy cover {portfolio.info['greedy_size']}, exact cover {k}"
        )
        print(f"\n{'method':<22}{'calls':>8}{'size':>5}{'certified':>11}{'violation':>11}{'ε*':>8}{'δ*':>8}")
        for (name, p), c in zip(rows, certs):
            print(
                f"{name:<22}{p.n_oracle_calls:>8,}{len(p):>5}{'yes' if c.holds else 'NO':>11}{c.violation:>11.4f}"
                f"{c.eps_star:>8.4f}{c.delta_star:>8.4f}"
            )
        print("\n(certificates are exact LPs over the whole simplex; ε*, δ* are the worst pure gaps)")
        print(f"picture: {png}\nsummary: {os.path.join(out, 'summary.json')}  ({summary['seconds']} s)")
    return 0 if certs[0].certified else 1
