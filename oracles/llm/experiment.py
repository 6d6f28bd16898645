r"""The paper's LLM experiments as runnable kits: ``run(config, smoke=..., out=...)``.

A TOML file (``examples/configs/*.toml``) names the base model, the prompts, the ``d`` rewards,
the GRPO settings and the methods to compare; :func:`run` builds one
:class:`~oracles.llm.GRPOOracle` and runs every method against it:

============  ===============================================================================
``adaptive``  :func:`palmopt.adaptive` (certified corner-weight search)
``palm``      :func:`palmopt.palm` with ``lazy=True`` (the PALM net, calls only where needed)
``uniform``   :func:`palmopt.baselines.uniform`, ``k`` evenly spread weights
``random``    :func:`palmopt.baselines.random`, ``k`` random weights
``soups``     rewarded soups: the ``d`` specialists' LoRA adapters summed with the user's weights
              (``peft`` ``add_weighted_adapter(combination_type="cat")``, i.e. the weight-space
              interpolation ``Σ_i w_i ΔW_i``) at ``k`` evenly spread weights; ``d`` training calls
``mix``       decoding-time mixing: the ``d`` specialists' adapters on one base model, sampled
              from ``π_w ∝ exp(Σ_i w_i log π_i / T)`` at ``k`` evenly spread weights
              (:mod:`oracles.llm.mixing`); ``d`` training calls
============  ===============================================================================

``k`` is ``[experiment] k``, else the size of the adaptive portfolio (equal-size baselines, as
in the PALM paper).  It writes ``out/report.json`` (one row per method: ``method``,
``oracle_calls``, ``size``, ``device_seconds``, ``tokens_generated``, ``certificate`` with its
assumptions) and ``out/report.md`` (the same as a Markdown table).

Smoke runs
----------
``smoke=True`` goes through the same code with small stand-ins: the base model becomes a tiny
random model of the *same family* built from a config (nothing is downloaded), the data the
small prompt set shipped in ``examples/data/`` (records in the source dataset's own format,
read by the same extraction), each reward model a tiny random sequence classifier (loaded
lazily by :class:`~oracles.llm.rewards.LazyClassifierReward` like a real one, and calibrated
on base-policy samples like a real one), and ``[smoke.*]`` tables override the settings
(fewer steps, looser targets).  A smoke run checks the plumbing, not the science.

Resuming
--------
Everything is persisted as it is produced: each GRPO call in ``out/oracle`` (see
:class:`~oracles.llm.GRPOOracle`), each method's results in palmopt's run store
(``out/stores/<method>``), the reward calibration in ``out/calibration.json``, and each finished
method in ``out/methods/<method>.json``.  Rerunning the same command after a crash (even
``SIGKILL``) repeats at most the call that was in flight.

Where the calls run
-------------------
``run(..., executor="ray")`` (``palmopt experiment CONFIG --executor ray``) runs the oracle
calls as Ray tasks, on a local Ray instance or a cluster (``ray_address``), each reserving
``gpus_per_call`` GPUs (default ``[grpo] processes`` on a machine with CUDA, else 0):
several at once when a method asks for several weights (``[experiment] batch`` weights per
round of ``adaptive``; the ``k`` weights of ``uniform`` and ``random``; the ``d`` specialists
of ``soups`` and ``mix``).  Lazy PALM asks for one weight at a time, and the soups' and mixes'
evaluations run in this process.  The workers write into ``out`` (the oracle's calls, the
call logs ``out/methods/<method>.calls.jsonl``), which on a cluster must be a filesystem
shared by every node.  The executor is how to run, not what: results and resume keys do not
depend on it, so a run started on Ray can be resumed serially and the other way round.

Configs are checked strictly before anything is trained: an unknown key, a missing field or a
value of the wrong type raises one ``ValueError`` naming the key and the file.
"""

import functools
import json
import math
import os
import socket
import time

import numpy as np

from .experiment_config import METHODS, load_config
from .experiment_inputs import build_rewards, build_rows, calibrate
from .mixing import _mix_config, mix_portfolio
from .smoke import smoke_words, tiny_causal_lm, tiny_tokenizer
from .soups import soup_portfolio

__all__ = ["METHODS", "load_config", "run"]


# -- the oracle -------------------------------------------------------------------------------


def _grpo_settings(spec, smoke):
    import torch

    table = dict(spec["grpo"])
    if smoke:
        table.update(spec.get("smoke", {}).get("grpo", {}))
        if not torch.cuda.is_available():
            table.setdefault("num_threads", 1)  # tiny models run faster on one thread
            table["bf16"] = False
            table["model_dtype"] = None
    return table


