"""Calibration of certificates with real oracles: do the certificates of `palmopt.adaptive` stay true?

On random tabular MOMDPs (``oracles.tabular.instances.random_momdp``) whose exact front is known,
`palmopt.adaptive(oracle, eps, delta, confidence=c)` runs with oracles that are

* exact, noisy (``oracles.testbeds.NoisyOracle``, Gaussian noise of standard error sigma), and/or
  suboptimal (``oracles.testbeds.SuboptimalOracle``, the worst policy within an error of
  ``(0.02, 0)``, declared to palmopt or not);
* learned (``oracles.tabular.learned.SampledModelOracle``: a model from sampled transitions,
  exact planning on it, Monte-Carlo values; its error is undeclared);

with and without the ``evaluate`` hook (re-evaluation of a policy instead of new calls).  For
every run the portfolio's *true* values (the exact evaluation of its policies, never the noisy
estimates) are checked against the true front with the exact LP certificate
(``palmopt.certify``).  A certificate is FALSE when adaptive says certified and the exact check
says the guarantee does not hold.  The rate of false certificates over runs must stay below
``alpha = 1 - confidence`` wherever the oracle meets the certificate's assumptions (declared or
no error); undeclared errors are outside them, and the table shows what that costs.

Columns: ``certified`` fraction of runs certified; ``false`` fraction of runs with a false
certificate (and its one-sided 95% Clopper-Pearson upper bound ``false_ucb``); ``false|cert``
among the certified ones; ``inconsistent`` fraction ending ``oracle-inconsistent``; ``calls`` and
``evals`` mean oracle calls and evaluations per run; ``worst_true`` the largest true violation over
the runs (``> 0``: some portfolio, certified or not, misses its target); ``s/run`` seconds per run.

Instances: ``--instance random`` (default: ``random_momdp(6, 4, 2)``, small fronts, loose
certificates) or ``--instance arc`` (``many_policies(2, n_arms=64)``: a curved front of 64 one-step
policies where certificates are tight, so errors show; its learned oracle is exact, since one
state leaves nothing to learn and every roll-out returns the same).

Usage: python bench/bench_real_oracles.py [--runs 200] [--quick] [--out bench-out/real-oracles]
       [--instance random|arc] [--confidences 0.8 0.9 0.95] [--sigmas 0 0.003 0.01 0.03] [--seed 0]
Runtime (one core): ``--quick`` (10 runs per setting) about 5 minutes; the default 200 runs per
setting about 1.5 hours.
"""

import argparse
import csv
import math
import os
import sys
import time
import warnings

import numpy as np

import palmopt
from oracles.tabular.instances import many_policies, random_momdp
from oracles.tabular.learned import SampledModelOracle
from oracles.testbeds import NoisyOracle, SuboptimalOracle, true_values

ERRORS = {"exact": None, "declared": True, "undeclared": False}
ETA = (0.02, 0.0)


class WithoutEvaluate:
    """``oracle`` with its ``evaluate`` hook hidden (everything else passed through)."""

    def __init__(self, oracle):
        self.oracle = oracle
        self.d = oracle.d
        self.value_range = getattr(oracle, "value_range", (0.0, 1.0))

    def __call__(self, w):
        return self.oracle(w)

    def fingerprint(self):
        return f"no-evaluate({self.oracle.fingerprint()})"

    def __getattr__(self, name):
        if name in ("error", "seed", "with_seed") and "oracle" in self.__dict__:
            return getattr(self.__dict__["oracle"], name)
        raise AttributeError(name)


def settings(args):
    """(label fields, builder(mdp, run) -> oracle) for every setting of the study."""
    out = []
    for c in args.confidences:
        for sigma in args.sigmas:
            for err in args.errors:
                for ev in ([True] if sigma == 0 else [True, False]):
                    out.append(({"oracle": "testbed", "confidence": c, "sigma": sigma, "error": err,
                                 "evaluate": ev if sigma > 0 else "n/a"}, (sigma, err, ev)))
        for n in args.learned_samples:
            for ev in (True, False):
                out.append(({"oracle": f"learned n={n}", "confidence": c, "sigma": "MC",
                             "error": "undeclared", "evaluate": ev}, ("learned", n, ev)))
    return out


def build(spec, mdp, run, args):
    if spec[0] == "learned":
        _, n, ev = spec
        S, A = mdp.n_states, mdp.n_actions
        oracle = SampledModelOracle(mdp, steps=n * S * A, rollouts=args.rollouts, seed=run)
        return oracle if ev else WithoutEvaluate(oracle)
    sigma, err, ev = spec
    oracle = mdp
    if ERRORS[err] is not None:
        oracle = SuboptimalOracle(mdp, ETA, declare=ERRORS[err], mode="worst")
    if sigma > 0:
        oracle = NoisyOracle(oracle, sigma, seed=run)
    return oracle if ev else WithoutEvaluate(oracle)


def clopper_pearson_upper(k, n, level=0.95):
    if n == 0:
        return float("nan")
    if k >= n:
        return 1.0
    from scipy.stats import beta

    return float(beta.ppf(level, k + 1, n - k))


