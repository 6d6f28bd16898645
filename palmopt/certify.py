r"""Exact whole-simplex certificates (DESIGN.md §3): a handful of small LPs, no sampling.

For a portfolio ``U = {u_1..u_k}`` and a reference set ``T`` of achievable vectors (an exact
front), with ``LB(w) = max_j w·u_j`` and ``OPT(w) = max_t w·t``:

* mixed: ``violation = max_{w∈Δ} (1-ε) OPT(w) - δ - LB(w) = max_t max_{w,s} (1-ε) w·t - δ - s``
  subject to ``s ≥ w·u_j``;
* multiplicative: ``1 - eps* = min_t min_{w∈Δ} LB(w) / (w·t)``, by Dinkelbach's iteration on
  simplex LPs (better conditioned than the Charnes–Cooper LP ``min {s : s ≥ w·u_j, w·t = 1}``
  when ``t`` has tiny entries);
* additive: ``delta* = max_t max_{w∈Δ} w·t - s`` subject to ``s ≥ w·u_j``.

Nothing is taken on the solver's word: each LP's primal point is re-evaluated with NumPy (the
witness value) and its dual multipliers give, again with NumPy, a rigorous bound on the LP's
optimum; when the two are further apart than ``LP_SANDWICH`` the certificate's status is
downgraded to ``"numerical-trouble"``.
"""

import numbers

import numpy as np
from scipy.optimize import linprog

from .status import Status
from .tolerances import (
    CORNER_TIE,
    FLOAT_SLACK,
    HIGHS_FEASIBILITY,
    LP_SANDWICH,
    SHORTFALL,
    VERTEX_MARGIN,
    WEIGHT_DECIMALS,
)
from .validation import as_matrix, as_values, check_fraction, check_tolerances, undominated

from .certificate import Certificate

__all__ = ["certify", "corner_weights", "max_shortfall", "reference_vectors", "upper_bound_opt"]


def reference_vectors(reference, d=None, *, unique=True):
    """An (n, d) array of achievable vectors from an array, or from an object that provides
    one through ``reference_front()`` (an exact oracle) or ``values`` (a portfolio); distinct
    and sorted when ``unique``, else the rows as given."""
    if hasattr(reference, "reference_front"):
        reference = reference.reference_front()
    elif hasattr(reference, "values") and not isinstance(reference, np.ndarray):
        reference = reference.values
    T = as_matrix(reference, "reference", d)
    return np.unique(T, axis=0) if unique else T


def _solve(c, A_ub, b_ub, A_eq, b_eq, xmax):
    """min c·x, A_ub x ≤ b_ub, A_eq x = b_eq, x[:-1] ≥ 0, x[-1] free.

    Returns the primal point and a NumPy-verified lower bound on the optimum from the
    solver's dual multipliers (weak duality; ``xmax`` bounds |x| on the feasible set).
    """
    n = len(c)
    res = linprog(
        c,
        A_ub=A_ub,
        b_ub=b_ub,
        A_eq=A_eq,
        b_eq=b_eq,
        bounds=[(0, None)] * (n - 1) + [(None, None)],
        method="highs",
        options=_HIGHS_OPTIONS,
    )
    if res.status != 0 or res.x is None:
        return None, -np.inf
    y = np.minimum(res.ineqlin.marginals, 0.0)  # scipy: d fun / d b_ub <= 0 for a minimum
    z = res.eqlin.marginals
    r = c - A_ub.T @ y - A_eq.T @ z
    # c·x = r·x + y·A_ub x + z·A_eq x >= r·x + y·b_ub + z·b_eq  for every feasible x
    neg = r[:-1] < 0
    slack = float(r[:-1][neg] @ xmax[:-1][neg]) - abs(r[-1]) * xmax[-1]
    return res.x, float(y @ b_ub + z @ b_eq + slack)


#: The certificate LPs' HiGHS options (their answers are re-verified with NumPy either way).
_HIGHS_OPTIONS = {"primal_feasibility_tolerance": HIGHS_FEASIBILITY, "dual_feasibility_tolerance": HIGHS_FEASIBILITY}


