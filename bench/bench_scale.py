"""Scale benchmark (not a test): how palmopt.adaptive and the exact certificate grow with d and front size.

    python bench/bench_scale.py [--quick] [--out bench/results] [--dims 2,3,...,8] [--sizes 300,3000]
                                [--eps 0.1] [--delta 0.0] [--time-limit 120]

Instances: *sphere fronts* (``n`` random points on the positive orthant of the unit sphere, an
argmax oracle ``palmopt.as_oracle(lambda w: V[argmax V@w], d)``) for each ``d`` and ``n``, and
random tabular MOMDPs (``oracles.tabular.instances.random_momdp(5, 3, d)``, 243 deterministic
policies).  Per row: oracle calls, portfolio size, the minimum portfolio size
(:func:`palmopt.minimum.minimum_portfolio`, its bounds when not exact), palmopt's own time in
:func:`palmopt.adaptive` (wall time minus the time inside the oracle), the search it used
(``corners``, or ``sampled`` past ``MAX_CORNERS`` corner weights, d ≳ 9), the share of 20,000
uniform weights where the portfolio misses the target against the true front, and the time of
:func:`palmopt.certify` of the result against the front (the exact whole-simplex check); morl-baselines' ``LinearSupport`` on
the same oracle where it is installed (additive target ``(0, delta + eps)``).  First, the two
per-round costs of the corner-weight search, replayed on the queries of a budgeted run
(``max_calls=--replay-calls``, so that they are measured even where the full run does not
finish; averaged over those rounds): the corner
weights (:func:`~palmopt.certify.corner_weights` from scratch vs
:class:`~palmopt.certify.Corners`, incremental) and the optimistic bound at the round's new
corners (one ``linprog`` each vs :class:`~palmopt.certify.OptimisticBound`, warm-started; at
most 100 corners per round are timed and the time scaled to all of them).  Last, ``certify``
against large sphere fronts (d = 3), the corner path against the plain per-vector LP path
(timed on a 500-vector sub-front and scaled linearly).

Every time is a ratio to a *reference workload* timed in the same run: 300 HiGHS LPs of a
certificate's size (``d = 3``, 20 members: the certificate LP of
:func:`palmopt.certify.max_shortfall`).  Each row runs in a child process with a time limit
(``--time-limit`` seconds); a row that runs out is recorded as "did not finish" with whatever it
had measured.  Writes ``scale.csv``, ``scale.md`` and ``scale.png`` (log scale).
"""

import argparse
import csv
import multiprocessing as mp
import os
import time

import numpy as np

import palmopt
from palmopt.certify import Corners, OptimisticBound, _Envelope, corner_weights, upper_bound_opt


def sphere_front(n, d, rng):
    X = np.abs(rng.standard_normal((n, d)))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def reference_workload():
    """Seconds for 300 certificate LPs (d = 3, 20 members): the unit of every time reported."""
    rng = np.random.default_rng(12345)
    T = sphere_front(300, 3, rng)
    env = _Envelope(T[:20])
    t0 = time.perf_counter()
    for t in T:
        env.shortfall(t, 0.95)
    return time.perf_counter() - t0


class Recorded:
    """An oracle wrapper that counts calls, times them and records (weight, values)."""

    def __init__(self, oracle, send=None):
        self.oracle, self.d = oracle, oracle.d
        self.seconds, self.log, self.send = 0.0, [], send

    def fingerprint(self):
        return self.oracle.fingerprint()

    def __call__(self, w):
        t0 = time.perf_counter()
        out = self.oracle(w)
        self.seconds += time.perf_counter() - t0
        self.log.append((np.array(w, dtype=float), np.array(out.values, dtype=float)))
        if self.send is not None:
            self.send({"calls_so_far": len(self.log)})
        return out


def linear_support(oracle, delta):
    """morl-baselines' OLS (LinearSupport) with the same oracle: (calls, size) or (None, reason)."""
    try:
        from morl_baselines.multi_policy.linear_support.linear_support import LinearSupport
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        return None, f"not installed ({type(exc).__name__})"
    ls = LinearSupport(num_objectives=oracle.d, epsilon=delta, verbose=False)
    values = []
    while not ls.ended():
        w = ls.next_weight(algo="ols")
        if w is None:
            break
        v = oracle(np.asarray(w, dtype=float)).values
        values.append(v)
        ls.add_solution(v, w)
    return len(values), len(np.unique(np.array(values), axis=0))


