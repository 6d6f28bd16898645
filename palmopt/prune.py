"""Pruning by set cover: keep a small subset of policies that still covers every net point.

A policy ``j`` *covers* net point ``g`` (lower corner ``l_g``, oracle value ``V_g``) when

.. math:: l_g·V_j ≥ (1 - ε_2)\\, l_g·V_g - δ_2 .

Greedy set cover is within a factor ``H(n) ≤ 1 + ln n`` of the minimum; the exact minimum is
an integer programme solved by HiGHS through :func:`scipy.optimize.milp`, after two reductions
that keep its optimum: rows implied by another row (their column set contains it) and columns
whose rows lie inside another column's are dropped.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from . import _kernels
from .status import Status
from .tolerances import LP_SANDWICH
from .validation import check_choice

__all__ = ["Cover", "METHODS", "covering_matrix", "lp_lower_bound", "minimal_rows", "set_cover"]

METHODS = ("greedy", "exact", "none")


@dataclass(frozen=True, eq=False)
class Cover:
    """A set cover of the rows of a 0/1 matrix.

    Attributes
    ----------
    columns : ndarray of int64
        Sorted indices of the chosen columns; they cover every row (checked with NumPy).
    method : {"greedy", "exact", "none"}
        The method asked for.
    status : Status
        ``SUCCESS``; for ``"exact"``, ``TIME_LIMIT`` when the integer programme was not proven
        optimal within ``time_limit`` and ``NUMERICAL_TROUBLE`` when the solver's answer did not
        cover every row -- in both cases ``columns`` is the greedy cover.
    optimal : bool
        ``columns`` is a proven minimum cover.
    """

    columns: np.ndarray
    method: str
    status: Status
    optimal: bool

    def __post_init__(self):
        columns = np.array(self.columns, dtype=np.int64)
        columns.setflags(write=False)
        object.__setattr__(self, "columns", columns)

    def __len__(self):
        return len(self.columns)

    def __repr__(self):
        return (
            f"Cover(size={len(self)}, method={self.method!r}, status={str(self.status)!r}, "
            f"optimal={self.optimal})"
        )


def covering_matrix(lower, own, V, eps2, delta2, opt_bound=None, chunk=20000, *, score=None, V_own=None):
    """0/1 matrix (n, k): does policy ``j`` (row of ``V``) cover net point ``g``?

    The rule compares ``score(l_g, V_j)`` -- ``l_g·V_j`` by default; for a non-linear
    scalarization its rounding form :meth:`~palmopt.scalarizations.Scalarization.rounding_score`
    -- with ``(1 - ε_2)·score(l_g, V[own[g]]) - δ_2``.

    ``lower`` (n, d) are the net's lower corners and ``own`` (n,) the row of ``V`` that the
    oracle returned at each of them, so ``l_g·V[own[g]] = OPT(l_g)`` for an exact oracle; such
    a point is covered by its own policy (the products come from one matrix product).  Points
    the oracle was not called at (``own < 0``, lazy PALM) use ``opt_bound[g] ≥ OPT(l_g)``.

    Noisy values (linear rounding form only): ``V`` holds the bottoms of the members' confidence
    boxes and ``V_own`` the tops; a point's own value is then ``l_g·V_own[own[g]]`` and its own
    policy covers it regardless of the noise.
    """
    n = lower.shape[0]
    C = np.empty((n, V.shape[0]), dtype=np.uint8)
    for s in range(0, n, chunk):
        S = lower[s : s + chunk] @ V.T if score is None else score(lower[s : s + chunk], V)
        o = own[s : s + chunk]
        if V_own is None:
            opt = S[np.arange(S.shape[0]), np.maximum(o, 0)]
        else:
            opt = np.einsum("ij,ij->i", lower[s : s + chunk], V_own[np.maximum(o, 0)])
        if opt_bound is not None:
            opt = np.where(o >= 0, opt, opt_bound[s : s + chunk])
        need = (1.0 - eps2) * opt - delta2
        C[s : s + chunk] = S >= need[:, None]
        if V_own is not None:
            rows = np.flatnonzero(o >= 0)
            C[s + rows, o[rows]] = 1
    return C


def _pack(C):
    """Rows of a 0/1 matrix as bit sets, uint64 words."""
    B = np.packbits(C.astype(bool), axis=1)
    B = np.pad(B, ((0, 0), (0, (-B.shape[1]) % 8)))
    return np.ascontiguousarray(B).view(np.uint64)


def minimal_rows(C, chunk=128):
    """The distinct rows of the 0/1 matrix ``C`` whose column set contains no other row's.

    A row that contains another is implied by it, so every set cover keeps its feasible set.
    Rows are taken by increasing size and each is compared with the minimal rows kept so far
    only (a row containing any row contains a minimal one).

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.prune import minimal_rows
    >>> minimal_rows(np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0], [0, 1, 1]], dtype=np.uint8))
    array([[1, 0, 0],
           [0, 1, 1]], dtype=uint8)
    """
    P = _pack(C)
    _, first = np.unique(P, axis=0, return_index=True)
    size = C[first].sum(axis=1)
    kept = []
    K = np.empty((0, P.shape[1]), dtype=np.uint64)
    for s in np.unique(size):
        block = np.sort(first[size == s])  # distinct rows of equal size: none contains another
        if len(K):
            implied = np.concatenate(
                [
                    ((P[block[c : c + chunk], None, :] & K) == K).all(axis=2).any(axis=1)
                    for c in range(0, len(block), chunk)
                ]
            )
            block = block[~implied]
        kept.append(block)
        K = np.vstack([K, P[block]])
    return C[np.concatenate(kept)]


def _undominated_columns(C):
    """Columns of ``C`` whose rows lie inside no other column's (ties: the later one is kept)."""
    order = np.lexsort((np.arange(C.shape[1]), C.sum(axis=0)))  # ascending count, then index
    P = _pack(C.T)[order]
    keep = np.ones(C.shape[1], dtype=bool)
    for i, a in enumerate(order[:-1]):
        keep[a] = not ((P[i + 1 :] & P[i]) == P[i]).all(axis=1).any()
    return np.flatnonzero(keep)