class _Envelope:
    """The LP pieces shared by every question about the lower envelope ``max_j w·u_j``."""

    def __init__(self, U):
        k, d = U.shape
        self.U = U
        self.A_ub = np.c_[U, -np.ones(k)]  # w·u_j - s <= 0
        self.b_ub = np.zeros(k)
        self.A_eq = np.r_[np.ones(d), 0.0][None, :]
        self.b_eq = np.ones(1)
        self.box = np.r_[np.ones(d), max(float(np.abs(U).max()), 1.0)]

    def lb(self, w):
        return float((self.U @ w).max())

    def shortfall(self, t, scale):
        """``max_{w∈Δ} scale·w·t - LB(w)``: ``(value at the solver's w, w, verified upper bound)``."""
        x, dual = _solve(np.r_[-scale * t, 1.0], self.A_ub, self.b_ub, self.A_eq, self.b_eq, self.box)
        if x is None:
            return -np.inf, None, np.inf
        d = len(t)
        w = np.clip(x[:d], 0, None)
        w /= w.sum()
        return scale * float(w @ t) - self.lb(w), w, -dual


def max_shortfall(U, t, eps=0.0):
    r"""The largest shortfall of the envelope of ``U`` against one vector ``t``, by one LP.

    .. math:: \max_{w∈Δ_d}\ (1-ε)\,w·t - \max_j w·u_j

    This is the one place the certificate LP is written; :func:`certify`, the minimum
    portfolio's row generation and the oracles' exact-front tests all call it.

    Parameters
    ----------
    U : array_like (k, d)
        The members' value vectors.
    t : array_like (d,)
        An achievable vector.
    eps : float in [0, 1)

    Returns
    -------
    value : float
        The shortfall at ``weight``, recomputed with NumPy (a lower bound on the maximum);
        ``-inf`` when the solver failed.
    weight : ndarray (d,) or None
        The solver's maximiser, renormalised onto the simplex.
    bound : float
        An upper bound on the maximum from the solver's dual multipliers, verified with NumPy
        (``inf`` when the solver failed).  ``bound - value`` is the LP's verified accuracy.

    Examples
    --------
    >>> from palmopt.certify import max_shortfall
    >>> value, w, bound = max_shortfall([[1.0, 0.0], [0.0, 1.0]], [0.8, 0.8])
    >>> round(value, 6), w.round(6).tolist(), bound - value < 1e-7
    (0.3, [0.5, 0.5], True)
    """
    U = as_matrix(U, "U")
    t = as_matrix(t, "t", U.shape[1])[0]
    eps = check_fraction(eps, "eps", allow_zero=True)
    return _Envelope(U).shortfall(t, 1.0 - eps)


def _min_ratio(env, t, max_iter=60):
    """Dinkelbach's iteration for ``min_{w∈Δ, w·t>0} LB(w) / (w·t)``.

    Each step solves the well-conditioned simplex LP ``F(ρ) = min_w LB(w) - ρ w·t`` (that is,
    ``-max_shortfall`` at scale ``ρ``) and moves ``ρ`` to the ratio at its minimiser; ``ρ``
    decreases strictly until ``F(ρ) = 0``.  Returns the witness and ``(n_lps, trouble,
    primal-dual gap)``; the gap is in the units of ``F``.
    """
    d = len(t)
    w = np.eye(d)[int(np.argmax(t))]
    rho = env.lb(w) / float(w @ t)
    for it in range(1, max_iter + 1):
        value, v, bound = env.shortfall(t, rho)
        if v is None:
            return w, (it, True, np.inf)
        if float(v @ t) <= 0.0 or env.lb(v) / float(v @ t) >= rho - FLOAT_SLACK:
            return w, (it, False, bound - min(value, 0.0))  # no better ratio: F(rho) = 0
        w, rho = v, env.lb(v) / float(v @ t)
    return w, (max_iter, True, np.inf)


def _targets(portfolio, eps, delta):
    """The guarantee to check: given, else the portfolio's own, else (0, 0); ``delta=None`` is ``eps``."""
    own = (getattr(portfolio, "eps", np.nan), getattr(portfolio, "delta", np.nan))
    if eps is None and all(isinstance(x, numbers.Real) and np.isfinite(x) for x in own):
        eps = own[0]
        if delta is None:
            delta = own[1]
    eps = 0.0 if eps is None else eps
    return check_tolerances(eps, delta, allow_zero=True)


