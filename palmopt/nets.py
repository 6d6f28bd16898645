r"""Weight sets on the simplex: the exact PALM net, an additive lattice net, and the
equal-size baselines (well-spread and random weights).

The guarantee of a net (DESIGN.md §2): for rewards in [0, 1]^d and every ``w`` on the
simplex, the oracle policy at the net point that covers ``w`` (``net.locate(w)``) achieves

.. math:: w·V(π_{\tilde w}) ≥ (1-ε)\,OPT(w) - δ

(``ε = 0`` for ``kind="additive"``).
"""

from dataclasses import dataclass, field

import numpy as np

from . import _kernels
from .validation import as_rng, check_count, check_dim, check_simplex, check_tolerances
from . import lattice
from .bounds import _edges, fmt_int, net_size, upper_bound

__all__ = ["Net", "cover", "uniform", "random"]

_KINDS = ("palm", "additive")
_INT64_LIMIT = 2**63 - 1


def _readonly(a):
    a.setflags(write=False)
    return a


@dataclass(frozen=True, repr=False, eq=False)
class Net:
    """An ε-net of the simplex: the weights an oracle is called with, and how to route to them.

    Attributes
    ----------
    kind : {"palm", "additive"}
    d : int
    eps, delta : float
        The guarantee ``w·V(π) ≥ (1 - eps) OPT(w) - delta`` (``eps = 0`` for ``"additive"``).
    points : ndarray, shape (n, d)
        Net points, rows on the simplex (what the oracle is called with).
    lower : ndarray, shape (n, d)
        The un-normalised rounded vectors (PALM: level vectors, coordinatewise ``<= w``
        for every ``w`` they cover; additive: the lattice points themselves).
    bound : int
        Closed-form upper bound on ``len(net)`` (:func:`palmopt.bounds.upper_bound`).

    Examples
    --------
    >>> import palmopt
    >>> net = palmopt.cover(3, 0.05)
    >>> net
    Net(kind='palm', d=3, eps=0.05, delta=0.05, n=17776, bound=19441)
    >>> i = net.locate([[0.2, 0.3, 0.5]])
    >>> bool(((net.lower[i] <= [0.2, 0.3, 0.5]) & (net.lower[i] > 0)).all())
    True
    """

    kind: str
    d: int
    eps: float
    delta: float
    points: np.ndarray
    lower: np.ndarray
    bound: int
    _codes: np.ndarray = field(repr=False)
    _grid: object = field(repr=False)  # PALM: level edges (L + 1,); additive: resolution N

    def __len__(self):
        return self.points.shape[0]

    def __repr__(self):
        return (
            f"Net(kind={self.kind!r}, d={self.d}, eps={self.eps:g}, delta={self.delta:g}, "
            f"n={len(self)}, bound={self.bound})"
        )

    def locate(self, W):
        """Index of the net point that covers each row of ``W``.

        Parameters
        ----------
        W : array_like, shape (m, d) or (d,)
            Weights on the simplex.

        Returns
        -------
        ndarray of int64, shape (m,)

        Raises
        ------
        ValueError
            If ``W`` has the wrong shape, non-finite entries or rows off the simplex.
        """
        W = check_simplex(W, self.d)
        if self.kind == "palm":
            idx = _kernels.locate_palm(W, self._grid, self._codes)
        else:
            idx = _kernels.locate_lattice(W, self._grid, self._codes)
        missing = np.flatnonzero(idx < 0)
        if missing.size:  # only a floating-point tie at sum(lo) == 1 can cause this
            r = int(missing[0])
            raise ValueError(f"row {r} of `W` ({W[r].tolist()}) rounds to a cell outside the net.")
        return idx


def _encode(index, radix):
    weights = radix ** np.arange(index.shape[1] - 1, -1, -1, dtype=np.int64)
    return index @ weights


