"""Kernel benchmark (not a test): ratios against baselines run in the same process.

    python bench/bench_kernels.py [--m 1000000] [--k 1000]

Prints: PALM net enumeration time (d=3, eps=delta=0.02); ``locate`` on m weights vs its
NumPy twin; the fused best-value kernel on m x k (d=3) vs a BLAS product of the same shape
(in row chunks, the practical limit) and vs the chunked NumPy twin, with the peak resident
memory each adds (Linux VmHWM, reset between runs).
"""

import argparse
import time

import numpy as np

import palmopt
from palmopt import _kernels, _reference


def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def measure(fn, repeat=3):
    """Best wall time of ``repeat`` runs and the peak RSS added by one run (MiB)."""
    fn()  # warm up (JIT compile, caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak-RSS counter
        base = _rss_kib("VmRSS")
        fn()
        peak = (_rss_kib("VmHWM") - base) / 1024
    except OSError:
        peak = float("nan")
    return min(times), peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=1_000)
    args = parser.parse_args(argv)
    m, k, d = args.m, args.k, 3
    rng = np.random.default_rng(0)

    t_enum, _ = measure(lambda: palmopt.cover(3, 0.02, 0.02), repeat=3)
    net = palmopt.cover(3, 0.02, 0.02)
    print(f"enumerate PALM net d=3 eps=delta=0.02: {len(net):,} points in {t_enum * 1e3:.1f} ms")

    W = np.ascontiguousarray(rng.dirichlet(np.ones(d), size=m))
    t_loc, _ = measure(lambda: _kernels.locate_palm(W, net._grid, net._codes))
    t_loc_ref, _ = measure(lambda: _reference.locate_palm(W, net._grid, net._codes))
    print(f"locate {m:,} weights: kernel {t_loc:.3f} s, NumPy twin {t_loc_ref:.3f} s, ratio {t_loc_ref / t_loc:.1f}x")

    V = rng.random((k, d))
    VT = np.ascontiguousarray(V.T)
    chunk = 65536

    def blas_only():
        for s in range(0, m, chunk):
            W[s : s + chunk] @ VT

    rows = []
    for name, fn in [
        ("best_value kernel", lambda: _kernels.best_value(W, VT)),
        ("BLAS W @ V.T (chunks)", blas_only),
        ("NumPy twin (chunks)", lambda: _reference.best_value(W, VT, chunk=chunk)),
    ]:
        t, peak = measure(fn)
        rows.append((name, t, peak))
    t_kernel = rows[0][1]
    print(f"\nbest value, m={m:,}, k={k:,}, d={d} (full matrix would be {m * k * 8 / 2**30:.1f} GiB)")
    print(f"{'method':<24}{'seconds':>10}{'vs kernel':>11}{'peak MiB':>10}")
    for name, t, peak in rows:
        print(f"{name:<24}{t:>10.3f}{t / t_kernel:>10.2f}x{peak:>10.1f}")
    print(f"\nkernel time / BLAS product time = {t_kernel / rows[1][1]:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
