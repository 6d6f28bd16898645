"""Oracle calls and palmopt's own time of ``adaptive`` on the exact path (issue #13), before/after.

    python bench/bench_calls.py [--quick] [--before REF | --no-before] [--rows NAME ...]

Rows: the instances and targets of ``bench/bench_portfolios.py`` (random MOMDPs d = 3, 4, the
sphere instance with 200 arms) and sphere fronts (300 random points on the positive orthant of
the unit sphere, argmax oracle) in d = 3, 4, 5 (calls), d = 5, 6, 8 (own time).  Columns:

- calls of ``adaptive`` (batch=1) before / after, the minimum portfolio size
  (:func:`palmopt.minimum.minimum_portfolio`; ``lo-hi`` when only bounds were proven) and the target
  ``2·min + d``;
- batch=8 after: calls and rounds, as ratios to batch=1 (target: ≤ 1.5× the calls in ≤ 1/4 of the rounds);
- palmopt's own time (total minus time inside the oracle) as a ratio to a reference workload timed
  in the same process: 300 HiGHS LPs (``scipy.optimize.linprog``) of the optimistic bound's size
  (d variables, 20·d rows);
- whether a looser target ever took more calls than a tighter one on the same instance (ε = δ = 0 included
  where the exact set is affordable).

"before" is ``palmopt/adaptive.py`` at the git revision REF (default: the commit before this work),
loaded read-only through ``git show``; rows too slow before (d ≥ 6) are not rerun there.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import palmopt  # noqa: E402
from palmopt.minimum import minimum_portfolio  # noqa: E402

BEFORE_REF = "9e72379"  # the commit before issue #13's exact-path work


def sphere(d, n=300, seed=0):
    V = np.abs(np.random.default_rng(seed).normal(size=(n, d)))
    return V / np.linalg.norm(V, axis=1, keepdims=True)


class Counted:
    """An argmax (or tabular) oracle that counts calls and the time spent inside it."""

    def __init__(self, inner, d):
        self.inner, self.d, self.calls, self.seconds = inner, d, 0, 0.0

    def __call__(self, w):
        t0 = time.perf_counter()
        out = self.inner(w)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out


def make_oracle(front, tabular):
    if tabular is not None:
        return Counted(tabular, tabular.d)
    return Counted(lambda w: palmopt.Solution(values=front[np.argmax(front @ w)]), front.shape[1])


def reference_seconds(d, n=300, seed=0):
    """300 HiGHS LPs of the optimistic bound's size (d variables, 20·d rows)."""
    from scipy.optimize import linprog

    rng = np.random.default_rng(seed)
    Q = rng.dirichlet(np.ones(d), size=20 * d)
    b = Q @ np.full(d, 0.7) + 0.05 * rng.random(20 * d)
    t0 = time.perf_counter()
    for w in rng.dirichlet(np.ones(d), size=n):
        linprog(-w, A_ub=Q, b_ub=b, bounds=(0, 1), method="highs")
    return time.perf_counter() - t0