def build_oracle(spec, smoke, out, path=None):
    """``(oracle, info)``: the GRPO oracle of the experiment (rewards calibrated, nothing trained)."""
    from .config import GRPOOracleConfig
    from .grpo import GRPOOracle
    from .hf import load_tokenizer, with_pad_token

    train, held_out = build_rows(spec, smoke)
    model = spec["model"]
    cfg = GRPOOracleConfig.from_dict(_grpo_settings(spec, smoke))
    words = None
    if smoke:
        words = smoke_words(train + held_out)
        tokenizer = tiny_tokenizer(words)
        base = functools.partial(tiny_causal_lm, model["family"], len(tokenizer), spec["experiment"].get("seed", 0))
        model_name = f"tiny-random-{model['family']}(vocab={len(tokenizer)}) standing in for {model['name']}"
    else:
        base, model_name = model["name"], None
        tokenizer = load_tokenizer(None, base)
    tokenizer = with_pad_token(tokenizer)
    rewards = build_rewards(spec, smoke, words)
    os.makedirs(out, exist_ok=True)
    rewards = calibrate(rewards, spec, base, tokenizer, train, cfg, os.path.join(out, "calibration.json"))
    error = spec["experiment"].get("error")
    oracle = GRPOOracle(
        base,
        rewards,
        train,
        held_out,
        os.path.join(out, "oracle"),
        tokenizer=tokenizer,
        config=cfg,
        model_name=model_name,
        error=None if error is None else tuple(error),
        # a call on several processes rebuilds the oracle from the config file in each of them
        rebuild=None if path is None or not os.path.isfile(path) else ("experiment", path, bool(smoke), out),
    )
    info = {"model": model_name or model["name"], "n_train": len(train), "n_eval": len(held_out)}
    return oracle, info


# -- methods ----------------------------------------------------------------------------------


class _Recorded:
    """An oracle that appends every call it answers to a JSON-lines log (the weight, the policy,
    and the host and process that made the call), so a method's cost survives a crash;
    everything else is the oracle's own (same fingerprint).

    It travels to executor workers (a Ray task unpickles it) and appends to the log from there:
    one ``write`` of one line per call in append mode, so concurrent workers do not interleave
    lines on a local or POSIX shared filesystem (a line cut by a kill is skipped when read).
    """

    def __init__(self, oracle, log_path):
        self._oracle = oracle
        self._log = log_path

    def __getattr__(self, name):
        if name in ("_oracle", "_log"):  # not set yet (unpickling looks up __setstate__ first)
            raise AttributeError(name)
        return getattr(self._oracle, name)

    def __call__(self, w):
        sol = self._oracle(w)
        line = {"w": np.asarray(w, float).tolist(), "policy": str(sol.policy)}
        line.update(host=socket.gethostname(), pid=os.getpid())
        with open(self._log, "a") as f:
            f.write(json.dumps(line) + "\n")
        return sol


