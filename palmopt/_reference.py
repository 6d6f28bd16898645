"""Plain NumPy twins of the kernels in :mod:`palmopt._kernels` (same names, same outputs).

They are slow or memory-hungry on purpose (full products of levels, whole matrices in
chunks): their only job is to be obviously right so that the tests can hold the
kernels to them.
"""

import itertools

import numpy as np


def _product(n_values, d):
    """All index tuples of range(n_values)^d in lexicographic order, shape (n^d, d)."""
    return np.indices((n_values,) * d).reshape(d, -1).T.astype(np.int64)


def palm_net_walk(edges, d, out):
    n_levels = edges.shape[0] - 1
    idx = _product(n_levels, d)
    lo = edges[idx].sum(axis=1)
    hi = edges[idx + 1].sum(axis=1)
    keep = idx[(lo <= 1.0) & (hi > 1.0)]
    n = min(len(keep), out.shape[0])
    out[:n] = keep[:n]
    return len(keep)


def count_tuples_at_most(B, j, c):
    sums = np.zeros(1)
    for _ in range(j):
        sums = (sums[:, None] + B[None, :]).ravel()
    return int(np.count_nonzero(sums <= c))


def lattice_walk(d, N, out):
    rows = np.array([t for t in itertools.product(range(N + 1), repeat=d) if sum(t) == N], dtype=np.int64)
    n = min(len(rows), out.shape[0])
    out[:n] = rows[:n]
    return len(rows)


def _find(codes, code):
    k = np.searchsorted(codes, code)
    k_safe = np.minimum(k, len(codes) - 1)
    return np.where(codes[k_safe] == code, k_safe, -1)


def _encode(idx, radix):
    code = np.zeros(idx.shape[0], dtype=np.int64)
    for t in range(idx.shape[1]):
        code = code * radix + idx[:, t]
    return code


def locate_palm(W, edges, codes):
    n_levels = edges.shape[0] - 1
    idx = np.minimum(np.searchsorted(edges, W, side="right") - 1, n_levels - 1)
    return _find(codes, _encode(idx, n_levels))


def locate_lattice(W, N, codes):
    x = W * N
    k = np.floor(x).astype(np.int64)
    frac = x - k
    missing = N - k.sum(axis=1)
    order = np.argsort(-frac, axis=1, kind="stable")  # largest first, lowest index on ties
    rank = np.argsort(order, axis=1, kind="stable")
    k = k + (rank < missing[:, None])
    return _find(codes, _encode(k, N + 1))


def best_value(W, VT, chunk=65536):
    m = W.shape[0]
    best = np.empty(m)
    arg = np.empty(m, dtype=np.int64)
    for s in range(0, m, chunk):
        S = W[s : s + chunk] @ VT
        arg[s : s + chunk] = np.argmax(S, axis=1)
        best[s : s + chunk] = S[np.arange(S.shape[0]), arg[s : s + chunk]]
    return best, arg


def greedy_cover(C):
    C = C.astype(bool)
    uncovered = np.ones(C.shape[0], dtype=bool)
    chosen = []
    while True:
        gain = C[uncovered].sum(axis=0)
        if gain.size == 0 or gain.max() == 0:
            return np.array(chosen, dtype=np.int64)
        best = int(np.argmax(gain))
        chosen.append(best)
        uncovered &= ~C[:, best]