def load_before(ref):
    """``palmopt.adaptive`` as of git revision ``ref`` (a sibling module of the package)."""
    src = subprocess.run(["git", "-C", ROOT, "show", f"{ref}:palmopt/adaptive.py"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    spec = importlib.util.spec_from_loader("palmopt._adaptive_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "palmopt"
    exec(compile(src, f"{ref}:palmopt/adaptive.py", "exec"), module.__dict__)
    return module.adaptive


def run(adaptive, front, tabular, eps, delta, **kwargs):
    oracle = make_oracle(front, tabular)
    t0 = time.perf_counter()
    p = adaptive(oracle, eps, delta, progress=False, **kwargs)
    total = time.perf_counter() - t0
    assert palmopt.certify(p, front, eps, delta).holds or p.status != "success", "unsound certificate"
    return {"calls": p.n_oracle_calls, "rounds": p.info["rounds"], "own": total - oracle.seconds, "status": str(p.status)}


def instances(quick):
    """(name, front, tabular oracle or None, targets, options)."""
    from oracles.tabular.instances import many_policies, random_momdp

    bp = [(0.05, 0.05), (0.1, 0.1), (0.02, 0.01)]
    r3 = random_momdp(8, 4, 3, rng=0)
    yield "random d=3", r3.reference_front(), r3, bp + [(0.01, 0.0), (0.0, 0.0)], {}
    if not quick:
        r4 = random_momdp(6, 4, 4, rng=0)
        yield "random d=4", r4.reference_front(), r4, bp + [(0.01, 0.0)], {}
    m3 = many_policies(3, n_arms=200, rng=0)
    yield "sphere d=3 (200 arms)", m3.reference_front(), m3, bp + ([] if quick else [(0.01, 0.0)]), {}
    yield "sphere-300 d=3", sphere(3), None, [(0.05, 0.05), (0.1, 0.1), (0.02, 0.01), (0.01, 0.0)], {}
    yield "sphere-300 d=4", sphere(4), None, [(0.05, 0.05)] + ([] if quick else [(0.02, 0.01), (0.0, 0.01)]), {}
    yield "sphere-300 d=5", sphere(5), None, [(0.05, 0.05)], {"time_row": True}
    if not quick:
        yield "sphere-300 d=6", sphere(6), None, [(0.05, 0.05)], {"time_row": True, "no_before": True, "no_min": True}
        yield "sphere-300 d=8", sphere(8), None, [(0.1, 0.1)], {"time_row": True, "no_before": True, "no_min": True}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows (a few minutes)")
    parser.add_argument("--before", default=BEFORE_REF, help="git revision of the 'before' adaptive.py")
    parser.add_argument("--no-before", action="store_true")
    parser.add_argument("--no-batch", action="store_true", help="skip the batch=8 runs")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    before = None if args.no_before else load_before(args.before)
    after = palmopt.adaptive
    after(make_oracle(sphere(3, 20), None), 0.1, 0.1, progress=False)  # imports and JIT out of the timings
    rows, ref_cache = [], {}
    head = ("| row | (ε, δ) | calls before | calls after | min | 2·min+d | met | batch 8: calls× / rounds× "
            "| own time / ref before | after |")  # fmt: skip
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, front, tabular, targets, opt in instances(args.quick):
        d = front.shape[1]
        if d not in ref_cache:
            ref_cache[d] = min(reference_seconds(d), reference_seconds(d, seed=1))
        calls_after = {}
        for eps, delta in targets:
            a = run(after, front, tabular, eps, delta)
            calls_after[(eps, delta)] = a["calls"]
            b = None
            if before is not None and not opt.get("no_before"):
                b = run(before, front, tabular, eps, delta)
            if (eps, delta) == (0.0, 0.0):
                minimum, lo, hi = len(palmopt.ccs(make_oracle(front, tabular))), None, None
            elif opt.get("no_min"):
                minimum = lo = hi = None
            else:
                m = minimum_portfolio(front, eps, delta, time_limit=30)
                minimum, lo, hi = (m.size if m.exact else None), m.lower_bound, m.upper_bound
            limit = None if minimum is None and lo is None else 2 * (minimum if minimum is not None else lo) + d
            b8 = None
            if not args.no_batch and a["calls"] >= 8 and not opt.get("time_row"):
                b8 = run(after, front, tabular, eps, delta, batch=8)
            ref = ref_cache[d]
            row = {
                "row": name, "d": d, "eps": eps, "delta": delta, "calls_before": b and b["calls"], "calls_after": a["calls"],
                "min": minimum, "min_bounds": [lo, hi], "limit": limit, "met": None if limit is None else a["calls"] <= limit,
                "batch8_calls_ratio": b8 and b8["calls"] / a["calls"], "batch8_rounds_ratio": b8 and b8["rounds"] / a["rounds"],
                "own_ratio_before": b and b["own"] / ref, "own_ratio_after": a["own"] / ref, "ref_seconds": ref,
                "own_after": a["own"], "status": a["status"],
            }  # fmt: skip
            rows.append(row)
            fmt = lambda x, p=1: "–" if x is None else (f"{x:.{p}f}" if isinstance(x, float) else str(x))  # noqa: E731
            mins = fmt(minimum) if minimum is not None else (f"{lo}–{hi}" if lo is not None else "–")
            b8s = "–" if b8 is None else f"{row['batch8_calls_ratio']:.2f}× / {row['batch8_rounds_ratio']:.2f}×"
            print(f"| {name} | ({eps}, {delta}) | {fmt(row['calls_before'])} | {a['calls']} | {mins} | {fmt(limit)} | "
                  f"{'yes' if row['met'] else ('no' if row['met'] is not None else '–')} | {b8s} | "
                  f"{fmt(row['own_ratio_before'])}× | {fmt(row['own_ratio_after'])}× ({a['own']:.1f} s) |", flush=True)  # fmt: skip
        order = sorted(calls_after)  # looser in both coordinates must not cost more calls
        bad = [(s, t) for s in order for t in order if s != t and s[0] >= t[0] and s[1] >= t[1] and calls_after[s] > calls_after[t]]  # fmt: skip
        print(f"|   {name}: a looser target took more calls than a tighter one: {bad if bad else 'never'} | | | | | | | | | |")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=str)
    print(f"\nreference workload (300 HiGHS LPs, d vars, 20·d rows), seconds: {ref_cache}")


if __name__ == "__main__":
    main()
