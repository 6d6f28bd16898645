"""Command-line front end: a thin layer over the public functions, no mathematics.

Exit codes: 0 success, 1 when a result's status is not success, 2 for usage errors.
"""

import argparse
import json
import sys
import time

import numpy as np


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