def cover(d, eps, delta=None, *, kind="palm", max_points=10_000_000):
    r"""The exact net of the simplex for an (eps, delta) guarantee.

    Parameters
    ----------
    d : int
        Number of objectives (>= 1).
    eps : float in (0, 1)
        Multiplicative tolerance.
    delta : float in (0, 1), optional
        Additive tolerance; defaults to ``eps``.
    kind : {"palm", "additive"}
        ``"palm"``: the mixed multiplicative/additive net of DESIGN.md §2, every level vector
        that some point of the simplex rounds to and no other.  ``"additive"``: the lattice
        ``{k / N : sum k = N}`` with ``N = lattice.resolution(d, delta)``, a purely additive
        guarantee ``OPT(w) - delta`` (stronger than (eps, delta); ``eps`` is not used).
    max_points : int
        Refuse to build a larger net.

    Returns
    -------
    Net

    Raises
    ------
    ValueError
        On invalid arguments, or when the net has more than ``max_points`` points (the
        message states its size and the memory it would need).

    Notes
    -----
    PALM rounding: ``tau = delta/d``, ``gamma = eps/(1-eps)``; ``w_i < tau`` rounds to 0,
    otherwise to the largest level ``tau (1+gamma)^k <= w_i``.  With ``V ∈ [0,1]^d``:
    ``w·V(π_w̃) ≥ w̃·V(π_w̃) ≥ w̃·V(π_w) ≥ (1-ε) Σ_{w_i≥τ} w_i V_i(π_w) ≥ (1-ε) OPT(w) - δ``.
    A level vector with cell ``∏[lo_i, hi_i)`` is reached iff ``Σ lo ≤ 1 < Σ hi``.

    Examples
    --------
    >>> import palmopt
    >>> len(palmopt.cover(2, 0.05)), len(palmopt.cover(3, 0.05))
    (145, 17776)
    >>> palmopt.cover(3, 0.1, kind="additive")
    Net(kind='additive', d=3, eps=0, delta=0.1, n=120, bound=120)
    """
    d = check_dim(d)
    eps, delta = check_tolerances(eps, delta)
    if kind not in _KINDS:
        raise ValueError(f"`kind` must be one of {_KINDS}; got {kind!r}.")
    max_points = check_count(max_points, "max_points")
    bytes_per_point = (3 * d + 1) * 8

    def refuse(size_text, n_for_memory):
        if n_for_memory is None:
            gib = "far too many"
        elif n_for_memory < 2**60:
            gib = f"about {n_for_memory * bytes_per_point / 2**30:.3g}"
        else:  # never through float: the count may exceed its range
            gib = f"about {fmt_int(n_for_memory * bytes_per_point // 2**30)}"
        raise ValueError(
            f"the {kind} net for d={d}, eps={eps:g}, delta={delta:g} has {size_text} points, more than "
            f"max_points={max_points}; building it would need {gib} GiB. Raise "
            f"`max_points`, or use palmopt.adaptive / lazy PALM, which call the oracle far less."
        )

    if kind == "palm":
        try:
            bound = upper_bound(d, eps, delta)
        except ValueError as exc:  # the bound itself is astronomically large
            if "digits" not in str(exc):
                raise
            refuse("too many to count exactly (the closed-form bound has more than 10,000 digits)", None)
        if bound > max_points:
            try:
                size = net_size(d, eps, delta)
            except ValueError:
                refuse(f"too many to count exactly (at most {fmt_int(bound)})", bound)
        else:
            size = net_size(d, eps, delta)
    else:
        try:
            size = net_size(d, eps, delta, kind="additive")
        except ValueError as exc:
            if "digits" not in str(exc):
                raise
            refuse("too many to count exactly (more than 10^10,000)", None)
    if size > max_points:
        refuse(fmt_int(size), size)

    if kind == "palm":
        edges = _edges(d, eps, delta)
        radix = len(edges) - 1
        grid, bound = edges, upper_bound(d, eps, delta)
    else:
        N = lattice.resolution(d, delta)
        radix = N + 1
        grid, bound, eps = N, size, 0.0
    if radix**d > _INT64_LIMIT:
        raise ValueError(
            f"the {kind} net for d={d} has {radix} levels per coordinate; {radix}^{d} cell codes "
            f"overflow int64, so it cannot be indexed."
        )
    if kind == "palm":
        index = np.empty((size, d), dtype=np.int64)
        n = _kernels.palm_net_walk(grid, d, index)
        lower = grid[index]
    else:
        index = lattice.points(d, grid)
        n, lower = len(index), index / grid
    if n != size:  # pragma: no cover - would mean a floating-point tie at sum == 1
        raise RuntimeError(f"enumeration found {n} points but the exact count is {size}.")
    points = lower / lower.sum(axis=1, keepdims=True)
    return Net(
        kind=kind,
        d=d,
        eps=eps,
        delta=delta,
        points=_readonly(points),
        lower=_readonly(lower),
        bound=bound,
        _codes=_readonly(_encode(index, radix)),
        _grid=grid,
    )


