"""Side-by-side portfolio benchmark (not a test): oracle calls, portfolio size and certified gaps.

    python bench/bench_portfolios.py [--quick] [--out bench/results]

For each instance (random MOMDPs with d = 2, 3, 4, MO-Gymnasium tables, the sphere instance)
and each target (eps, delta), runs PALM (when its net is small enough to call every point),
lazy PALM, adaptive, in-house OLS with the additive stop, and morl-baselines' LinearSupport
(when importable) on the same oracle in the same process, certifies each portfolio against
the instance's exact front, and reports calls as a ratio to the minimum portfolio size.
Writes ``portfolios.csv``, ``portfolios.md`` and ``portfolios.png``.
"""

import argparse
import csv
import os
import time

import numpy as np

import palmopt
from palmopt import bounds
from palmopt.palm import budget_split

TARGETS = [(0.05, 0.05), (0.1, 0.1), (0.02, 0.01)]
PALM_MAX_CALLS = 20_000  # run full PALM only below this many calls (else: its exact call count)
LAZY_MAX_POINTS = 2_000_000


class Counted:
    """Counts calls and the time spent inside the oracle."""

    def __init__(self, oracle):
        self.oracle, self.d = oracle, oracle.d
        self.calls, self.seconds = 0, 0.0

    def fingerprint(self):
        return self.oracle.fingerprint()

    def __call__(self, w):
        t0 = time.perf_counter()
        out = self.oracle(w)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out


def instances(quick):
    from oracles.tabular.instances import many_policies, random_momdp

    yield "random d=2", random_momdp(12, 4, 2, rng=0)
    yield "random d=3", random_momdp(8, 4, 3, rng=0)
    if not quick:
        yield "random d=4", random_momdp(6, 4, 4, rng=0)
    yield "sphere d=3 (200 arms)", many_policies(3, n_arms=200, rng=0)
    try:
        from oracles import mogym

        yield "deep-sea-treasure γ=0.95", mogym.deep_sea_treasure(0.95)
        if not quick:
            yield "resource-gathering γ=0.95", mogym.resource_gathering(0.95)
    except ImportError as exc:  # the mogym extra is not installed
        print(f"skipping MO-Gymnasium instances: {exc}")


def front_of(oracle):
    try:
        return oracle.reference_front()
    except (ValueError, AttributeError):  # too many policies to enumerate, or an MO-Gymnasium table
        return palmopt.ccs(oracle)


def linear_support(oracle, delta):
    """morl-baselines' OLS (LinearSupport) driven with the same oracle; None if unavailable."""
    try:
        from morl_baselines.multi_policy.linear_support.linear_support import LinearSupport
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        return None, f"{type(exc).__name__}: {exc}"
    ls = LinearSupport(num_objectives=oracle.d, epsilon=delta, verbose=False)
    values, t0 = [], time.perf_counter()
    while not ls.ended():
        w = ls.next_weight(algo="ols")
        if w is None:
            break
        v = oracle(np.asarray(w, dtype=float)).values
        values.append(v)
        ls.add_solution(v, w)
    return np.unique(np.array(values), axis=0), time.perf_counter() - t0


