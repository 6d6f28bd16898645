"""``python -m proofs_check [--quick] [--only NAME ...] [--json PATH]``: run the claim checks.

Prints one row per claim (claim, parameters, key evidence, PASS/FAIL, seconds) and exits with
status 0 when every claim passes, 1 when one fails, 2 on a usage error.
"""

import argparse
import json
import sys
import time
import warnings

from . import CHECKS


def _table(rows):
    header = ("claim", "parameters", "key evidence", "result", "s")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths)
    out = [line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*r) for r in rows]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m proofs_check", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small parameters (a few seconds per claim)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(CHECKS), help="run only these claims")
    parser.add_argument("--json", metavar="PATH", help="also write every result (with all evidence) as JSON")
    args = parser.parse_args(argv)

    names = args.only or list(CHECKS)
    rows, results = [], []
    t_all = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # solver chatter must not hide the table
            result = CHECKS[name](quick=args.quick)
        seconds = time.perf_counter() - t0
        results.append(result)
        rows.append(
            (
                result.claim,
                result.parameter_summary(1),
                result.summary(3),
                "PASS" if result.passed else "FAIL",
                f"{seconds:.1f}",
            )
        )
        print(f"{'PASS' if result.passed else 'FAIL'}  {name} ({seconds:.1f} s)", file=sys.stderr, flush=True)
    print(_table(rows))
    n_fail = sum(not r.passed for r in results)
    print(f"\n{len(results) - n_fail}/{len(results)} claims pass ({time.perf_counter() - t_all:.1f} s"
          f"{', quick' if args.quick else ''}).")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([r.to_dict() for r in results], fh, indent=1, default=str)
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