def certify(portfolio, reference, eps=None, delta=None):
    r"""Check a portfolio against a reference front over the whole simplex, exactly.

    Parameters
    ----------
    portfolio : Portfolio or array_like (k, d)
        The members' value vectors.
    reference : array_like (n, d), or an object with ``reference_front()`` or ``values``
        Achievable vectors whose upper envelope is OPT (an exact front).
    eps, delta : float in [0, 1), optional
        The guarantee to check, ``w·u ≥ (1-eps) OPT(w) - delta``.  Default: the portfolio's
        own target (``portfolio.eps``, ``portfolio.delta``) when it has one, else ``eps = 0``;
        ``delta=None`` means ``delta = eps``.

    Returns
    -------
    Certificate
        ``kind="exact"``; ``holds`` means ``violation <= SHORTFALL``.

    Notes
    -----
    Per reference vector: one LP for the mixed and additive gaps (two when ``eps > 0``) and a
    few Dinkelbach steps for the multiplicative gap, each LP with ``d + 1`` variables and ``k``
    constraints (:func:`max_shortfall`); see the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt import certify
    >>> T = np.array([[1.0, 0.0], [0.8, 0.8], [0.0, 1.0]])
    >>> certify(T[[0, 2]], T, eps=0.2, delta=0).holds   # the corners miss (0.8, 0.8) at w = (½, ½)
    False
    >>> cert = certify(T[[1]], T, eps=0.2, delta=0.0)
    >>> cert.holds, round(cert.eps_star, 3), round(cert.delta_star, 3)
    (True, 0.2, 0.2)
    """
    U = as_values(portfolio)
    d = U.shape[1]
    T = reference_vectors(reference, d)
    eps, delta = _targets(portfolio, eps, delta)
    env = _Envelope(U)

    worst = (-np.inf, None)
    add = (-np.inf, None)
    ratio = (1.0, None)  # no multiplicative gap unless a weight with LB < OPT is found
    gap, n_lps, trouble = 0.0, 0, False
    for t in T:
        for scale in sorted({1.0 - eps, 1.0}):  # one LP when eps = 0
            value, w, bound = env.shortfall(t, scale)
            n_lps += 1
            if w is None:
                trouble = True
                continue
            gap = max(gap, bound - value)  # the optimum lies in [value, bound]
            if scale == 1.0 - eps and value - delta > worst[0]:
                worst = (value - delta, w)
            if scale == 1.0 and value > add[0]:
                add = (value, w)
        if not np.any(t > 0):
            continue  # OPT = 0 along t: no multiplicative requirement
        w, n = _min_ratio(env, t)
        n_lps += n[0]
        trouble |= n[1]
        gap = max(gap, n[2])
        if w is not None:
            r_opt = env.lb(w) / float((T @ w).max())  # verified LB(w) / OPT(w) at the witness
            if r_opt < ratio[0]:
                ratio = (r_opt, w)
    return Certificate(
        holds=bool(worst[0] <= SHORTFALL),
        violation=float(worst[0]),
        worst_weight=worst[1],
        eps_star=float(1.0 - ratio[0]),
        eps_weight=ratio[1],
        delta_star=float(add[0]),
        delta_weight=add[1],
        eps=eps,
        delta=delta,
        kind="exact",
        status=Status.NUMERICAL_TROUBLE if trouble or gap > LP_SANDWICH else Status.SUCCESS,
        max_lp_gap=float(gap),
        n_lps=n_lps,
    )


# ---------------------------------------------------------------------------------------
# Black-box tools: corner weights of the lower envelope, the optimistic upper bound on OPT
# ---------------------------------------------------------------------------------------