def replay(log, value_range=(0.0, 1.0), max_timed=100):
    """Per-round seconds of the corner weights and of the bound at the new corners, old vs new."""
    d = len(log[0][0])
    Q = np.array([w for w, _ in log])
    V = np.array([v for _, v in log])
    b = np.einsum("ij,ij->i", Q, V)
    start = d  # adaptive's first round queries the d simplex vertices
    inc = Corners(V[:start])
    bound = OptimisticBound(Q[:start], b[:start], value_range)
    t_scratch = t_inc = t_lp = t_warm = 0.0
    rounds = 0
    for r in range(start, len(log)):
        t0 = time.perf_counter()
        corner_weights(np.unique(V[: r + 1], axis=0))
        t_scratch += time.perf_counter() - t0
        t0 = time.perf_counter()
        _, added = inc.add(V[r])
        t_inc += time.perf_counter() - t0
        bound.add(Q[r : r + 1], b[r : r + 1])
        if len(added):
            timed = added[:max_timed]
            scale = len(added) / len(timed)
            t0 = time.perf_counter()
            upper_bound_opt(timed, Q[: r + 1], b[: r + 1], value_range, method="lp")
            t_lp += (time.perf_counter() - t0) * scale
            t0 = time.perf_counter()
            bound(timed)
            t_warm += (time.perf_counter() - t0) * scale
        rounds += 1
    rounds = max(rounds, 1)
    return {
        "rounds": rounds,
        "corners": len(inc),
        "corner_scratch": t_scratch / rounds,
        "corner_incremental": t_inc / rounds,
        "bound_lp": t_lp / rounds,
        "bound_warm": t_warm / rounds,
    }


def run_row(spec, eps, delta, min_limit, send, replay_calls=40):
    """One row, in a child process; partial results are sent as they come."""
    kind, d, n, seed = spec
    rng = np.random.default_rng(seed)
    if kind == "sphere":
        V = sphere_front(n, d, rng)
        oracle = palmopt.as_oracle(lambda w: V[np.argmax(V @ w)], d, name=f"sphere-{d}-{n}-{seed}")
        front = V
    else:
        from oracles.tabular.instances import random_momdp

        oracle = random_momdp(5, 3, d, rng=seed)
        front = oracle.reference_front()
    send({"front": len(front), "stage": "replay"})
    # the per-round costs, replayed on the first `replay_calls` queries of a budgeted run
    rec = Recorded(oracle)
    palmopt.adaptive(rec, eps, delta, max_calls=replay_calls, prune="none", progress=False)
    send({**replay(rec.log), "stage": "adaptive"})
    rec = Recorded(oracle, send)
    t0 = time.perf_counter()
    p = palmopt.adaptive(rec, eps, delta, progress=False, seed=seed)
    total = time.perf_counter() - t0
    # the share of 20,000 uniform weights where the portfolio misses the target against the true front
    W = np.random.default_rng(seed + 1).dirichlet(np.ones(d), 20_000)
    missed = float(np.mean((1 - eps) * (W @ front.T).max(axis=1) - delta - (W @ p.values.T).max(axis=1) > 1e-9))
    send({"calls": p.n_oracle_calls, "size": len(p), "status": str(p.status), "own": total - rec.seconds,
          "method": p.info["method"], "uncovered": p.certificate.uncovered, "missed": missed,
          "stage": "certify"})  # fmt: skip
    t0 = time.perf_counter()
    cert = palmopt.certify(p, front, eps, delta)
    send({"certify": time.perf_counter() - t0, "holds": cert.holds, "stage": "LinearSupport"})
    calls, size = linear_support(Recorded(oracle), delta + eps)
    send({"ls_calls": calls, "ls_size": size, "stage": "minimum portfolio"})
    from palmopt.minimum import minimum_portfolio

    m = minimum_portfolio(front, eps, delta, time_limit=min_limit)
    send({"min_size": m.size if m.exact else f"{m.lower_bound}..{m.upper_bound}"})


def _warm_up():
    """Imports and JIT caches, so that a row's times do not include them."""
    warm = sphere_front(50, 3, np.random.default_rng(0))
    oracle = palmopt.as_oracle(lambda w: warm[np.argmax(warm @ w)], 3, name="warm-up")
    palmopt.certify(palmopt.adaptive(oracle, 0.2, progress=False), warm)