def lp_lower_bound(C):
    """A lower bound on the minimum set cover of the rows of ``C`` from its LP relaxation's
    dual, verified with NumPy: any ``y ≥ 0`` with ``Cᵀy ≤ 1`` gives ``Σ y ≤`` every cover's size.

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.prune import lp_lower_bound
    >>> lp_lower_bound(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=np.uint8))  # LP: 1.5
    2
    """
    A = np.asarray(C, dtype=np.float64)
    res = linprog(np.ones(A.shape[1]), A_ub=-A, b_ub=-np.ones(len(A)), bounds=(0, 1), method="highs")
    if res.status != 0:
        return 1
    y = np.clip(-res.ineqlin.marginals, 0.0, None)
    bound = y.sum() / max(1.0, float((A.T @ y).max()))
    return max(1, math.ceil(bound - LP_SANDWICH))


def set_cover(C, method="greedy", *, time_limit=None):
    """Columns of ``C`` (n, k) that cover every row.

    Parameters
    ----------
    C : array_like of 0/1, shape (n, k)
    method : {"greedy", "exact", "none"}
        Greedy (Numba kernel), a minimum cover (integer programme on the reduced matrix), or
        every column.
    time_limit : float, optional
        Seconds for the integer programme.

    Returns
    -------
    Cover
        Run-time outcomes (time limit, solver trouble) are in ``Cover.status``.

    Raises
    ------
    ValueError
        An unknown method, or a row that no column covers (no cover exists).

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.prune import set_cover
    >>> C = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=np.uint8)
    >>> set_cover(C, "greedy").columns, set_cover(C, "exact")
    (array([0, 1]), Cover(size=2, method='exact', status='success', optimal=True))
    """
    method = check_choice(method, "prune", METHODS)
    C = np.ascontiguousarray(C, dtype=np.uint8)
    if not C.any(axis=1).all():
        raise ValueError(f"row {int(np.flatnonzero(~C.any(axis=1))[0])} of the covering matrix is covered by no column.")
    k = C.shape[1]
    if method == "none":
        return Cover(np.arange(k), method, Status.SUCCESS, optimal=k == 1)
    greedy = np.sort(_kernels.greedy_cover(C))
    if method == "greedy" or len(greedy) == 1:
        return Cover(greedy, method, Status.SUCCESS, optimal=len(greedy) == 1)
    cols = _undominated_columns(C)
    rows = minimal_rows(C[:, cols])
    options = {} if time_limit is None else {"time_limit": float(time_limit)}
    res = milp(
        c=np.ones(len(cols)),
        constraints=LinearConstraint(rows, lb=1, ub=np.inf),
        integrality=np.ones(len(cols)),
        bounds=Bounds(0, 1),
        options=options,
    )
    if res.status != 0 or res.x is None:
        status = Status.TIME_LIMIT if res.status == 1 else Status.NUMERICAL_TROUBLE
        return Cover(greedy, method, status, optimal=False)
    chosen = cols[np.flatnonzero(res.x > 0.5)]
    if not C[:, chosen].any(axis=1).all():  # never trust the solver: recheck with NumPy
        return Cover(greedy, method, Status.NUMERICAL_TROUBLE, optimal=False)
    return Cover(np.sort(chosen), method, Status.SUCCESS, optimal=True)
