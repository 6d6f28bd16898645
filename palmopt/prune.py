"""Pruning by set cover: keep a small subset of policies that still covers every net point.

A policy ``j`` *covers* net point ``g`` (lower corner ``l_g``, oracle value ``V_g``) when

.. math:: l_g·V_j ≥ (1 - ε_2)\\, l_g·V_g - δ_2 .

Greedy set cover is within a factor ``H(n) ≤ 1 + ln n`` of the minimum; the exact minimum is
an integer programme solved by HiGHS through :func:`scipy.optimize.milp`.
"""

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from . import _kernels

__all__ = ["covering_matrix", "set_cover", "METHODS"]

METHODS = ("greedy", "exact", "none")


def covering_matrix(lower, own, V, eps2, delta2, opt_bound=None, chunk=20000):
    """0/1 matrix (n, k): does policy ``j`` (row of ``V``) cover net point ``g``?

    ``lower`` (n, d) are the net's lower corners and ``own`` (n,) the row of ``V`` that the
    oracle returned at each of them, so ``l_g·V[own[g]] = OPT(l_g)`` for an exact oracle; such
    a point is covered by its own policy (the products come from one matrix product).  Points
    the oracle was not called at (``own < 0``, lazy PALM) use ``opt_bound[g] ≥ OPT(l_g)``.
    """
    n = lower.shape[0]
    C = np.empty((n, V.shape[0]), dtype=np.uint8)
    for s in range(0, n, chunk):
        S = lower[s : s + chunk] @ V.T
        o = own[s : s + chunk]
        opt = S[np.arange(S.shape[0]), np.maximum(o, 0)]
        if opt_bound is not None:
            opt = np.where(o >= 0, opt, opt_bound[s : s + chunk])
        need = (1.0 - eps2) * opt - delta2
        C[s : s + chunk] = S >= need[:, None]
    return C


def set_cover(C, method="greedy", *, time_limit=None):
    """Columns of ``C`` (n, k) that cover every row: ``"greedy"``, ``"exact"`` or ``"none"`` (all).

    Returns the sorted column indices.  Raises ``ValueError`` if some row is covered by no
    column, and ``RuntimeError`` if the integer programme does not reach a proven optimum.

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.prune import set_cover
    >>> C = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=np.uint8)
    >>> set_cover(C, "greedy"), set_cover(C, "exact")
    (array([0, 1]), array([0, 1]))
    """
    if method not in METHODS:
        raise ValueError(f"`prune` must be one of {METHODS}; got {method!r}.")
    C = np.ascontiguousarray(C, dtype=np.uint8)
    if not C.any(axis=1).all():
        raise ValueError(f"row {int(np.flatnonzero(~C.any(axis=1))[0])} of the covering matrix is covered by no column.")
    k = C.shape[1]
    if method == "none":
        return np.arange(k)
    if method == "greedy":
        return np.sort(_kernels.greedy_cover(C))
    rows = np.unique(C, axis=0)  # identical constraints once
    options = {} if time_limit is None else {"time_limit": time_limit}
    res = milp(
        c=np.ones(k),
        constraints=LinearConstraint(rows, lb=1, ub=np.inf),
        integrality=np.ones(k),
        bounds=Bounds(0, 1),
        options=options,
    )
    if res.status != 0 or res.x is None:
        raise RuntimeError(f"the exact set cover did not reach a proven optimum: {res.message}")
    chosen = np.flatnonzero(res.x > 0.5)
    if not C[:, chosen].any(axis=1).all():  # never trust the solver: recheck with NumPy
        raise RuntimeError("the exact set cover returned by the solver does not cover every row.")
    return chosen