def corner_weights(V, *, tol=CORNER_TIE):
    """Corner weights of the lower envelope ``LB(w) = max_j w·V_j`` on the simplex.

    They are the vertices of the polyhedron ``{(w, s) : w ∈ Δ, s ≥ w·V_j ∀j}``, i.e. the
    vertices of the regions where ``LB`` is linear (simplex vertices included).  Any function
    that is convex on each such region -- ``(1-ε) UB - δ - LB`` for a convex ``UB`` -- attains
    its maximum over the simplex at a corner weight.

    ``d = 2``: closed form (pairwise intersections on the envelope).  ``d ≥ 3``: halfspace
    intersection with Qhull (``scipy.spatial.HalfspaceIntersection``), after removing
    duplicate and dominated vectors.

    Parameters
    ----------
    V : array_like (k, d)

    Returns
    -------
    ndarray (m, d)
        Rows on the simplex, lexicographically sorted, without duplicates.

    Examples
    --------
    >>> from palmopt.certify import corner_weights
    >>> corner_weights([[1.0, 0.0], [0.0, 1.0]])
    array([[0. , 1. ],
           [0.5, 0.5],
           [1. , 0. ]])
    """
    U = as_matrix(V, "V")
    U = U[undominated(U)]  # duplicates and dominated vectors never define LB
    k, d = U.shape
    if d == 1:
        return np.ones((1, 1))
    if d == 2:
        slope, icept = U[:, 0] - U[:, 1], U[:, 1]  # LB(x) = max_j icept_j + slope_j x, w = (x, 1-x)
        xs = [0.0, 1.0]
        for i in range(k):
            for j in range(i + 1, k):
                if slope[i] != slope[j]:
                    x = (icept[j] - icept[i]) / (slope[i] - slope[j])
                    if 0.0 < x < 1.0:
                        xs.append(x)
        xs = np.array(xs)
        env = (icept[None, :] + slope[None, :] * xs[:, None]).max(axis=1)
        on = np.sum(icept[None, :] + slope[None, :] * xs[:, None] >= env[:, None] - tol, axis=1) >= 2
        xs = xs[on | (xs == 0.0) | (xs == 1.0)]
        W = np.c_[xs, 1.0 - xs]
    else:
        W = _corners_qhull(U)
    W = np.unique(np.round(W, WEIGHT_DECIMALS), axis=0)
    return W / W.sum(axis=1, keepdims=True)


def _corners_qhull(U):
    from scipy.spatial import HalfspaceIntersection
    from scipy.spatial import QhullError

    k, d = U.shape
    cap = float(U.max()) + 1.0
    # coordinates y = (w_1..w_{d-1}, s); rows [A | b] mean A y + b <= 0
    rows = [np.r_[-np.eye(d - 1)[i], 0.0, 0.0] for i in range(d - 1)]
    rows.append(np.r_[np.ones(d - 1), 0.0, -1.0])
    for u in U:
        rows.append(np.r_[u[:-1] - u[-1], -1.0, u[-1]])
    rows.append(np.r_[np.zeros(d - 1), 1.0, -cap])
    H = np.array(rows)
    centre = np.full(d, 1.0 / d)
    inner = np.r_[centre[:-1], float((U @ centre).max()) + 0.5]
    try:
        Y = HalfspaceIntersection(H, inner).intersections
    except QhullError:  # degenerate input: joggle, then snap the vertices back below
        Y = HalfspaceIntersection(H, inner, qhull_options="QJ").intersections
    Y = Y[Y[:, -1] < cap - VERTEX_MARGIN]
    W = np.c_[Y[:, :-1], 1.0 - Y[:, :-1].sum(axis=1)]
    return np.clip(W, 0.0, None)


def upper_bound_opt(W, Q, b, value_range=(0.0, 1.0)):
    """The optimistic bound ``UB(w) = max {w·v : Q v ≤ b, lo ≤ v ≤ hi}`` at each row of ``W``.

    Every achievable ``v`` satisfies ``w_q·v ≤ OPT(w_q)`` at each queried ``w_q`` (rows of ``Q``,
    with ``b_q ≥ OPT(w_q)``) and lies in the oracle's declared ``value_range = (lo, hi)``, so
    ``UB ≥ OPT``.  The value returned is the *dual* bound recomputed with NumPy from the
    solver's multipliers, ``b·y + Σ_i max(c_i·hi, c_i·lo)`` with ``c = w - Qᵀy`` and ``y ≥ 0`` --
    an upper bound on the LP optimum by weak duality whatever the solver's accuracy.  Returns
    ``(ub, lp_gap)`` where ``lp_gap`` is the largest distance between that bound and the primal
    value.
    """
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    Q = np.asarray(Q, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    lo, hi = (float(x) for x in value_range)
    d = W.shape[1]
    ub = np.empty(len(W))
    gap = 0.0
    for i, w in enumerate(W):
        res = linprog(-w, A_ub=Q, b_ub=b, bounds=[(lo, hi)] * d, method="highs")
        if res.status != 0:
            ub[i], gap = float(np.maximum(w * hi, w * lo).sum()), np.inf  # the box alone
            continue
        y = np.maximum(-res.ineqlin.marginals, 0.0)
        c = w - Q.T @ y
        ub[i] = float(b @ y + np.maximum(c * hi, c * lo).sum())
        gap = max(gap, ub[i] - float(w @ np.clip(res.x, lo, hi)))
    return ub, gap