def uniform(d, n):
    """Exactly ``n`` well-spread weights on the simplex (the PALM paper's "uniform" baseline).

    ``d = 2``: evenly spaced.  When ``n`` is the size of a simplex lattice
    ``binom(N + d - 1, d - 1)``, that lattice.  Otherwise a greedy farthest-point (maximin)
    selection from a lattice with at least ``20 n`` candidates, starting at the first vertex,
    so the vertices come first.  ``n = 1`` gives the centroid.

    Examples
    --------
    >>> from palmopt.nets import uniform
    >>> uniform(2, 3)
    array([[0. , 1. ],
           [0.5, 0.5],
           [1. , 0. ]])
    >>> uniform(3, 6).shape
    (6, 3)
    """
    d = check_dim(d)
    n = check_count(n, "n")
    if n == 1:
        return np.full((1, d), 1.0 / d)
    if d == 1:
        raise ValueError(f"the simplex in d=1 is a single point; `n` must be 1, got {n}.")
    if 20 * n * n * d > MAX_UNIFORM_WORK:
        raise ValueError(
            f"uniform(d={d}, n={fmt_int(n)}) would compare about {fmt_int(20 * n * n * d)} pairs (farthest-point "
            f"selection from 20 n candidates), more than {MAX_UNIFORM_WORK:.0e}; use palmopt.nets.random or a "
            f"lattice (palmopt.lattice.points) instead."
        )
    N = _smallest_resolution(d, n)
    if lattice.size(d, N) == n:
        return lattice.points(d, N) / N
    N = _smallest_resolution(d, 20 * n)
    C = lattice.points(d, N) / N
    chosen = [0]
    gap = np.linalg.norm(C - C[0], axis=1)
    for _ in range(n - 1):
        j = int(np.argmax(gap))
        chosen.append(j)
        np.minimum(gap, np.linalg.norm(C - C[j], axis=1), out=gap)
    return C[chosen]


#: :func:`uniform` refuses selections costlier than this (candidates x members x d).
MAX_UNIFORM_WORK = 2e11


def _smallest_resolution(d, n):
    """The smallest ``N >= 1`` with ``lattice.size(d, N) >= n`` (``d >= 2``), by bisection."""
    lo, hi = 0, 1  # size(d, lo) < n <= size(d, hi) once the doubling stops
    while lattice.size(d, hi) < n:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if lattice.size(d, mid) >= n:
            hi = mid
        else:
            lo = mid
    return hi


def random(d, n, *, rng=None):
    """``n`` weights drawn uniformly from the simplex (Dirichlet(1, ..., 1)).

    Examples
    --------
    >>> from palmopt.nets import random
    >>> W = random(3, 4, rng=0)
    >>> W.shape, bool(abs(W.sum(axis=1) - 1).max() < 1e-12)
    ((4, 3), True)
    """
    d = check_dim(d)
    n = check_count(n, "n")
    return as_rng(rng).dirichlet(np.ones(d), size=n)