def one_run(oracle, mdp, front, c, args):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # inconsistent oracles warn; the status says it
        p = palmopt.adaptive(oracle, args.eps, args.delta, confidence=c, progress=False)
    seconds = time.perf_counter() - t0
    cert = p.certificate
    V = np.array([true_values(mdp, pol) for pol in p.policies])
    truth = palmopt.certify(V, front, eps=args.eps, delta=args.delta)
    certified = bool(cert.certified)
    return {
        "certified": certified,
        "true_holds": bool(truth.holds),
        "false": certified and not truth.holds,
        "true_violation": float(truth.violation),
        "status": str(p.status),
        "calls": int(p.n_oracle_calls),
        "evaluations": int(p.info.get("evaluations", 0)),
        "members": len(p),
        "observed_error": float(getattr(cert, "observed_error", 0.0)),
        "seconds": seconds,
    }


def summarise(rows, specs):
    table = []
    for label, _ in specs:
        key = tuple(label.values())
        rs = [r for r in rows if r["key"] == key]
        n = len(rs)
        if not n:
            continue
        k_false = sum(r["false"] for r in rs)
        n_cert = sum(r["certified"] for r in rs)
        table.append({
            **label,
            "runs": n,
            "alpha": round(1 - label["confidence"], 3),
            "certified": n_cert / n,
            "false": k_false / n,
            "false_ucb": clopper_pearson_upper(k_false, n),
            "false|cert": (k_false / n_cert) if n_cert else float("nan"),
            "inconsistent": sum(r["status"] == "oracle-inconsistent" for r in rs) / n,
            "worst_true": max(r["true_violation"] for r in rs),
            "calls": float(np.mean([r["calls"] for r in rs])),
            "evals": float(np.mean([r["evaluations"] for r in rs])),
            "s/run": float(np.mean([r["seconds"] for r in rs])),
        })
    return table


def fmt(x):
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.1f}" if abs(x) >= 10 else f"{x:.3f}"
    return str(x)


def markdown(table, args):
    cols = list(table[0])
    instance = (f"random_momdp(S={args.states}, A={args.actions}, d={args.d}, gamma=0.9)" if args.instance == "random"
                else f"many_policies({args.d}, n_arms=64)")
    lines = [
        f"eps = {args.eps}, delta = {args.delta}; {instance}; suboptimal: worst policy within eta = {ETA}; learned: n samples per "
        f"state-action pair, {args.rollouts} roll-outs per estimate.  `worst_true`: the largest true violation "
        f"max_w (1-eps) OPT(w) - delta - max_j w·v_j over the runs (> 0: some portfolio misses its target).",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in table]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="random instances per setting (default 200)")
    parser.add_argument("--quick", action="store_true", help="10 runs per setting")
    parser.add_argument("--out", default="bench-out/real-oracles")
    parser.add_argument("--confidences", type=float, nargs="+", default=[0.8, 0.9, 0.95])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.003, 0.01, 0.03])
    parser.add_argument("--errors", nargs="+", choices=list(ERRORS), default=list(ERRORS))
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--delta", type=float, default=0.02)
    parser.add_argument("--instance", choices=["random", "arc"], default="random",
                        help="random_momdp(S, A, d), or many_policies(d, n_arms=64): a curved front of 64 one-step "
                             "policies, where certificates are tight (its learned oracle is exact up to roll-outs)")
    parser.add_argument("--states", type=int, default=6)
    parser.add_argument("--actions", type=int, default=4)
    parser.add_argument("--d", type=int, default=2)
    parser.add_argument("--learned-samples", type=int, nargs="+", default=[1, 3, 30],
                        help="sampled transitions per (s, a) of the learned oracle (one setting each)")
    parser.add_argument("--rollouts", type=int, default=300, help="roll-outs per value estimate (learned)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    runs = 10 if args.quick else args.runs
    specs = settings(args)
    os.makedirs(args.out, exist_ok=True)

    rows, t0 = [], time.perf_counter()
    for run in range(runs):
        if args.instance == "random":
            mdp = random_momdp(args.states, args.actions, args.d, gamma=0.9, rng=args.seed + run)
        else:
            mdp = many_policies(args.d, n_arms=64, gamma=0.9, rng=args.seed + run)
        front = mdp.reference_front()
        for label, spec in specs:
            r = one_run(build(spec, mdp, run, args), mdp, front, label["confidence"], args)
            rows.append({"key": tuple(label.values()), "run": run, **label, **r})
        md = write(rows, specs, args)  # after every run: an interrupted study keeps what it measured
        print(f"run {run + 1}/{runs} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    print(md)
    print(f"wrote {args.out}/runs.csv, summary.csv, summary.md ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)


def write(rows, specs, args):
    """Write the runs so far and their summary (CSV and Markdown); returns the Markdown."""
    fields = [k for k in rows[0] if k != "key"]
    with open(os.path.join(args.out, "runs.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    table = summarise(rows, specs)
    with open(os.path.join(args.out, "summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    md = markdown(table, args)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(md)
    return md

if __name__ == "__main__":
    main()
