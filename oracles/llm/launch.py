r"""One :class:`~oracles.llm.GRPOOracle` call on several devices: ``accelerate launch``, rank 0 writes.

With ``config.processes = N > 1``, a call ``oracle(w)`` runs as a subprocess::

    python -m accelerate.commands.launch --multi_gpu --num_processes N --num_machines 1 \
        --mixed_precision no --dynamo_backend no --main_process_port <free port> \
        -m oracles.llm.launch --config CONFIG.toml [--smoke|--no-smoke] --out OUT --seed S \
        --weight '[0.5, 0.5]' --fingerprint '<the oracle's fingerprint>' \
        --tmp <call dir>.tmp-<pid>-<ns> --started <unix time>

(``accelerate launch`` is the same program; the config's ``bf16`` still sets the mixed
precision), in the call's work directory.  Each of the ``N`` processes rebuilds the oracle
from its recipe, checks that its fingerprint is the caller's, and trains: TRL and accelerate
run data-parallel training (DDP), each process sampling and training on
``per_device_train_batch_size`` completions per step.  Only the main process (rank 0) saves the
adapter, evaluates it on the held-out prompts, writes ``solution.json`` and renames the
temporary directory to the call directory; the others write nothing and exit.  Checkpoints
(``checkpoint_steps``) are saved by the main process (each process saves its own random state)
and resumed by all.  The caller waits, keeps the launch's output in the call directory
(``launch.log``) and reads the solution from there; a failed launch raises
:class:`~palmopt.oracle.OracleError` naming the weight, with the end of that output, and keeps the
log in the call's work directory (``<call dir>.partial/launch.log``).

On a machine without CUDA (or with ``use_cpu``) the processes train on the CPU with torch's gloo
backend: ``--multi_gpu`` starts the ``N`` processes (torchrun) and ``ACCELERATE_USE_CPU=true``
makes them CPU processes.  (``accelerate launch --cpu --num_processes N`` would start *one*
process unless run under ``mpirun``.)

The recipe is data, not code: ``("experiment", config_path, smoke, out)``, the arguments of
:func:`oracles.llm.experiment.build_oracle`.  No file or argument names a module or function to
import.
"""

import argparse
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time

__all__ = ["check_rebuild", "command", "launch_call", "main"]

#: Set in the launched processes' environment: there the oracle runs the call itself, so it needs no recipe.
WORKER_ENV = "PALMOPT_LAUNCHED_CALL"

#: Lines of the launch's output quoted by the error of a failed launch.
TAIL_LINES = 40


def check_rebuild(rebuild, processes):
    """The oracle's rebuild recipe, checked: ``None`` or ``("experiment", config_path, smoke, out)``.

    Parameters
    ----------
    rebuild : tuple or None
    processes : int
        ``config.processes``; above 1 a recipe is required (except inside a launched process).

    Returns
    -------
    tuple or None
        ``("experiment", absolute config path, bool, absolute out directory)``.

    Raises
    ------
    ValueError
        No recipe with ``processes > 1``, or a malformed recipe.
    TypeError
        A recipe that is not a tuple or list.
    """
    if rebuild is None:
        if processes > 1 and not os.environ.get(WORKER_ENV):
            raise ValueError(
                f"`processes={processes}` runs each call under `accelerate launch`, whose processes must rebuild "
                "this oracle, and an oracle built in code cannot be rebuilt in another process: build it with "
                "oracles.llm.experiment.build_oracle (a TOML config), or pass "
                "`rebuild=('experiment', config_path, smoke, out)` with the arguments that rebuild it."
            )
        return None
    if not isinstance(rebuild, (tuple, list)):
        raise TypeError(f"`rebuild` must be a tuple ('experiment', config_path, smoke, out); got {rebuild!r}.")
    if len(rebuild) != 4 or rebuild[0] != "experiment":
        raise ValueError(f"`rebuild` must be ('experiment', config_path, smoke, out); got {rebuild!r}.")
    _, config_path, smoke, out = rebuild
    if not isinstance(config_path, (str, os.PathLike)) or not os.path.isfile(config_path):
        raise ValueError(f"`rebuild`'s config_path must be an existing TOML file; got {config_path!r}.")
    if not isinstance(smoke, bool):
        raise TypeError(f"`rebuild`'s smoke must be a bool; got {smoke!r}.")
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"`rebuild`'s out must be a directory path; got {out!r}.")
    return ("experiment", os.path.abspath(os.fspath(config_path)), smoke, os.path.abspath(os.fspath(out)))


