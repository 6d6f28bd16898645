"""Command-line front end: a thin layer over the public functions, no mathematics.

Exit codes: 0 success; 1 when a result's status is not success, or on a run-time error (an
oracle failed, a file or the run store cannot be used, out of memory); 2 for usage errors
(bad arguments, a run directory holding another run); 130 after Ctrl-C (every finished
oracle call is stored: rerun the same command to resume).  Errors print one line; ``--debug``
shows the traceback instead.
"""

import argparse
import importlib
import json
import math
import os
import sqlite3
import sys
import time

import numpy as np

from .status import Status


class UsageError(ValueError):
    """A command-line argument or a run directory that cannot be used as given."""


def _positive_int(text):
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {value}")
    return value


def _real(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite; got {text!r}")
    return value


def _seconds(text):
    value = _real(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds; got {text!r}")
    return value


def _gpus(text):
    value = _real(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 GPUs; got {text!r}")
    return value


def _check_new_file(path, what):
    """A file this command will write: its directory must exist and it must not be a directory."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{what} {path!r} is a directory, not a file.")
    if not os.path.isdir(parent):
        raise UsageError(f"{what} {path!r}: the directory {parent!r} does not exist (or is not a directory).")


def _check_dir(path, what):
    """A directory this command will create or use: no component may be a file."""
    probe = os.path.abspath(path)
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if os.path.exists(probe) and not os.path.isdir(probe):
        raise UsageError(f"{what} {path!r} cannot be created: {probe!r} is a file, not a directory.")


# -- cover ----------------------------------------------------------------------------------------


def _cover(args):
    from . import bounds
    from .nets import cover
    from .validation import check_tolerances

    eps, delta = check_tolerances(args.eps, args.delta)
    if args.out:
        _check_new_file(args.out, "--out")
    t0 = time.perf_counter()
    net = cover(args.d, eps, delta, kind=args.kind, max_points=args.max_points)
    seconds = time.perf_counter() - t0
    try:
        lower = bounds.lower_bound(net.d, eps, net.delta)
    except ValueError:
        lower = None
    report = {
        "kind": net.kind,
        "d": net.d,
        "eps": net.eps,
        "delta": net.delta,
        "size": len(net),
        "bound": net.bound,
        "lower_bound": lower,
        "seconds": round(seconds, 4),
    }
    if args.out:
        np.savez_compressed(args.out, points=net.points, lower=net.lower, **{k: report[k] for k in ("eps", "delta")})
        report["out"] = args.out
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{net!r}\n  size {len(net):,} (closed-form bound {net.bound:,}; any ({eps:g}, {net.delta:g})-"
            f"portfolio needs >= {lower} members)\n  built in {seconds:.3f} s"
            + (f"\n  written to {args.out}" if args.out else "")
        )
    return 0


# -- run ------------------------------------------------------------------------------------------


def _store_has_results(run_dir):
    """Whether ``run_dir`` holds a store with at least one result (unreadable: assume it does)."""
    from .store import STORE_FILE

    path = os.path.join(run_dir, STORE_FILE)
    if not os.path.exists(path):
        return False
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0] > 0
        finally:
            db.close()
    except sqlite3.Error:
        return True


def _read_manifest(path):
    try:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise UsageError(f"the run manifest {path!r} is not valid JSON ({exc}); move it away or use another run directory.") from None
    if not isinstance(run, dict):
        raise UsageError(f"the run manifest {path!r} is not a JSON object; move it away or use another run directory.")
    return run


def _write_json_atomic(path, obj):
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _check_executor_args(args):
    kind = args.executor
    if args.timeout is not None and kind in ("thread", "ray"):
        running = "thread" if kind == "thread" else "Ray task"
        raise UsageError(
            f"--timeout cannot be enforced with --executor {kind} (palmopt cannot stop a running {running}); "
            f"use --executor process or serial."
        )
    if args.workers is not None and kind not in ("thread", "process"):
        raise UsageError(f"--workers applies to --executor thread or process, not {kind}.")


def _make_executor(args):
    from .executors import PoolExecutor, SerialExecutor

    kind, timeout = args.executor, args.timeout
    _check_executor_args(args)
    if kind == "serial":
        return SerialExecutor(timeout=timeout)
    if kind in ("thread", "process"):
        return PoolExecutor(kind, max_workers=args.workers, timeout=timeout)
    from .executors import RayExecutor

    return RayExecutor(address=os.environ.get("RAY_ADDRESS"))


def _remove_if_only_lock(path):
    from .store import STORE_FILE

    lock = os.path.join(path, STORE_FILE + ".lock")
    try:
        if set(os.listdir(path)) <= {os.path.basename(lock)}:
            if os.path.exists(lock):
                os.remove(lock)
            os.rmdir(path)
    except OSError:
        pass


def _run(args):
    from oracles.registry import from_spec, parse_args

    from .palm import palm
    from .store import RunLock
    from .validation import check_tolerances

    # 1. every argument, before anything is written
    eps, delta = check_tolerances(args.eps, args.delta)
    _check_executor_args(args)
    _check_dir(args.out, "--out")
    spec = {"name": args.oracle, "args": parse_args(args.oracle_arg, args.oracle)}
    oracle = from_spec(spec["name"], **spec["args"])
    run = {"oracle": spec, "method": "palm", "eps": eps, "delta": delta, "prune": args.prune}

    # 2. the run directory, locked against a second run into it
    created_dir = not os.path.exists(args.out)
    os.makedirs(args.out, exist_ok=True)
    refused = False
    try:
        with RunLock(args.out, wait=bool(args.wait)):
            manifest = os.path.join(args.out, "run.json")
            created_manifest = not os.path.exists(manifest)
            if not created_manifest:
                old = _read_manifest(manifest)
                if old != run and _store_has_results(args.out):
                    raise UsageError(
                        f"{args.out!r} holds a run with other settings ({old}); use another --out, or rerun with "
                        f"those settings to resume it."
                    )
            _write_json_atomic(manifest, run)
            executor = _make_executor(args)
            try:
                portfolio = palm(oracle, eps, delta, prune=args.prune, executor=executor, store=args.out,
                                 progress=not args.quiet)  # fmt: skip
            except (ValueError, TypeError):  # refused before any result (e.g. the net is too large)
                if created_manifest and not _store_has_results(args.out):
                    os.remove(manifest)
                    refused = True
                raise
            except BaseException:
                if hasattr(executor, "terminate"):
                    executor.terminate()  # a process pool's running calls are stopped, not awaited
                raise
            finally:
                executor.shutdown(wait=False, cancel_futures=True)
            portfolio.save(os.path.join(args.out, "portfolio"), oracle=oracle)
    finally:
        if refused and created_dir:  # leave no trace of a refused run
            _remove_if_only_lock(args.out)
    report = {
        "run": args.out,
        "size": len(portfolio),
        "status": str(portfolio.status),
        **{k: v for k, v in portfolio.info.items() if "seconds" not in k},
    }
    print(json.dumps(report, default=str) if args.json else f"{portfolio!r}\n  " + "\n  ".join(f"{k}: {v}" for k, v in report.items()))
    return 0 if portfolio.status == Status.SUCCESS else 1


# -- certify --------------------------------------------------------------------------------------


def _certify(args):
    from oracles.registry import check_args, from_spec, is_registered

    from .certify import certify
    from .portfolio import Portfolio

    if not os.path.isdir(args.run_dir):
        raise UsageError(f"no run directory {args.run_dir!r}.")
    manifest = os.path.join(args.run_dir, "run.json")
    if not os.path.isfile(manifest):
        raise UsageError(f"{args.run_dir!r} holds no run (missing run.json).")
    run = _read_manifest(manifest)
    spec = run.get("oracle")
    if not (isinstance(spec, dict) and isinstance(spec.get("name"), str) and isinstance(spec.get("args", {}), dict)):
        raise UsageError(f"the run manifest {manifest!r} has no valid 'oracle' entry ({{'name': str, 'args': {{...}}}}).")
    name, oracle_args = spec["name"], spec.get("args", {})
    if args.oracle is not None and args.oracle != name:
        raise UsageError(f"the run in {args.run_dir!r} was made by oracle {name!r}, not --oracle {args.oracle!r}.")
    if not (is_registered(name) or args.oracle == name or args.trust_run_config):
        raise UsageError(
            f"{manifest!r} names oracle {name!r}, which is not a registered oracle; palmopt never imports code "
            f"because a file names it. Name it yourself: palmopt certify {args.run_dir} --oracle {name} "
            f"(or pass --trust-run-config if you trust this run directory)."
        )
    oracle = from_spec(name, **check_args(name, oracle_args))
    portfolio = Portfolio.load(os.path.join(args.run_dir, "portfolio"), oracle=oracle)
    cert = certify(portfolio, oracle, args.eps, args.delta)  # default: the portfolio's own target
    if args.json:
        print(json.dumps(cert.to_dict(), default=str))
    else:
        print(f"{portfolio!r}\n{cert.describe()}\n  worst weight: {np.round(cert.worst_weight, 4).tolist()}")
    return 0 if cert.certified else 1


# -- demo, experiment -----------------------------------------------------------------------------


def _demo(args):
    from .demo import run_demo

    _check_dir(args.out, "--out")
    return run_demo(out=args.out, json_output=args.json)


class _Unavailable(RuntimeError):
    pass


def _experiment_executor(args):
    """The executor keyword arguments of ``run`` (none for the default, serial), checked first."""
    if args.executor != "ray":
        given = [flag for flag, value in (("--ray-address", args.ray_address), ("--gpus-per-call", args.gpus_per_call))
                 if value is not None]  # fmt: skip
        if given:
            raise UsageError(f"{' and '.join(given)} need{'s' if len(given) == 1 else ''} --executor ray (got --executor {args.executor}).")
        return {}
    kwargs = {"executor": "ray"}
    if args.ray_address is not None:
        if not args.ray_address.strip():
            raise UsageError("--ray-address must name a cluster (e.g. auto, HEAD_IP:6379, ray://HEAD_IP:10001).")
        kwargs["ray_address"] = args.ray_address
    if args.gpus_per_call is not None:
        kwargs["gpus_per_call"] = args.gpus_per_call
    return kwargs


def _experiment(args):
    executor = _experiment_executor(args)
    try:
        module = importlib.import_module("oracles.llm.experiment")
    except ModuleNotFoundError as exc:
        if exc.name in ("oracles.llm.experiment", "oracles.llm", "oracles"):
            raise _Unavailable(
                "the experiment runner (oracles.llm.experiment) is not part of this installation; update palmopt."
            ) from None
        raise _Unavailable(
            f"the experiment runner needs {exc.name!r}, which is not installed: pip install \"palmopt[llm]\"."
        ) from None
    run = getattr(module, "run", None)
    if not callable(run):
        raise _Unavailable("oracles.llm.experiment has no run(config, smoke=..., out=...) function.")
    if args.out is not None:
        _check_dir(args.out, "--out")
    report = run(args.config, smoke=bool(args.smoke), out=args.out, **executor)
    if args.json:
        print(json.dumps(report, default=str))
    elif isinstance(report, dict):
        # the short fields, then the table (the whole report is in out/report.json, or --json)
        short = {k: v for k, v in report.items() if k != "markdown" and not isinstance(v, (dict, list)) or k == "rewards"}
        print("\n".join(f"{k}: {v}" for k, v in short.items()))
        if isinstance(report.get("markdown"), str):
            print("\n" + report["markdown"])
    else:
        print(report)
    status = report.get("status") if isinstance(report, dict) else None
    return 0 if status in (None, "success", Status.SUCCESS) else 1


# -- the parser -----------------------------------------------------------------------------------


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error instead of one line")  # fmt: skip
    parser = argparse.ArgumentParser(prog="palmopt", description=__doc__.splitlines()[0], parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("cover", parents=[common], help="build an ε-net of the simplex and report its size")
    p.add_argument("--d", type=_positive_int, required=True, help="number of objectives")
    p.add_argument("--eps", type=_real, required=True, help="multiplicative tolerance in (0, 1)")
    p.add_argument("--delta", type=_real, default=None, help="additive tolerance in (0, 1) (default: eps)")
    p.add_argument("--kind", choices=["palm", "additive"], default="palm")
    p.add_argument("--max-points", type=_positive_int, default=10_000_000)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", help="write the net to this .npz file")
    p.set_defaults(func=_cover)

    p = sub.add_parser("run", parents=[common], help="build a PALM portfolio (resumable: rerun the same command)")
    p.add_argument("--oracle", required=True, help="a registered oracle (demo, random, many-policies) or module:factory")
    p.add_argument("--oracle-arg", action="append", metavar="KEY=VALUE",
                   help="argument for the oracle factory, parsed by its declared type")  # fmt: skip
    p.add_argument("--eps", type=_real, required=True)
    p.add_argument("--delta", type=_real, default=None)
    p.add_argument("--prune", choices=["greedy", "exact", "none"], default="greedy")
    p.add_argument("--executor", choices=["serial", "thread", "process", "ray"], default="serial",
                   help="where oracle calls run (ray: the local or RAY_ADDRESS cluster, extra `ray`)")  # fmt: skip
    p.add_argument("--workers", type=_positive_int, default=None, help="pool size (thread/process executors)")
    p.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="fail a call that runs longer (serial and process executors only)")  # fmt: skip
    p.add_argument("--wait", action="store_true", help="wait for another run into the same --out to finish")
    p.add_argument("--out", required=True, help="run directory (store, manifest, portfolio)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)

    p = sub.add_parser("certify", parents=[common], help="certify a run's portfolio against the oracle's exact front")
    p.add_argument("run_dir")
    p.add_argument("--eps", type=_real, default=None, help="default: the portfolio's own eps")
    p.add_argument("--delta", type=_real, default=None, help="default: the portfolio's own delta (eps if --eps is given)")
    p.add_argument("--oracle", default=None,
                   help="the run's module:factory oracle, given again (never imported because run.json names it)")  # fmt: skip
    p.add_argument("--trust-run-config", action="store_true",
                   help="import the module:factory that run.json names (only for run directories you trust)")  # fmt: skip
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_certify)

    p = sub.add_parser("demo", parents=[common], help="the main job on the embedded default instance")
    p.add_argument("--out", default="palmopt-demo", help="output directory (default: palmopt-demo)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_demo)

    p = sub.add_parser("experiment", parents=[common], help="run an LLM experiment from a config (extra `llm`)")
    p.add_argument("config", help="the experiment's config file")
    p.add_argument("--smoke", action="store_true", help="a tiny, fast version of the experiment")
    p.add_argument("--out", default=None,
                   help="output directory (default: the config's); shared by all nodes with a Ray cluster")  # fmt: skip
    p.add_argument("--executor", choices=["serial", "ray"], default="serial",
                   help="where oracle calls run: one at a time here (serial), or as Ray tasks (extra `ray`)")  # fmt: skip
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --executor ray: the cluster (auto, ray://HEAD:10001); default a local Ray instance")  # fmt: skip
    p.add_argument("--gpus-per-call", type=_gpus, default=None, metavar="G",
                   help="with --executor ray: GPUs per call (default: [grpo] processes with CUDA, else 0)")  # fmt: skip
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_experiment)
    return parser


#: Errors that mean "the command was used wrongly": exit 2.
_USAGE = (ValueError, TypeError)


def _runtime_errors():
    """Anticipated run-time failures: exit 1 with one line."""
    from .oracle import OracleError
    from .store import StoreError

    return (OracleError, StoreError, OSError, sqlite3.Error, ImportError, MemoryError, _Unavailable)


def _one_line(exc):
    text = str(exc).strip()
    if isinstance(exc, MemoryError):
        text = f"out of memory{': ' + text if text else ''} (use smaller nets: larger eps/delta, or palmopt.adaptive)"
    elif isinstance(exc, OSError) and not text:
        text = type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines) if lines else type(exc).__name__


def _exit_if_threads_linger(code):
    """Exit now if threads (a thread pool's running oracle calls, which cannot be stopped) would
    keep the interpreter alive; the store has committed every finished call by then."""
    import threading

    if any(t.is_alive() and not t.daemon and t is not threading.main_thread() for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    prefix = f"palmopt {args.command}: error:"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        tail = " every finished oracle call is stored; rerun the same command to resume." if args.command == "run" else ""
        print(f"palmopt {args.command}: interrupted.{tail}", file=sys.stderr)
        if argv is None:  # the real command line: do not wait for pool threads still inside an oracle call
            _exit_if_threads_linger(130)
        return 130
    except Exception as exc:
        if debug:
            raise
        from .oracle import OracleError
        from .store import StoreError

        if isinstance(exc, (OracleError, StoreError)):  # RuntimeError/ValueError subclasses: run-time
            print(f"{prefix} {_one_line(exc)}", file=sys.stderr)
            return 1
        if isinstance(exc, _USAGE):
            print(f"{prefix} {_one_line(exc)}", file=sys.stderr)
            return 2
        if isinstance(exc, _runtime_errors()):
            print(f"{prefix} {_one_line(exc)}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