def run_method(name, fn, oracle, front, eps, delta):
    counted = Counted(oracle)
    t0 = time.perf_counter()
    p = fn(counted)
    total = time.perf_counter() - t0
    values = p if isinstance(p, np.ndarray) else p.values
    cert = palmopt.certify(values, front, eps, delta)
    return {
        "method": name,
        "calls": counted.calls,
        "size": len(values),
        "holds": cert.holds,
        "eps_star": cert.eps_star,
        "delta_star": cert.delta_star,
        "seconds": total,
        "seconds_outside_oracle": total - counted.seconds,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer instances")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    from palmopt.minimum import minimum_portfolio

    rows = []
    for inst_name, oracle in instances(args.quick):
        front = front_of(oracle)
        print(f"\n== {inst_name}: d={oracle.d}, exact front of {len(front)} vectors")
        for eps, delta in TARGETS:
            minimum = minimum_portfolio(front, eps, delta)
            base = {
                "instance": inst_name, "d": oracle.d, "eps": eps, "delta": delta,
                "min_size": minimum.size if minimum.exact else None,  # bounds only when not proven
                "min_bounds": [minimum.lower_bound, minimum.upper_bound],
            }  # fmt: skip
            e1, d1, _, _ = budget_split(eps, delta)
            try:
                net = bounds.net_size(oracle.d, e1, d1)
            except ValueError:
                net = bounds.upper_bound(oracle.d, e1, d1)
            methods = []
            if net <= PALM_MAX_CALLS:
                methods.append(("PALM", lambda o: palmopt.palm(o, eps, delta, progress=False)))
            else:
                rows.append({**base, "method": "PALM", "calls": net, "size": None, "holds": None,
                             "eps_star": None, "delta_star": None, "seconds": None,
                             "seconds_outside_oracle": None, "note": "not run: calls = exact net size"})  # fmt: skip
            if net <= LAZY_MAX_POINTS:
                methods.append(("lazy PALM", lambda o: palmopt.palm(o, eps, delta, lazy=True, progress=False, max_points=LAZY_MAX_POINTS)))  # fmt: skip
            methods.append(("adaptive", lambda o: palmopt.adaptive(o, eps, delta, progress=False)))
            for name, fn in methods:
                rows.append({**base, **run_method(name, fn, oracle, front, eps, delta), "note": ""})
            # additive-only rules at the same additive tolerance: in-house OLS vs morl-baselines
            rows.append({**base, **run_method("OLS (in-house, additive δ)", lambda o: palmopt.baselines.ols(o, delta),
                                              oracle, front, 0.0, delta), "note": "additive target (0, δ)"})  # fmt: skip
            ls_values, info = linear_support(Counted(oracle), delta)
            if ls_values is None:
                rows.append({**base, "method": "morl-baselines LinearSupport", "calls": None, "size": None,
                             "holds": None, "eps_star": None, "delta_star": None, "seconds": None,
                             "seconds_outside_oracle": None, "note": f"unavailable ({info})"})  # fmt: skip
            else:
                rows.append({**base, **run_method("morl-baselines LinearSupport",
                                                  lambda o: linear_support(o, delta)[0], oracle, front, 0.0, delta),
                             "note": "additive target (0, δ)"})  # fmt: skip
            for r in rows[-len(methods) - 2 - (net > PALM_MAX_CALLS):]:
                ratio = "" if None in (r["calls"], r["min_size"]) else f"{r['calls'] / max(r['min_size'], 1):.1f}x"
                print(f"  ({eps}, {delta}) {r['method']:<30} calls={r['calls']} ({ratio} of min {r['min_size']}) "
                      f"size={r['size']} holds={r['holds']} {r['note']}")  # fmt: skip

    for r in rows:
        r["calls_over_min"] = None if None in (r["calls"], r["min_size"]) else r["calls"] / max(r["min_size"], 1)
    keys = ["instance", "d", "eps", "delta", "method", "calls", "min_size", "min_bounds", "calls_over_min", "size", "holds",
            "eps_star", "delta_star", "seconds", "seconds_outside_oracle", "note"]  # fmt: skip
    with open(os.path.join(args.out, "portfolios.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(args.out, "portfolios.md"), "w") as f:
        f.write("| instance | (ε, δ) | method | calls | min size | calls / min | size | certified | ε* | δ* |\n")
        f.write("|---|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            fmt = lambda x, p=3: "–" if x is None else (f"{x:.{p}f}" if isinstance(x, float) else str(x))  # noqa: E731
            f.write(f"| {r['instance']} | ({r['eps']}, {r['delta']}) | {r['method']} | {fmt(r['calls'])} | "
                    f"{r['min_size']} | {fmt(r['calls_over_min'], 1)} | {fmt(r['size'])} | {fmt(r['holds'])} | "
                    f"{fmt(r['eps_star'])} | {fmt(r['delta_star'])} |\n")  # fmt: skip
    _plot(rows, os.path.join(args.out, "portfolios.png"))
    print(f"\nwrote {args.out}/portfolios.csv, portfolios.md, portfolios.png")


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = sorted({r["method"] for r in rows if r["calls"] is not None})
    cases = sorted({(r["instance"], r["eps"], r["delta"]) for r in rows})
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(cases)), 4.5))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        ys = [next((r["calls_over_min"] for r in rows if (r["instance"], r["eps"], r["delta"]) == c and r["method"] == m), np.nan) for c in cases]  # fmt: skip
        ax.bar(np.arange(len(cases)) + i * width, [np.nan if y is None else y for y in ys], width, label=m)
    ax.set_yscale("log")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(cases)) + 0.4)
    ax.set_xticklabels([f"{c[0]}\n({c[1]}, {c[2]})" for c in cases], rotation=90, fontsize=7)
    ax.set_ylabel("oracle calls / minimum portfolio size")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
