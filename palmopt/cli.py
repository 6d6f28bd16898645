"""Command-line front end: a thin layer over the public functions, no mathematics.

Exit codes: 0 success, 1 when a result's status is not success, 2 for usage errors.
"""

import argparse
import json
import sys
import time

import numpy as np

from .status import Status


def _cover(args):
    from . import bounds
    from .nets import cover

    t0 = time.perf_counter()
    net = cover(args.d, args.eps, args.delta, kind=args.kind, max_points=args.max_points)
    seconds = time.perf_counter() - t0
    report = {
        "kind": net.kind,
        "d": net.d,
        "eps": net.eps,
        "delta": net.delta,
        "size": len(net),
        "bound": net.bound,
        "lower_bound": bounds.lower_bound(net.d, args.eps, net.delta),
        "seconds": round(seconds, 4),
    }
    if args.out:
        np.savez_compressed(args.out, points=net.points, lower=net.lower, **{k: report[k] for k in ("eps", "delta")})
        report["out"] = args.out
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{net!r}\n  size {len(net):,} (closed-form bound {net.bound:,}; any ({args.eps:g}, {net.delta:g})-"
            f"portfolio needs >= {report['lower_bound']} members)\n  built in {seconds:.3f} s"
            + (f"\n  written to {args.out}" if args.out else "")
        )
    return 0


def _oracle_from(spec):
    from oracles.registry import from_spec

    return from_spec(spec["name"], **spec["args"])


def _run(args):
    import os

    from oracles.registry import parse_args

    from .palm import palm

    spec = {"name": args.oracle, "args": parse_args(args.oracle_arg)}
    oracle = _oracle_from(spec)
    os.makedirs(args.out, exist_ok=True)
    manifest = os.path.join(args.out, "run.json")
    run = {"oracle": spec, "method": "palm", "eps": args.eps, "delta": args.delta, "prune": args.prune}
    if os.path.exists(manifest):
        with open(manifest) as f:
            old = json.load(f)
        if old != run:
            raise ValueError(f"{args.out!r} holds a run with other settings ({old}); use another --out.")
    with open(manifest, "w") as f:
        json.dump(run, f, indent=2)
    executor = args.executor
    if executor == "ray":
        from .executors import RayExecutor

        executor = RayExecutor(address=os.environ.get("RAY_ADDRESS"))
    portfolio = palm(oracle, args.eps, args.delta, prune=args.prune, executor=executor, store=args.out, progress=not args.quiet)
    portfolio.save(os.path.join(args.out, "portfolio"), oracle=oracle)
    report = {
        "run": args.out,
        "size": len(portfolio),
        "status": str(portfolio.status),
        **{k: v for k, v in portfolio.info.items() if "seconds" not in k},
    }
    print(json.dumps(report) if args.json else f"{portfolio!r}\n  " + "\n  ".join(f"{k}: {v}" for k, v in report.items()))
    return 0 if portfolio.status == Status.SUCCESS else 1


def _certify(args):
    import os

    from .certify import certify
    from .portfolio import Portfolio

    with open(os.path.join(args.run_dir, "run.json")) as f:
        run = json.load(f)
    oracle = _oracle_from(run["oracle"])
    portfolio = Portfolio.load(os.path.join(args.run_dir, "portfolio"), oracle=oracle)
    cert = certify(portfolio, oracle, args.eps, args.delta)  # default: the portfolio's own target
    if args.json:
        print(json.dumps(cert.to_dict()))
    else:
        print(f"{portfolio!r}\n{cert!r}\n  worst weight: {np.round(cert.worst_weight, 4).tolist()}")
    return 0 if cert.certified else 1


def _demo(args):
    from .demo import run_demo

    return run_demo(out=args.out, json_output=args.json)


def build_parser():
    parser = argparse.ArgumentParser(prog="palmopt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("cover", help="build an ε-net of the simplex and report its size")
    p.add_argument("--d", type=int, required=True, help="number of objectives")
    p.add_argument("--eps", type=float, required=True, help="multiplicative tolerance in (0, 1)")
    p.add_argument("--delta", type=float, default=None, help="additive tolerance in (0, 1) (default: eps)")
    p.add_argument("--kind", choices=["palm", "additive"], default="palm")
    p.add_argument("--max-points", type=int, default=10_000_000)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", help="write the net to this .npz file")
    p.set_defaults(func=_cover)

    p = sub.add_parser("run", help="build a PALM portfolio (resumable: rerun the same command)")
    p.add_argument("--oracle", required=True, help="a registered oracle (demo, random, many-policies) or module:factory")
    p.add_argument("--oracle-arg", action="append", metavar="KEY=VALUE", help="argument for the oracle factory")
    p.add_argument("--eps", type=float, required=True)
    p.add_argument("--delta", type=float, default=None)
    p.add_argument("--prune", choices=["greedy", "exact", "none"], default="greedy")
    p.add_argument("--executor", choices=["serial", "thread", "process", "ray"], default="serial",
                   help="where oracle calls run (ray: the local or RAY_ADDRESS cluster, extra `ray`)")
    p.add_argument("--out", required=True, help="run directory (store, manifest, portfolio)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)

    p = sub.add_parser("certify", help="certify a run's portfolio against the oracle's exact front")
    p.add_argument("run_dir")
    p.add_argument("--eps", type=float, default=None, help="default: the portfolio's own eps")
    p.add_argument("--delta", type=float, default=None, help="default: the portfolio's own delta (eps if --eps is given)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_certify)

    p = sub.add_parser("demo", help="the main job on the embedded default instance")
    p.add_argument("--out", default="palmopt-demo", help="output directory (default: palmopt-demo)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as exc:
        print(f"palmopt {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
