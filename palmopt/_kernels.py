"""Numba kernels: contiguous float64/int64 arrays and scalars in, arrays out.

No validation, no Python objects, no global random state, no ``fastmath`` (a reordered
sum can break a certified inequality).  Every kernel has a plain NumPy twin of the same
name in :mod:`palmopt._reference`; the test-suite compares each pair.

Cells and codes
---------------
A net point is identified by an integer *index tuple* (one level index per coordinate)
and stored by its *code*, the tuple read as a base-``radix`` number.  Enumeration
emits tuples in lexicographic order, so the codes are sorted and ``locate`` is a
binary search.
"""

import os
import stat
import tempfile

import numpy as np
from numba import njit, prange


# ---------------------------------------------------------------------------------------
# The on-disk cache of compiled kernels
# ---------------------------------------------------------------------------------------


def _probe():  # pragma: no cover - never called; numba's cache locators are asked about it
    pass


def _locatable():
    """Whether numba can cache the kernels of this file (its own locator search)."""
    try:
        from numba.core import caching

        impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")
        classes = impl._locator_classes
    except (ImportError, AttributeError):  # pragma: no cover - another numba: assume the default works
        return True
    for cls in classes:
        try:
            if cls.from_function(_probe, os.path.abspath(__file__)) is not None:
                return True
        except Exception:  # noqa: BLE001 - a locator that fails is not usable
            continue
    return False


