r"""The simplex lattice ``{k / N : k ∈ Z^d_{≥0}, Σ k = N}``: its size, points and L1 covering radius.

The one place these facts are written; the additive net (:func:`palmopt.cover` with
``kind="additive"``), the sphere instance (:func:`palmopt.bounds.sphere_front`) and the
minimum portfolio's initial rows (:func:`palmopt.minimum_portfolio`) use them.

Covering radius.  Largest-remainder rounding of ``w ∈ Δ_d`` to the lattice moves it by at most
``2 r (d - r) / (d N) ≤ 2 ⌊d/2⌋ ⌈d/2⌉ / (d N)`` in L1 (``r`` coordinates round up; the worst
case has equal fractional parts ``r/d``), and that radius is attained.
"""

import math

import numpy as np

from . import _kernels
from .tolerances import INTEGER_ROUNDING
from .validation import check_count, check_dim, check_tolerances

__all__ = ["covering_radius", "finest", "points", "resolution", "size"]


def covering_radius(d, N):
    """The L1 covering radius ``2 ⌊d/2⌋ ⌈d/2⌉ / (d N)`` of the resolution-``N`` lattice in ``Δ_d``.

    Examples
    --------
    >>> from palmopt import lattice
    >>> lattice.covering_radius(2, 10), round(lattice.covering_radius(3, 3), 4)   # 4 / 9
    (0.1, 0.4444)
    """
    d = check_dim(d)
    return 2 * (d // 2) * ((d + 1) // 2) / d / check_count(N, "N")


def size(d, N):
    """``binom(N + d - 1, d - 1)`` points.

    Examples
    --------
    >>> from palmopt import lattice
    >>> lattice.size(3, 10)
    66
    """
    N, d = check_count(N, "N"), check_dim(d)
    digits = log10_size(d, N)
    if digits > MAX_DIGITS:
        raise ValueError(
            f"the simplex lattice for d={d}, N={N} has about 10^{digits:.1f} points, more than {MAX_DIGITS:,} "
            f"digits; it is not counted exactly."
        )
    return math.comb(N + d - 1, d - 1)


#: :func:`size` refuses counts with more decimal digits than this (the work stays bounded).
MAX_DIGITS = 10_000
#: :func:`resolution` refuses resolutions above this (cell codes are int64).
MAX_RESOLUTION = 2**62


def log10_size(d, N):
    """``log10 binom(N + d - 1, d - 1)`` in floating point (no big integers)."""
    n, k = N + d - 1, d - 1
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(10)


def points(d, N):
    """The lattice points as integer vectors ``k`` (``Σ k = N``), shape ``(size(d, N), d)``,
    in the order of the Numba walk (:func:`palmopt._kernels.lattice_walk`).

    Examples
    --------
    >>> from palmopt import lattice
    >>> lattice.points(2, 2)
    array([[0, 2],
           [1, 1],
           [2, 0]])
    """
    K = np.empty((size(d, N), d), dtype=np.int64)
    _kernels.lattice_walk(d, N, K)
    return K


def resolution(d, delta):
    r"""The coarsest resolution ``N`` whose lattice is an additive ``delta``-net.

    Notes
    -----
    For rewards in [0, 1] and any ``w, w'`` on the simplex, with ``π'`` optimal for ``w'``,
    ``w·V(π') - w·V(π_w) = (w' - w)·(V(π_w) - V(π')) + [w'·V(π') - w'·V(π_w)]``; the bracket is
    ``≥ 0`` and ``V(π_w) - V(π') ∈ [-1, 1]^d``, so the loss is at most ``||w - w'||_1``.  Hence

    .. math:: N = ⌈ 2 ⌊d/2⌋ ⌈d/2⌉ / (d δ) ⌉

    guarantees ``w·V(π_{w'}) ≥ OPT(w) - δ``.

    Examples
    --------
    >>> from palmopt import lattice
    >>> lattice.resolution(2, 0.1), lattice.resolution(3, 0.1)
    (10, 14)
    """
    d = check_dim(d)
    _, delta = check_tolerances(delta, delta)
    N = covering_radius(d, 1) / delta - INTEGER_ROUNDING
    if not N <= MAX_RESOLUTION:
        raise ValueError(
            f"delta={delta:g} is too small for d={d}: the additive net would need resolution N = {N:.3g}, more "
            f"than 2^62; use a larger delta."
        )
    return max(1, int(math.ceil(N)))


def finest(d, max_points):
    """The largest resolution ``N`` with at most ``max_points`` points (at least 1).

    Examples
    --------
    >>> from palmopt import lattice
    >>> lattice.finest(3, 50_000), lattice.size(3, lattice.finest(3, 50_000)) <= 50_000
    (314, True)
    """
    d, max_points = check_dim(d), check_count(max_points, "max_points")
    if d == 1:
        raise ValueError("the simplex lattice in d=1 has one point at every resolution; there is no finest one.")
    # the largest N >= 1 with size(d, N) <= max_points (or 1): binary search, size grows with N
    lo, hi = 1, 2
    while log10_size(d, hi) < math.log10(max_points) + 1 and math.comb(hi + d - 1, d - 1) <= max_points:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if math.comb(mid + d - 1, d - 1) <= max_points:
            lo = mid
        else:
            hi = mid
    return lo