def _logged_calls(log_path):
    if not os.path.isfile(log_path):
        return {}
    out = {}
    with open(log_path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:  # a line cut by a kill
                continue
            out[tuple(np.round(rec["w"], 9))] = rec["policy"]
    return out


def _call_costs(oracle, policies):
    """Summed cost of the calls that produced ``policies`` (adapter directories), from their records."""
    by_policy = {os.path.abspath(str(s.policy)): s for _, s in oracle.history()}
    seconds, tokens, device = 0.0, 0, set()
    for p in policies:
        s = by_policy.get(os.path.abspath(str(p)))
        if s is None:
            continue
        cost = s.info.get("cost", {})
        seconds += float(cost.get("seconds", 0.0))
        tokens += int(cost.get("tokens_generated", 0))
        if cost.get("device"):
            device.add(cost["device"])
    return seconds, tokens, sorted(device)


def _cert_dict(cert, extra_assumptions):
    if cert is None:
        return None
    d = {
        "kind": cert.kind,
        "holds": bool(cert.holds),
        "eps": float(cert.eps),
        "delta": float(cert.delta),
        "eps_star": float(cert.eps_star),
        "delta_star": float(cert.delta_star),
        "violation": float(cert.violation),
        "status": str(getattr(cert.status, "value", cert.status)),
        "confidence": float(getattr(cert, "confidence", 1.0)),
    }
    assumptions = dict(getattr(cert, "assumptions", {}) or {})
    assumptions.update(extra_assumptions)
    d["assumptions"] = json.loads(json.dumps(assumptions, default=str))
    return d


def _oracle_assumption(oracle):
    if oracle.error is None:
        return "undeclared (RLHF gives no bound): certified relative to the oracle's answers, not to the true optimum"
    return f"declared (eta_mult, eta_add) = {tuple(oracle.error)}"


def _prefetch_specialists(rec, executor):
    """The ``d`` specialists' calls (the unit weights) through ``executor``, in parallel; soups and
    mix then find them in the oracle's run directory."""
    from palmopt.executors import run_calls
    from palmopt.oracle import checked

    run_calls(checked(rec), np.eye(rec.d), executor=executor, progress=False, desc="specialists")


def _run_method(method, oracle, spec_exp, k, out, executor=None):
    import palmopt

    stores = os.path.join(out, "stores")
    os.makedirs(stores, exist_ok=True)
    log = os.path.join(out, "methods", f"{method}.calls.jsonl")
    rec = _Recorded(oracle, log)
    store = os.path.join(stores, method)
    eps, delta = spec_exp["eps"], spec_exp["delta"]
    seed = spec_exp.get("seed", 0)
    t0 = time.perf_counter()
    extra_seconds, extra_tokens, specialists = 0.0, 0, None
    budget, batch = spec_exp.get("max_calls"), spec_exp.get("batch", 1)
    if method == "adaptive":
        p = palmopt.adaptive(
            rec, eps, delta, batch=batch, max_calls=budget, executor=executor, store=store, progress=False
        )
    elif method == "palm":
        p = palmopt.palm(rec, eps, delta, lazy=True, max_calls=budget, executor=executor, store=store, progress=False)
    elif method == "uniform":
        p = palmopt.baselines.uniform(rec, k, executor=executor, store=store)
    elif method == "random":
        p = palmopt.baselines.random(rec, k, rng=seed, executor=executor, store=store)
    elif method == "soups":
        if executor is not None:
            _prefetch_specialists(rec, executor)
        p, specialists, extra_seconds, extra_tokens = soup_portfolio(rec, k, out)
    else:
        if executor is not None:
            _mix_config(oracle)  # its refusal comes before any training, as without an executor
            _prefetch_specialists(rec, executor)
        p, specialists, extra_seconds, extra_tokens = mix_portfolio(rec, k, out)
    wall = time.perf_counter() - t0
    called = set(_logged_calls(log).values())
    if method not in ("soups", "mix"):  # their members are no oracle calls (the specialists are added below)
        called |= {str(x) for x in p.policies}
    if specialists:
        called |= set(specialists)
    seconds, tokens, devices = _call_costs(oracle, called)
    stated = dict(getattr(p.certificate, "assumptions", {}) or {})
    own = _cert_dict(p.certificate, {} if "oracle error" in stated else {"oracle_error": _oracle_assumption(oracle)})
    return {
        "method": method,
        "oracle_calls": int(p.n_oracle_calls),
        "size": len(p),
        "device_seconds": round(seconds + extra_seconds, 3),
        "tokens_generated": int(tokens + extra_tokens),
        "devices": devices,
        "wall_seconds": round(wall, 3),
        "status": str(getattr(p.status, "value", p.status)),
        "weights": np.round(p.weights, 6).tolist(),
        "values": np.round(p.values, 6).tolist(),
        "own_certificate": own,
    }


# -- the report ---------------------------------------------------------------------------------


def _empirical_front(oracle, rows):
    V = [s.values for _, s in oracle.history()]
    for r in rows:
        V.extend(np.asarray(r["values"]))
    return np.unique(np.round(np.array(V, dtype=float), 12), axis=0)


def _finish_rows(oracle, rows, eps, delta):
    """Each row's ``certificate``: its own (adaptive, palm) or, for the baselines, ``palmopt.certify``
    against the empirical front of every policy evaluated in the experiment; ``empirical`` for all."""
    import palmopt

    front = _empirical_front(oracle, rows)
    emp_assumptions = {
        "reference": f"the empirical front: the {len(front)} distinct value vectors of every policy evaluated in "
        f"this experiment (all methods); gaps to the best policies found, not to the true optimum",
        "oracle_error": _oracle_assumption(oracle),
        "values": "held-out estimates, no noise allowance",
    }
    for r in rows:
        cert = palmopt.certify(np.array(r["values"]), front, eps, delta)
        emp = _cert_dict(cert, emp_assumptions)
        emp["kind"] = "empirical"
        r["empirical"] = emp
        r["certificate"] = r["own_certificate"] or emp
        if r["method"] == "palm" and r["own_certificate"] is None:
            own = dict(emp, kind="palm (proof) + empirical gaps", holds=r["status"] == "success")
            own["assumptions"] = dict(
                emp["assumptions"],
                guarantee="PALM's net-and-cover proof: (eps, delta) for an exact oracle; the gaps shown are to the "
                "empirical front",
            )
            r["certificate"] = own
    return rows


def markdown(rows, title):
    """The report as a Markdown table."""
    head = (
        "| method | oracle calls | size | device s | tokens | certificate | holds | ε* | δ* | δ* (empirical front) |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['method']} | {r['oracle_calls']} | {r['size']} | {r['device_seconds']:.1f} | {r['tokens_generated']} | "
        f"{r['certificate']['kind']} | {r['certificate']['holds']} | {r['certificate']['eps_star']:.3f} | "
        f"{r['certificate']['delta_star']:.3f} | {r['empirical']['delta_star']:.3f} |"
        for r in rows
    ]
    return f"### {title}\n\n" + head + "\n".join(lines) + "\n"


def _check_executor(executor, ray_address, gpus_per_call):
    """``run``'s executor arguments, checked before anything is built."""
    if isinstance(executor, str) and executor not in ("serial", "ray"):
        raise ValueError(f"`executor` must be 'serial' or 'ray' when given by name; got {executor!r}.")
    if not (executor is None or isinstance(executor, str) or callable(getattr(executor, "submit", None))):
        raise TypeError(f"`executor` must be None, 'serial', 'ray' or an executor (with submit); got {executor!r}.")
    if executor != "ray" and (ray_address is not None or gpus_per_call is not None):
        given = [n for n, v in (("ray_address", ray_address), ("gpus_per_call", gpus_per_call)) if v is not None]
        verb = "needs" if len(given) == 1 else "need"
        raise ValueError(f"`{'` and `'.join(given)}` {verb} executor='ray'; got executor={executor!r}.")
    if ray_address is not None and (not isinstance(ray_address, str) or not ray_address.strip()):
        raise ValueError(f"`ray_address` must be a non-empty string (e.g. 'auto'); got {ray_address!r}.")
    if gpus_per_call is not None:
        if isinstance(gpus_per_call, bool) or not isinstance(gpus_per_call, (int, float)):
            raise TypeError(f"`gpus_per_call` must be a number >= 0; got {gpus_per_call!r}.")
        if not (math.isfinite(gpus_per_call) and gpus_per_call >= 0):
            raise ValueError(f"`gpus_per_call` must be a finite number >= 0; got {gpus_per_call!r}.")


def _ray_executor(grpo, address, gpus_per_call):
    """The :class:`~palmopt.executors.RayExecutor` of ``executor="ray"``: one task per oracle call,
    reserving ``gpus_per_call`` GPUs (default: ``[grpo] processes`` where CUDA is available and
    ``use_cpu`` is off, else 0) and one CPU per training process."""
    import torch

    from palmopt.executors import RayExecutor

    processes = grpo.get("processes", 1)
    if gpus_per_call is None:
        gpus_per_call = processes if torch.cuda.is_available() and not grpo.get("use_cpu", False) else 0
    elif 0 < gpus_per_call < processes:
        raise ValueError(
            f"`gpus_per_call` ({gpus_per_call:g}) is below [grpo] processes ({processes}): a call launched on "
            f"{processes} processes needs {processes} GPUs of its own; give at least {processes} (or 0 to let "
            "every call see all devices)."
        )
    return RayExecutor(num_cpus=processes, num_gpus=gpus_per_call, address=address)


def run(config, *, smoke=False, out=None, progress=False, executor=None, ray_address=None, gpus_per_call=None):
    """Run an experiment config; write ``out/report.json`` and ``out/report.md``; return the report.

    Parameters
    ----------
    config : str or path (a TOML file), or a mapping of its contents
    smoke : bool
        Tiny random stand-ins for the model and reward models, the shipped prompt set, the
        ``[smoke.*]`` settings: the same code path in minutes on a CPU.
    out : str or path, optional
        The run directory (default ``runs/<name>`` or ``runs/<name>-smoke``); a rerun resumes.
        With Ray workers on several machines it must be on a filesystem that every node and
        the driver share (the workers write the oracle's calls and the call logs there).
    progress : bool
        Print a line as each method starts.
    executor : None, "serial", "ray" or an executor object, default None
        Where the oracle calls of ``adaptive``, ``palm``, ``uniform``, ``random`` and the
        specialists of ``soups`` and ``mix`` run.  ``None`` or ``"serial"``: one at a time in
        this process.  ``"ray"``: as Ray tasks, a :class:`~palmopt.executors.RayExecutor`
        made here and shut down at the end, also after an error.  An executor object
        (anything ``palmopt.adaptive``'s ``executor=`` accepts) is used as given and left
        running.  How to run, not what: no result and no resume key depends on it; calls run
        in parallel only as far as a method asks for several weights at once
        (``[experiment] batch`` for ``adaptive``; all ``k`` for ``uniform`` and ``random``).
    ray_address : str, optional
        With ``executor="ray"``: the cluster to connect to (``"auto"``,
        ``"ray://HEAD:10001"``); default a local Ray instance, or the one ``RAY_ADDRESS`` names.
    gpus_per_call : float >= 0, optional
        With ``executor="ray"``: GPUs reserved for each call.  Default: ``[grpo] processes``
        where this machine has CUDA (and ``use_cpu`` is off), else 0; on a cluster whose
        driver has no GPU, give it.

    Raises
    ------
    ValueError
        A bad config (before anything is trained), naming the key and the file; executor
        arguments that do not fit together.
    TypeError
        An ``executor`` that is not one of the above.
    ImportError
        ``executor="ray"`` without Ray installed.
    """
    spec, path = load_config(config)
    _check_executor(executor, ray_address, gpus_per_call)
    exp = dict(spec["experiment"])
    if smoke:
        exp.update(spec.get("smoke", {}).get("experiment", {}))
    owned = None
    if executor == "ray":
        executor = owned = _ray_executor(_grpo_settings(spec, smoke), ray_address, gpus_per_call)
    elif executor == "serial":
        executor = None
    try:
        return _run(spec, path, exp, smoke, out, progress, executor)
    finally:
        if owned is not None:
            owned.shutdown(wait=False, cancel_futures=True)


def _run(spec, path, exp, smoke, out, progress, executor):
    out = os.path.abspath(os.fspath(out or os.path.join("runs", exp["name"] + ("-smoke" if smoke else ""))))
    os.makedirs(os.path.join(out, "methods"), exist_ok=True)
    t0 = time.perf_counter()
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        oracle, info = build_oracle(spec, smoke, out, path=path)
        rows, k = [], exp.get("k")
        for method in sorted(exp["methods"], key=METHODS.index):  # adaptive first: its size is the default k
            done = os.path.join(out, "methods", f"{method}.json")
            key = {"fingerprint": oracle.fingerprint(), "experiment": exp, "k": k}
            row = None
            if os.path.isfile(done):
                with open(done) as f:
                    saved = json.load(f)
                if saved.get("key") == json.loads(json.dumps(key)):
                    row = saved["row"]
            if row is None:
                if progress:
                    print(f"[{exp['name']}] {method} ...", flush=True)
                row = _run_method(method, oracle, exp, k or _default_k(rows, oracle), out, executor)
                with open(done + ".tmp", "w") as f:
                    json.dump({"key": key, "row": row}, f, indent=1)
                os.replace(done + ".tmp", done)
            rows.append(row)
            if method == "adaptive" and k is None:
                k = row["size"]
        rows = _finish_rows(oracle, rows, exp["eps"], exp["delta"])
        clipped = {
            r.name: {"clipped": r.fn.n_clipped, "scored": r.fn.n_scored}
            for r in oracle.rewards
            if hasattr(r.fn, "n_clipped")
        }
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    title = f"{exp['name']}{' (smoke)' if smoke else ''}: eps={exp['eps']}, delta={exp['delta']}, d={oracle.d}"
    report = {
        "experiment": exp["name"],
        "config": path,
        "smoke": bool(smoke),
        "d": oracle.d,
        "rewards": list(oracle.reward_names),
        "eps": exp["eps"],
        "delta": exp["delta"],
        "k": k,
        **info,
        "oracle_fingerprint": oracle.fingerprint(),
        "oracle_error": None if oracle.error is None else list(oracle.error),
        "reward_clipping_this_process": clipped,
        "grpo": oracle.config.to_dict(),
        "executor": "serial" if executor is None else repr(executor),
        "wall_seconds": round(time.perf_counter() - t0, 3),
        "rows": rows,
    }
    report["markdown"] = markdown(rows, title)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(report["markdown"])
    return report


def _default_k(rows, oracle):
    return max(oracle.d, 2)