def _child(spec, eps, delta, min_limit, conn, replay_calls):
    try:
        _warm_up()
        run_row(spec, eps, delta, min_limit, conn.send, replay_calls)
        conn.send({"done": True})
    except Exception as exc:  # noqa: BLE001 - reported in the row
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def timed_row(spec, eps, delta, limit, replay_calls=40):
    """Run one row in a child process; stop it (by its pid) at ``limit`` seconds.

    The child comes from a fork server (not a fork of this process: numba's parallel kernels
    run on GNU OpenMP, which aborts a forked child that uses it again)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["numpy", "scipy.optimize", "scipy.spatial", "palmopt", "palmopt.adaptive"])
    parent, child = ctx.Pipe(duplex=False)
    args = (spec, eps, delta, max(1.0, limit / 3), child, replay_calls)
    proc = ctx.Process(target=_child, args=args, daemon=True)
    t0 = time.perf_counter()
    proc.start()
    child.close()
    row = {}
    while True:
        left = limit - (time.perf_counter() - t0)
        if left <= 0 or not parent.poll(left):
            break
        try:
            msg = parent.recv()
        except EOFError:
            break
        row.update(msg)
        if "done" in msg or "error" in msg:
            break
    if "done" in row or "error" in row:
        proc.join(10)  # finished: let it exit
    if proc.is_alive():
        proc.terminate()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
        if "done" not in row and "error" not in row:
            row["note"] = f"did not finish in {limit:g} s: {row.get('stage', 'start-up')}"
            if "calls" not in row and "calls_so_far" in row:
                row["note"] += f" ({row['calls_so_far']} calls so far)"
    else:
        proc.join()
    row["wall"] = time.perf_counter() - t0
    return row


def certify_scale(sizes, unit, rng):
    """certify against large sphere fronts (d = 3): corner path vs the LP path (sub-front, scaled)."""
    rows = []
    _warm_up()
    for n in sizes:
        V = sphere_front(n, 3, rng)
        oracle = palmopt.as_oracle(lambda w: V[np.argmax(V @ w)], 3, name=f"certify-scale-{n}")
        p = palmopt.adaptive(oracle, 0.05, 0.0, progress=False)
        t0 = time.perf_counter()
        fast = palmopt.certify(p, V)
        t_fast = time.perf_counter() - t0
        sub = np.vstack([p.values, V[: min(n, 500)]])
        t0 = time.perf_counter()
        palmopt.certify(p, sub, method="lp")
        t_lp = (time.perf_counter() - t0) * n / len(sub)
        rows.append(
            {
                "front": n,
                "members": len(p),
                "fast": t_fast / unit,
                "lp (scaled)": t_lp / unit,
                "speed-up": t_lp / t_fast,
                "n_lps": fast.n_lps,
                "status": str(fast.status),
            }
        )
        print(f"  certify n={n}: corner path {t_fast / unit:.3g} ref, LP path ~{t_lp / unit:.3g} ref")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 300 only, d = 2..8, MOMDPs d <= 4")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--dims", default="2,3,4,5,6,7,8,9,10")
    parser.add_argument("--sizes", default="300,3000")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--delta", type=float, default=0.0)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per row")
    parser.add_argument("--certify-sizes", default="2000,20000")
    parser.add_argument("--replay-calls", type=int, default=40, help="queries replayed for the per-round costs")
    parser.add_argument("--replot", metavar="CSV", help="only redraw scale.png from a scale.csv")
    args = parser.parse_args(argv)
    if args.replot:
        return replot(args.replot)
    os.makedirs(args.out, exist_ok=True)
    dims = [int(x) for x in args.dims.split(",")]
    sizes = [300] if args.quick else [int(x) for x in args.sizes.split(",")]
    unit = min(reference_workload() for _ in range(3))
    print(f"reference workload (300 certificate LPs, d=3, k=20): {unit:.3f} s; times below are ratios to it")
    ls_note = linear_support.__doc__ and linear_support(palmopt.as_oracle(lambda w: np.eye(2)[0], 2, name="probe"), 0.1)
    ls_available = ls_note[0] is not None
    if not ls_available:
        print(f"morl-baselines LinearSupport: {ls_note[1]} -- its columns are empty")

    specs = [("sphere", d, n, d * 1000 + n) for d in dims for n in sizes]
    specs += [("momdp", d, None, d) for d in dims if d <= (4 if args.quick else 8)]
    rows = []
    for spec in specs:
        unit_row = min(reference_workload() for _ in range(2))  # the load drifts: one unit per row
        r = timed_row(spec, args.eps, args.delta, args.time_limit, args.replay_calls)
        kind, d, n, _ = spec
        row = {"instance": kind, "d": d, "front": r.get("front", n), **r, "unit": unit_row}
        for key in ("own", "certify", "corner_scratch", "corner_incremental", "bound_lp", "bound_warm", "wall"):
            if key in row and row[key] is not None:
                row[key] = row[key] / unit_row
        row.setdefault("note", row.get("error", ""))
        rows.append(row)
        print(
            f"  {kind} d={d} front={row['front']}: calls={row.get('calls')} size={row.get('size')} "
            f"min={row.get('min_size')} own={_fmt(row.get('own'))} ref {row['note']}"
        )
    units = [r["unit"] for r in rows]
    print(f"reference workload per row: {min(units):.3f} .. {max(units):.3f} s")
    unit = min(reference_workload() for _ in range(3))
    cert_rows = certify_scale([int(x) for x in args.certify_sizes.split(",")], unit, np.random.default_rng(7))

    keys = ["instance", "d", "front", "method", "calls", "size", "min_size", "status", "own", "certify", "holds",
            "uncovered", "missed",
            "ls_calls", "ls_size", "rounds", "corners", "corner_scratch", "corner_incremental", "bound_lp",
            "bound_warm", "wall", "unit", "note"]  # fmt: skip
    with open(os.path.join(args.out, "scale.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(args.out, "scale.md"), "w") as f:
        f.write(f"Times are ratios to the reference workload (300 certificate LPs, d=3, k=20), timed before each "
                f"row ({min(units):.3f} .. {max(units):.3f} s; {unit:.3f} s for the certify table).  "
                f"Target (eps, delta) = ({args.eps}, {args.delta}); {args.time_limit:g} s per row.  "
                f"morl-baselines LinearSupport: {'installed' if ls_available else ls_note[1]}.\n\n")  # fmt: skip
        f.write("| instance | d | front | method | calls | size | min size | status | palmopt own time | certify "
                "| exact check | share missed (20k uniform w) | LinearSupport calls "
                "| corners | corners/round scratch → incremental | bound/round LP → warm | note |\n")  # fmt: skip
        f.write("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(
                f"| {r['instance']} | {r['d']} | {r['front']} | {r.get('method', '')} | {_fmt(r.get('calls'))} | "
                f"{_fmt(r.get('size'))} | {_fmt(r.get('min_size'))} | {r.get('status', '')} | {_fmt(r.get('own'))} | "
                f"{_fmt(r.get('certify'))} | {r.get('holds', '')} | {_fmt(r.get('missed'))} | "
                f"{_fmt(r.get('ls_calls'))} | {_fmt(r.get('corners'))} | "
                f"{_fmt(r.get('corner_scratch'))} → {_fmt(r.get('corner_incremental'))} | "
                f"{_fmt(r.get('bound_lp'))} → {_fmt(r.get('bound_warm'))} | {r['note']} |\n"
            )
        f.write("\ncertify against sphere fronts, d = 3 (adaptive (0.05, 0) portfolio):\n\n")
        f.write("| front | members | corner path | LP path (scaled) | speed-up | LPs solved | status |\n")
        f.write("|---|---|---|---|---|---|---|\n")
        for r in cert_rows:
            f.write(f"| {r['front']} | {r['members']} | {r['fast']:.3g} | {r['lp (scaled)']:.3g} | "
                    f"{r['speed-up']:.0f}x | {r['n_lps']} | {r['status']} |\n")  # fmt: skip
    _plot(rows, os.path.join(args.out, "scale.png"))
    print(f"wrote {args.out}/scale.csv, scale.md, scale.png")
    return rows, cert_rows


def _fmt(x):
    if x is None or x == "":
        return "–"
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def num(r, key):
        try:
            return float(r.get(key))
        except (TypeError, ValueError):
            return np.nan

    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    series = sorted({(r["instance"], str(r["front"]) if r["instance"] == "sphere" else "") for r in rows})
    for i, (kind, n) in enumerate(series):
        sel = [r for r in rows if r["instance"] == kind and (kind != "sphere" or str(r["front"]) == n)]
        label, colour = (f"{kind} n={n}" if n else kind), f"C{i}"
        ds = [int(r["d"]) for r in sel]
        axes[0].plot(ds, [num(r, "calls") for r in sel], "o-", color=colour, label=label)
        axes[1].plot(ds, [num(r, "own") for r in sel], "o-", color=colour, label=label)
        for ax, old, new in ((axes[2], "corner_scratch", "corner_incremental"), (axes[3], "bound_lp", "bound_warm")):
            ax.plot(ds, [num(r, old) for r in sel], "o-", color=colour, label=f"{label}: before")
            ax.plot(ds, [num(r, new) for r in sel], "x--", color=colour, label=f"{label}: after")
        for r in sel:
            if "did not finish" in str(r.get("note", "")) and np.isnan(num(r, "own")):
                axes[1].annotate("DNF", (int(r["d"]), 1.0), color=colour, fontsize=7, ha="center")
    titles = (
        "oracle calls (palmopt.adaptive)",
        "palmopt's own time / reference (DNF: did not finish)",
        "corner weights per round / reference\n(from scratch → incremental Corners)",
        "bound at new corners per round / reference\n(linprog per corner → warm OptimisticBound)",
    )
    for ax, title in zip(axes, titles):
        ax.set_yscale("log")
        ax.set_xlabel("d")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    axes[3].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def replot(csv_path):
    """Redraw ``scale.png`` next to a ``scale.csv`` written earlier."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    _plot(rows, os.path.join(os.path.dirname(csv_path), "scale.png"))


if __name__ == "__main__":
    main()