def _private_dir():
    """A per-user cache directory in the temporary directory: created 0700, and used only if it
    is a real directory owned by this user that nobody else can write (a shared /tmp must not
    feed this process cache files planted by someone else)."""
    getuid = getattr(os, "getuid", None)
    path = os.path.join(tempfile.gettempdir(), f"palmopt-numba-cache-{getuid() if getuid else 'user'}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or (getuid and st.st_uid != getuid()) or st.st_mode & 0o077:
            return tempfile.mkdtemp(prefix="palmopt-numba-")
        return path
    except OSError:
        try:
            return tempfile.mkdtemp(prefix="palmopt-numba-")
        except OSError:
            return None


def _cache_setting():
    """``True`` (cache compiled kernels) or ``False`` (compile in every process).

    numba caches next to this file (``__pycache__``), else in the user's cache directory under
    ``HOME``, else in ``NUMBA_CACHE_DIR``.  A read-only install with an unwritable ``HOME`` has
    none of these, and ``cache=True`` would make ``import palmopt`` fail: then the cache goes to
    a private per-user directory in the temporary directory (also exported as
    ``NUMBA_CACHE_DIR`` for worker processes), and if even that fails, kernels are compiled
    without a cache.  See docs/runs.md.
    """
    if _locatable():
        return True
    from numba.core import config

    path = _private_dir()
    if path is not None:
        config.CACHE_DIR = path
        os.environ["NUMBA_CACHE_DIR"] = path
        if _locatable():
            return True
    return False


#: Whether the kernels below are cached on disk (see :func:`_cache_setting`).
CACHE = _cache_setting()


# ---------------------------------------------------------------------------------------
# PALM net: enumeration and exact counting
# ---------------------------------------------------------------------------------------


@njit(cache=CACHE)
def palm_net_walk(edges, d, out):
    """Walk the PALM net in lexicographic order, writing index tuples into the rows of ``out``.

    ``edges`` has length L + 1 for L levels: level ``i`` is the interval
    ``[edges[i], edges[i + 1])``.  A level tuple belongs to the net iff
    ``sum(lo) <= 1 < sum(hi)``.  Returns the number of tuples in the net (rows beyond
    ``len(out)`` are counted, not written; pass an empty ``out`` to count).
    """
    n_levels = edges.shape[0] - 1
    capacity = out.shape[0]
    idx = np.zeros(d, dtype=np.int64)
    slo = np.zeros(d + 1)  # slo[c] = sum of lo over coordinates < c
    shi = np.zeros(d + 1)
    count = 0
    c = 0  # the coordinate being advanced
    while True:
        if c == d - 1:
            # Last coordinate: every level whose interval meets (1 - shi, 1 - slo].
            for i in range(n_levels):
                lo = slo[c] + edges[i]
                if lo > 1.0:
                    break
                if shi[c] + edges[i + 1] > 1.0:
                    if count < capacity:
                        for t in range(d - 1):
                            out[count, t] = idx[t]
                        out[count, d - 1] = i
                    count += 1
            # Backtrack to the deepest coordinate that can still be raised.
            c -= 1
            while c >= 0:
                idx[c] += 1
                if idx[c] < n_levels and slo[c] + edges[idx[c]] <= 1.0:
                    break
                c -= 1
            if c < 0:
                return count
        # Fix coordinate c at idx[c] and descend with the next coordinates at level 0.
        slo[c + 1] = slo[c] + edges[idx[c]]
        shi[c + 1] = shi[c] + edges[idx[c] + 1]
        c += 1
        if c < d - 1:
            idx[c] = 0


@njit(cache=CACHE)
def _pairs_at_most(P, c):
    """#{(a, b) in P x P : a + b <= c} for ascending P, by two pointers."""
    n = P.shape[0]
    j = n - 1
    total = 0
    for i in range(n):
        while j >= 0 and P[i] + P[j] > c:
            j -= 1
        if j < 0:
            break
        total += j + 1
    return total


@njit(cache=CACHE)
def _tuples_at_most(B, P, j, c):
    """#{ordered j-tuples of B with sum <= c}, j >= 4; P the ascending pair sums of B."""
    if j == 4:
        return _pairs_at_most(P, c)
    total = 0
    for a in B:
        if a > c:
            break
        total += _tuples_at_most(B, P, j - 1, c - a)
    return total


@njit(cache=CACHE)
def count_tuples_at_most(B, j, c):
    """Number of ordered j-tuples of the ascending positive values ``B`` with sum <= ``c``.

    Sums are formed in another order than a left-to-right loop would, so the count is exact
    when every partial sum is an exact float (the dyadic PALM levels guarantee it).

    Time O(|B|^max(2, j - 2)), memory O(|B|^2) (O(1) for j <= 3): two-pointer counts over
    B for j <= 3; for j >= 4 recursion on the first j - 4 entries and a two-pointer
    count over the sorted pair sums for the last four.
    """
    if c < 0.0:
        return 0
    if j == 0:
        return 1
    if j == 1:
        return np.searchsorted(B, c, side="right")
    if j == 2:
        return _pairs_at_most(B, c)
    if j == 3:
        total = 0
        for a in B:
            if a > c:
                break
            total += _pairs_at_most(B, c - a)
        return total
    n = B.shape[0]
    P = np.empty(n * n)
    m = 0
    for a in B:
        for b in B:
            if a + b <= c:
                P[m] = a + b
                m += 1
    P = np.sort(P[:m])
    return _tuples_at_most(B, P, j, c)


# ---------------------------------------------------------------------------------------
# Additive lattice net
# ---------------------------------------------------------------------------------------


@njit(cache=CACHE)
def lattice_walk(d, N, out):
    """Compositions of N into d non-negative parts in lexicographic order, into the rows of ``out``."""
    capacity = out.shape[0]
    idx = np.zeros(d, dtype=np.int64)
    idx[d - 1] = N
    count = 0
    while True:
        if count < capacity:
            for t in range(d):
                out[count, t] = idx[t]
        count += 1
        # Next composition: raise the deepest coordinate c < d - 1 that has room.
        c = d - 2
        rest = idx[d - 1]
        while c >= 0 and rest == 0:
            rest += idx[c]
            c -= 1
        if c < 0:
            return count
        idx[c] += 1
        rest -= 1
        for t in range(c + 1, d - 1):
            idx[t] = 0
        idx[d - 1] = rest


# ---------------------------------------------------------------------------------------
# Rounding and location
# ---------------------------------------------------------------------------------------


@njit(cache=CACHE)
def _find(codes, code):
    k = np.searchsorted(codes, code)
    if k < codes.shape[0] and codes[k] == code:
        return k
    return -1


@njit(cache=CACHE, parallel=True)
def locate_palm(W, edges, codes):
    """Net index of the PALM cell of each row of W (rows on the simplex); -1 if absent."""
    m, d = W.shape
    n_levels = edges.shape[0] - 1
    out = np.empty(m, dtype=np.int64)
    for r in prange(m):
        code = 0
        for t in range(d):
            # level i with edges[i] <= w < edges[i + 1]
            i = np.searchsorted(edges, W[r, t], side="right") - 1
            if i > n_levels - 1:
                i = n_levels - 1
            code = code * n_levels + i
        out[r] = _find(codes, code)
    return out


@njit(cache=CACHE, parallel=True)
def locate_lattice(W, N, codes):
    """Net index of the largest-remainder rounding of each row of W to the grid (1/N)Z^d."""
    m, d = W.shape
    out = np.empty(m, dtype=np.int64)
    for r in prange(m):
        k = np.empty(d, dtype=np.int64)
        frac = np.empty(d)
        total = 0
        for t in range(d):
            x = W[r, t] * N
            k[t] = np.int64(np.floor(x))
            frac[t] = x - k[t]
            total += k[t]
        # give the missing units to the largest fractional parts (lowest index on ties)
        for _ in range(N - total):
            best = 0
            for t in range(1, d):
                if frac[t] > frac[best]:
                    best = t
            k[best] += 1
            frac[best] = -1.0
        code = 0
        for t in range(d):
            code = code * (N + 1) + k[t]
        out[r] = _find(codes, code)
    return out


# ---------------------------------------------------------------------------------------
# Best value: max_j W[r] . V[j] without the m x k matrix
# ---------------------------------------------------------------------------------------


@njit(cache=CACHE, parallel=True)
def best_value(W, VT):
    """Row-wise ``max_j W[r] . V[j]`` and the first maximising ``j``.

    ``VT`` is V transposed, (d, k) C-contiguous, so that the inner loop runs over
    members with unit stride.  Memory O(m).
    """
    m, d = W.shape
    k = VT.shape[1]
    best = np.empty(m)
    arg = np.empty(m, dtype=np.int64)
    for r in prange(m):
        b = -np.inf
        a = 0
        for j in range(k):
            s = 0.0
            for t in range(d):
                s += W[r, t] * VT[t, j]
            if s > b:
                b = s
                a = j
        best[r] = b
        arg[r] = a
    return best, arg


# ---------------------------------------------------------------------------------------
# Set cover
# ---------------------------------------------------------------------------------------


@njit(cache=CACHE)
def greedy_cover(C):
    """Greedy set cover of the rows of the 0/1 matrix C (n, k) by its columns.

    Repeatedly takes the column that covers the most uncovered rows (lowest index on ties)
    until every coverable row is covered.  Returns the chosen columns in order (int64).
    """
    n, k = C.shape
    covered = np.zeros(n, dtype=np.bool_)
    gain = np.zeros(k, dtype=np.int64)
    for i in range(n):
        for j in range(k):
            gain[j] += C[i, j]
    chosen = np.empty(k, dtype=np.int64)
    m = 0
    while True:
        best = 0
        for j in range(1, k):
            if gain[j] > gain[best]:
                best = j
        if gain[best] == 0:
            return chosen[:m]
        chosen[m] = best
        m += 1
        for i in range(n):
            if C[i, best] and not covered[i]:
                covered[i] = True
                for j in range(k):
                    gain[j] -= C[i, j]