def _die_with_parent():
    """Ask Linux to kill this process when its parent dies (a killed caller leaves no training behind)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(oracle, w, tmp, started):
    """The ``accelerate launch`` command line of a call at ``w`` written into ``tmp`` (a list of strings)."""
    _, config_path, smoke, out = oracle.rebuild
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", str(oracle.config.processes), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",  # the config's bf16 still applies (TrainingArguments)
        "--main_process_port", str(_free_port()),
        "-m", "oracles.llm.launch",
        "--config", config_path, "--smoke" if smoke else "--no-smoke", "--out", out,
        "--seed", str(oracle.seed), "--weight", json.dumps([float(x) for x in w]),
        "--fingerprint", oracle.fingerprint(), "--tmp", tmp, "--started", repr(started),
    ]  # fmt: skip


def launch_call(oracle, w, tmp, final):
    """Run the call at ``w`` under ``accelerate launch`` and wait; rank 0 renames ``tmp`` to ``final``.

    The launch's output goes to ``tmp/launch.log`` (``final/launch.log`` once renamed); it runs
    in the call's work directory ``final + ".partial"`` (removed when the call completes), so a
    relative path written by a library lands there, never in the caller's directory.

    Raises
    ------
    OracleError
        The launch exited with a non-zero status, or wrote no solution: the message names the
        weight, the status and the log (kept in ``final + ".partial"``), and quotes its end.
    """
    import torch

    from palmopt.oracle import OracleError

    from .runs import LAUNCH_LOG, PARTIAL, _read_solution

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, **{WORKER_ENV: "1"})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    if oracle.config.use_cpu or not torch.cuda.is_available():
        env["ACCELERATE_USE_CPU"] = "true"
    log = os.path.join(tmp, LAUNCH_LOG)
    with open(log, "w") as f:
        status = subprocess.run(
            command(oracle, w, tmp, time.time()), stdout=f, stderr=subprocess.STDOUT, env=env,
            cwd=final + PARTIAL, preexec_fn=_die_with_parent, check=False,
        ).returncode  # fmt: skip
    record = _read_solution(final)
    if status == 0 and record is not None and record.get("fingerprint") == oracle.fingerprint():
        return
    kept = os.path.join(final + PARTIAL, LAUNCH_LOG)
    moved = log if os.path.exists(log) else os.path.join(final, LAUNCH_LOG)
    os.replace(moved, kept)
    with open(kept, errors="replace") as f:
        tail = "".join(f.readlines()[-TAIL_LINES:])
    what = f"exited with status {status}" if status else "exited with status 0 but wrote no solution"
    raise OracleError(
        f"the launched call ({oracle.config.processes} processes) at w={[float(x) for x in w]} {what}; "
        f"full log: {kept}; its last lines:\n{tail}",
        w,
    )


def _parser():
    p = argparse.ArgumentParser(prog="python -m oracles.llm.launch", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="the experiment's TOML config")
    p.add_argument("--smoke", action=argparse.BooleanOptionalAction, required=True)
    p.add_argument("--out", required=True, help="the experiment's output directory")
    p.add_argument("--seed", type=int, required=True, help="the oracle's training seed")
    p.add_argument("--weight", required=True, help="the call's weight, a JSON list")
    p.add_argument("--fingerprint", required=True, help="the caller's oracle fingerprint (checked)")
    p.add_argument("--tmp", required=True, help="the temporary directory rank 0 writes and renames")
    p.add_argument("--started", type=float, required=True, help="time.time() when the caller started the launch")
    return p


def main(argv=None):
    """One launched process of a call: rebuild the oracle, check its fingerprint, train (all ranks),
    evaluate and write (rank 0).  An error is recorded for torchrun (``record``), so that the
    launch's summary, at the end of its log, quotes it."""
    from torch.distributed.elastic.multiprocessing.errors import record

    record(_main)(argv)


def _main(argv):
    args = _parser().parse_args(argv)
    _die_with_parent()
    import numpy as np
    import torch

    from .experiment import build_oracle, load_config
    from .runs import PARTIAL

    spec, _ = load_config(args.config)
    oracle, _ = build_oracle(spec, args.smoke, args.out)
    if oracle.seed != args.seed:
        oracle = oracle.with_seed(args.seed)
    if oracle.fingerprint() != args.fingerprint:
        raise RuntimeError(
            f"the oracle rebuilt from {args.config} is not the caller's (did the config change?): "
            f"caller {args.fingerprint}, rebuilt {oracle.fingerprint()}"
        )
    w = np.asarray(json.loads(args.weight), dtype=np.float64)
    final = os.path.join(oracle._calls_dir(), oracle._call_tag(w))
    if not os.path.isdir(final + PARTIAL):
        raise RuntimeError(f"no work directory {final + PARTIAL!r}: launch calls through oracle(w)")
    oracle._run_call(w, final, args.tmp, started=args.started)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
