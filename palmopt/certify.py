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

:func:`certify` evaluates these maxima at the corner weights of the portfolio's envelope (where
they are attained) and verifies each reference vector with the dual of its LP, in closed form at
its corner; only the vectors that this does not settle get the LP (``method="lp"`` forces the
plain path).  For the adaptive search: :class:`Corners` keeps the corner weights up to date as
members are added, and :class:`OptimisticBound` evaluates the optimistic bound at many weights
with one warm-started LP (what :func:`upper_bound_opt` uses).
"""

import numbers
import warnings

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
from .validation import as_matrix, as_values, check_choice, check_fraction, check_tolerances, undominated

from .certificate import Certificate

__all__ = [
    "Corners",
    "OptimisticBound",
    "certify",
    "corner_weights",
    "max_shortfall",
    "reference_vectors",
    "upper_bound_opt",
]


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


def certify(portfolio, reference, eps=None, delta=None, *, gaps=True, method="auto"):
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
    gaps : bool, default True
        Also compute the pure gaps ``eps_star`` and ``delta_star`` (with their weights).  With
        ``gaps=False`` only the mixed check is made; ``eps_star`` and ``delta_star`` are then
        ``nan`` and their weights ``None``.  (With the default ``method`` the pure gaps cost
        two matrix products; with ``method="lp"`` they are most of the LPs.)
    method : {"auto", "corners", "lp"}
        ``"lp"``: one LP per reference vector and gap (the plain path, see Notes).
        ``"corners"`` (what ``"auto"`` does for ``d ≥ 2``): the gaps are evaluated at the
        corner weights of the portfolio's lower envelope (where every gap attains its
        maximum) and each reference vector's value is *verified* by a dual solution of its LP
        computed in closed form from the corner's active members; the few vectors whose dual
        bound does not settle them (degenerate corners) get the LP.  Both methods return the
        same certificate up to the LPs' verified accuracy.

    Returns
    -------
    Certificate
        ``kind="exact"``; ``holds`` means ``violation <= SHORTFALL``.  ``n_lps`` counts the LPs
        actually solved (``0`` when every reference vector was settled by its corner dual).

    Warns
    -----
    RuntimeWarning
        When the portfolio *beats* the reference front: some member's value exceeds
        ``OPT(w) = max_t w·t`` at some ``w`` by more than ``SHORTFALL`` (a member outside
        ``conv(T) - R^d_+``).  The reference is then not the true front (a corrupted or
        incomplete front), and the certificate's gaps are measured against a wrong ``OPT``
        (``delta_star`` can be negative).

    Notes
    -----
    Per reference vector ``t`` the plain path solves one LP for the mixed and additive gaps (two
    when ``eps > 0``) and a few Dinkelbach steps for the multiplicative gap, each LP with ``d + 1``
    variables and ``k`` constraints (:func:`max_shortfall`); see the module docstring.

    The corner path uses that, for each ``t``, ``g_t(w) = s·w·t - LB(w)`` is linear on each
    region where one member wins, so ``max_w g_t(w)`` is attained at a corner weight ``c``; at
    ``c`` the LP's dual ``λ`` (a convex combination of the members active at ``c``) solves a
    square linear system, and ``max_i (s·t - Uᵀλ)_i ≥ max_w g_t(w)`` for every ``λ`` in the
    simplex (weak duality, recomputed with NumPy).  A vector whose bound exceeds the best value
    found by more than ``1e-10`` is solved by the LP instead, so nothing rests on the vertex
    enumeration's accuracy.  The multiplicative gap ``1 - min_c LB(c)/OPT(c)`` is verified the
    same way at scale ``ρ = min_c LB(c)/OPT(c)`` (Dinkelbach's ``F(ρ) ≤ 0``).  Cost: one
    ``m × n`` product per gap for ``m`` corners and ``n`` reference vectors, no LP in the
    generic case.

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
    method = check_choice(method, "method", ("auto", "corners", "lp"))
    U = as_values(portfolio)
    d = U.shape[1]
    T = reference_vectors(reference, d)
    eps, delta = _targets(portfolio, eps, delta)
    env = _Envelope(U)
    result = None
    if method != "lp" and d >= 2:
        result = _certify_corners(env, T, eps, delta, gaps)
    if result is None:
        result = _certify_lp(env, T, eps, delta, gaps)
    worst, add, ratio, gap, n_lps, trouble = result
    beaten = _warn_if_beaten(env, T, stacklevel=3)
    extra = {}
    if beaten is not None:
        extra["note"] = (
            f"the portfolio beats the reference front by {beaten[0]:.3g} (member {beaten[2]}): "
            "the reference is not the true front."
        )
    return Certificate(
        holds=bool(worst[0] <= SHORTFALL),
        violation=float(worst[0]),
        worst_weight=worst[1],
        eps_star=float(1.0 - ratio[0]) if gaps else float("nan"),
        eps_weight=ratio[1],
        delta_star=float(add[0]) if gaps else float("nan"),
        delta_weight=add[1],
        eps=eps,
        delta=delta,
        kind="exact",
        status=Status.NUMERICAL_TROUBLE if trouble or gap > LP_SANDWICH else Status.SUCCESS,
        max_lp_gap=float(gap),
        n_lps=n_lps,
        assumptions={
            "reference": f"OPT(w) is the best of the {len(T)} reference vectors at w (the truth when they are the "
            f"exact front); members' values are their true values",
        },
        **extra,
    )


def _certify_lp(env, T, eps, delta, gaps):
    """The plain path: one LP per reference vector and gap (Dinkelbach for ``eps*``)."""
    worst = (-np.inf, None)
    add = (-np.inf, None)
    ratio = (1.0, None)  # no multiplicative gap unless a weight with LB < OPT is found
    gap, n_lps, trouble = 0.0, 0, False
    scales = sorted({1.0 - eps, 1.0}) if gaps else [1.0 - eps]
    for t in T:
        for scale in scales:  # one LP when eps = 0
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
        if not gaps or not np.any(t > 0):
            continue  # OPT = 0 along t: no multiplicative requirement
        w, n = _min_ratio(env, t)
        n_lps += n[0]
        trouble |= n[1]
        gap = max(gap, n[2])
        if w is not None:
            r_opt = env.lb(w) / float((T @ w).max())  # verified LB(w) / OPT(w) at the witness
            if r_opt < ratio[0]:
                ratio = (r_opt, w)
    return worst, add, ratio, gap, n_lps, trouble


#: A reference vector whose corner-dual bound exceeds the best value found by more than this is
#: settled by its LP instead (the corner path's own accuracy; far below ``LP_SANDWICH``).
_DUAL_SLACK = 1e-10


class _CornerDuals:
    """Corner weights of ``LB`` with, per corner, the square system that gives the certificate
    LP's dual at that corner (members active there, coordinates positive there)."""

    def __init__(self, env):
        U = env.U
        self.env = env
        self.C = corner_weights(U)
        self.lb = (self.C @ U.T).max(axis=1)
        self._systems = {}

    def system(self, c):
        if c not in self._systems:
            w = self.C[c]
            U = self.env.U
            A = np.flatnonzero(U @ w >= self.lb[c] - CORNER_TIE)
            P = np.flatnonzero(w > _ZERO_WEIGHT)
            M = np.zeros((len(P) + 1, len(A) + 1))
            M[:-1, :-1] = U[np.ix_(A, P)].T
            M[:-1, -1] = 1.0
            M[-1, :-1] = 1.0
            self._systems[c] = (A, P, np.linalg.pinv(M))
        return self._systems[c]

    def best(self, T, scale):
        """Per row of ``T``: the corner maximising ``scale·c·t - LB(c)`` and that value (recomputed
        with NumPy at the corner), by the fused best-value kernel (no ``m × n`` matrix)."""
        from ._kernels import best_value

        Ta = np.ascontiguousarray(np.c_[T, np.ones(len(T))])
        VT = np.ascontiguousarray(np.r_[scale * self.C.T, -self.lb[None, :]])
        _, arg = best_value(Ta, VT)
        val = scale * np.einsum("ij,ij->i", self.C[arg], T) - self.lb[arg]
        return arg, val

    def opt(self, T):
        """``OPT(c) = max_t c·t`` at each corner."""
        from ._kernels import best_value

        return best_value(np.ascontiguousarray(self.C), np.ascontiguousarray(T.T))[0]

    def bounds(self, T, scale, arg):
        """A verified upper bound on ``max_w scale·w·t - LB(w)`` for each row of ``T``, from the
        dual at its corner ``arg``: ``max_i (scale·t - Uᵀλ)_i`` for a ``λ`` on the simplex."""
        U = self.env.U
        ub = np.empty(len(T))
        order = np.argsort(arg, kind="stable")
        cuts = np.flatnonzero(np.diff(arg[order])) + 1
        for idx in np.split(order, cuts):
            if not idx.size:
                continue
            A, P, Minv = self.system(int(arg[idx[0]]))
            R = np.vstack([scale * T[np.ix_(idx, P)].T, np.ones((1, len(idx)))])
            lam = np.clip((Minv @ R)[:-1], 0.0, None)  # (|A|, g)
            tot = lam.sum(axis=0)
            lam = np.where(tot > 0, lam / np.where(tot > 0, tot, 1.0), 1.0 / len(A))
            ub[idx] = (scale * T[idx] - lam.T @ U[A]).max(axis=1)
        return ub


#: Corner-weight coordinates at most this are zero (corner weights are rounded to 12 decimals).
_ZERO_WEIGHT = 1e-11


def _settle(env, duals, T, scale, rows, arg, val, best_w):
    """The best ``max_w scale·w·t - LB(w)`` over ``T[rows]``, verified: corner values and dual
    bounds, then the LP for each vector whose bound exceeds the best value by ``_DUAL_SLACK``.
    Returns ``((value, weight), gap, n_lps, trouble)``."""
    Tr = T[rows]
    ub = duals.bounds(Tr, scale, arg)
    i = int(np.argmax(val))
    best = (float(val[i]), duals.C[arg[i]].copy()) if best_w is None else best_w
    n_lps, trouble = 0, False
    open_ = np.flatnonzero(ub > best[0] + _DUAL_SLACK)
    for j in open_[np.argsort(-ub[open_], kind="stable")]:
        if ub[j] <= best[0] + _DUAL_SLACK:
            continue
        value, w, bound = env.shortfall(Tr[j], scale)
        n_lps += 1
        if w is None:
            trouble = True
            continue
        ub[j] = min(ub[j], bound)
        if value > best[0]:
            best = (value, w)
    return best, max(float(ub.max()) - best[0], 0.0), n_lps, trouble


def _certify_corners(env, T, eps, delta, gaps):
    """The corner path of :func:`certify` (see its Notes); ``None`` when it cannot be set up."""
    try:
        duals = _CornerDuals(env)
    except Exception:  # Qhull on a degenerate input: the plain path
        return None
    rows = np.arange(len(T))
    scales = sorted({1.0 - eps, 1.0}) if gaps else [1.0 - eps]
    out, gap, n_lps, trouble = {}, 0.0, 0, False
    for scale in scales:
        arg, val = duals.best(T, scale)
        best, g, n, bad = _settle(env, duals, T, scale, rows, arg, val, None)
        out[scale] = best
        gap, n_lps, trouble = max(gap, g), n_lps + n, trouble or bad
    value, w = out[1.0 - eps]
    worst = (value - delta, w)
    add, ratio = out.get(1.0, (-np.inf, None)), (1.0, None)
    if gaps:
        pos = np.flatnonzero(np.any(T > 0, axis=1))
        if pos.size:
            opt = duals.opt(T)
            ok = opt > 0
            r = np.where(ok, duals.lb / np.where(ok, opt, 1.0), np.inf)
            c = int(np.argmin(r))
            rho = min(float(r[c]), 1.0)
            if r[c] < 1.0:
                ratio = (float(r[c]), duals.C[c].copy())
            # verify: F(rho) = max_t max_w rho·w·t - LB(w) <= 0, i.e. no weight has a smaller ratio
            Tp = T[pos]
            arg, _ = duals.best(Tp, rho)
            ub = duals.bounds(Tp, rho, arg)
            open_ = ub > _DUAL_SLACK
            gap = max(gap, float(ub[~open_].max(initial=0.0)))
            for j in np.flatnonzero(open_):  # Dinkelbach from scratch for the vectors the duals do not settle
                w, n = _min_ratio(env, Tp[j])
                n_lps += n[0]
                trouble |= n[1]
                gap = max(gap, n[2])
                if w is not None:
                    r_opt = env.lb(w) / float((T @ w).max())
                    if r_opt < ratio[0]:
                        ratio = (r_opt, w)
    return worst, add, ratio, gap, n_lps, trouble


def _warn_if_beaten(env, T, stacklevel=2):
    """Warn when some member exceeds ``OPT(w) = max_t w·t`` somewhere by more than ``SHORTFALL``."""
    U = env.U
    beaten, front = None, None
    Tt = T + SHORTFALL
    for j, u in enumerate(U):
        if np.any(np.all(u <= Tt, axis=1)):
            continue  # below a single reference vector: never above OPT
        front = _Envelope(T) if front is None else front
        value, w, _ = front.shortfall(u, 1.0)  # max_w w·u - OPT(w)
        if w is not None and value > SHORTFALL and (beaten is None or value > beaten[0]):
            beaten = (value, w, j)
    if beaten is not None:
        value, w, j = beaten
        warnings.warn(
            f"the portfolio beats the reference front: member {j} exceeds OPT(w) = max_t w·t by "
            f"{value:.3g} at w = {np.round(w, 6).tolist()}; the reference is not the true front, so "
            f"the certificate's gaps are measured against a wrong OPT.",
            RuntimeWarning,
            stacklevel=stacklevel + 1,
        )
    return beaten


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


class Corners:
    r"""The corner weights of ``LB(w) = max_j w·u_j``, kept up to date as members are added.

    The same vertex set as :func:`corner_weights` of the members added so far (up to the rounding
    to ``WEIGHT_DECIMALS`` both apply), without recomputing it from scratch: when ``u`` is added,
    the corners where ``u`` beats the envelope by more than ``tol`` are removed and the vertices
    of the region where ``u`` wins, ``R_u = {w ∈ Δ : w·u ≥ w·u_j ∀j}``, are added (the vertices
    of ``P' = P ∩ {s ≥ w·u}`` are those of ``P`` that satisfy the new constraint and those on the
    face ``s = w·u``, which is ``R_u``).  ``R_u`` is cut out only by the members active at a
    removed corner (any other member's region does not meet it); its vertices are checked
    against every member, and any doubt (an empty or thin ``R_u``, a Qhull error, a vertex
    that fails the check) falls back to :func:`corner_weights` from scratch, so the result
    never depends on the shortcut.

    Parameters
    ----------
    V : array_like (k, d), k ≥ 1
        The first members (corner weights computed from scratch).
    tol : float
        A member that beats the envelope by at most ``tol`` at every corner leaves the corners
        unchanged (``CORNER_TIE``, as :func:`corner_weights`).

    Attributes
    ----------
    weights : ndarray (m, d), read-only
        The current corner weights, rows on the simplex, distinct.  Order: the corners that
        survived each :meth:`add` keep their relative order; new corners are appended.  Use
        :meth:`sorted` for :func:`corner_weights`'s order.
    lb : ndarray (m,), read-only
        ``LB`` at each corner (over every member added).
    members : ndarray (k, d), read-only
        Every member added, in order (dominated and duplicate ones included).
    n_rebuilt : int
        How many :meth:`add` calls fell back to the computation from scratch.

    Examples
    --------
    >>> from palmopt.certify import Corners, corner_weights
    >>> c = Corners([[1.0, 0.0], [0.0, 1.0]])
    >>> removed, added = c.add([0.8, 0.8])
    >>> removed.tolist(), added.round(3).tolist()
    ([1], [[0.2, 0.8], [0.8, 0.2]])
    >>> bool(np.allclose(c.sorted(), corner_weights(c.members)))
    True
    """

    def __init__(self, V, *, tol=CORNER_TIE):
        U = as_matrix(V, "V")
        self.tol = float(tol)
        self.n_rebuilt = 0
        self._U = U.copy()
        self._set(corner_weights(U, tol=tol))

    def _set(self, W):
        self._W = np.ascontiguousarray(W)
        self._lb = (self._W @ self._U.T).max(axis=1)

    @property
    def weights(self):
        return _read_only(self._W)

    @property
    def lb(self):
        return _read_only(self._lb)

    @property
    def members(self):
        return _read_only(self._U)

    @property
    def d(self):
        return self._U.shape[1]

    def __len__(self):
        return len(self._W)

    def sorted(self):
        """The corner weights in :func:`corner_weights`'s order (lexicographic), as a new array."""
        return self._W[np.lexsort(self._W.T[::-1])]

    def add(self, u):
        """Add the member ``u`` (d,) and update the corners.

        Returns
        -------
        removed : ndarray of int
            Indices into the *previous* ``weights`` of the corners that are gone (``u`` beats
            the envelope there by more than ``tol``); the others keep their order.
        added : ndarray (p, d)
            The new corners, which are also the last ``p`` rows of ``weights`` now; ``LB`` at
            them is ``w·u`` (``u`` wins or ties there).

        After a fallback to the computation from scratch, ``removed`` lists every previous
        corner that is not (within ``1e-9``) a corner any more and ``added`` every corner that
        was not one before, so the contract is the same.
        """
        u = as_matrix(u, "u", self.d)[0]
        old_W, old_lb, old_U = self._W, self._lb, self._U
        self._U = np.vstack([old_U, u])
        beat = old_W @ u - old_lb
        gone = beat > self.tol
        if not gone.any():  # max_w w·u - LB(w) is attained at a corner: u never beats LB
            self._lb = np.maximum(old_lb, old_W @ u)
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.d))
        new = None
        try:
            new = self._region_vertices(u, old_W[gone], old_lb[gone], old_U)
        except Exception:  # Qhull or the LP on a thin region: recompute from scratch
            new = None
        if new is None:
            return self._rebuild(old_W)
        keep = old_W[~gone]
        tied = keep[beat[~gone] >= -1e-9]  # on the face s = w·u: they may be vertices of R_u too
        if len(tied) and len(new):
            close = (np.abs(new[:, None, :] - tied[None, :, :]).max(axis=2) <= 1e-9).any(axis=1)
            new = new[~close]  # a tied corner already present
        self._W = np.ascontiguousarray(np.vstack([keep, new]))
        self._lb = np.r_[np.maximum(old_lb[~gone], keep @ u), (new @ self._U.T).max(axis=1)]
        return np.flatnonzero(gone), new

    def _rebuild(self, old_W):
        self.n_rebuilt += 1
        W = corner_weights(self._U, tol=self.tol)
        near = np.abs(W[:, None, :] - old_W[None, :, :]).max(axis=2) <= 1e-9  # (new, old)
        surv = near.any(axis=0)
        fresh = ~near.any(axis=1)
        # survivors in their old order, then the fresh corners
        order = [int(np.argmax(near[:, i])) for i in np.flatnonzero(surv)]
        self._set(np.vstack([W[order], W[fresh]]))
        return np.flatnonzero(~surv), W[fresh]

    def _region_vertices(self, u, W_gone, lb_gone, U):
        """Vertices of ``R_u`` (rows on the simplex), or ``None`` when in doubt."""
        d = self.d
        # members active at a removed corner: only their regions meet R_u
        act = np.abs(W_gone @ U.T - lb_gone[:, None]) <= max(self.tol, 1e-9)
        J = np.flatnonzero(act.any(axis=0))
        # a cheap interior point: the most-beaten removed corner pulled towards the simplex centre
        i = int(np.argmax(W_gone @ u - lb_gone))
        alpha = min(0.5, float(W_gone[i] @ u - lb_gone[i]) / (4.0 * (np.abs(U).max() + np.abs(u).max() + 1.0)))
        guess = (1.0 - alpha) * W_gone[i] + alpha / d
        for members in (U[J], U):
            Y = _region_vertices(u, members, d, guess)
            if Y is None:
                return None
            W = _snap(Y)
            if len(W) and ((W @ U.T).max(axis=1) <= W @ u + 1e-9).all():  # w·u >= LB_old(w): in R_u
                return W
        return None


def _read_only(a):
    v = a.view()
    v.setflags(write=False)
    return v


def _snap(W):
    """Rows clipped to the simplex and deduplicated as :func:`corner_weights` does."""
    W = np.clip(W, 0.0, None)
    W = W / W.sum(axis=1, keepdims=True)
    W = np.unique(np.round(W, WEIGHT_DECIMALS), axis=0)
    return W / W.sum(axis=1, keepdims=True)


def _region_vertices(u, members, d, guess=None):
    """Vertices of ``{w ∈ Δ : w·(u_j - u) ≤ 0 ∀ members}`` in full coordinates, or ``None`` when
    the region is empty or thin (no ball of radius ``1e-9`` inside)."""
    # y = w[:-1], w[-1] = 1 - sum(y); rows [a | c] mean a·y + c <= 0
    A = members - u[None, :]
    H = np.vstack(
        [
            np.c_[-np.eye(d - 1), np.zeros(d - 1)],
            np.r_[np.ones(d - 1), -1.0][None, :],
            np.c_[A[:, :-1] - A[:, -1:], A[:, -1]],
        ]
    )
    H = H[np.abs(H[:, :-1]).max(axis=1) > 0] if len(H) else H
    bad = (np.abs(np.c_[A[:, :-1] - A[:, -1:]]).max(axis=1) == 0) & (A[:, -1] > 0) if len(A) else []
    if np.any(bad):
        return None  # a member that beats u everywhere: R_u is empty
    norms = np.linalg.norm(H[:, :-1], axis=1)
    centre = None if guess is None else guess[:-1]
    if centre is None or ((H[:, :-1] @ centre + H[:, -1]) / norms).max() > -1e-7:
        # Chebyshev centre: max r s.t. a·y + r|a| <= -c
        res = linprog(
            np.r_[np.zeros(d - 1), -1.0],
            A_ub=np.c_[H[:, :-1], norms],
            b_ub=-H[:, -1],
            bounds=[(None, None)] * (d - 1) + [(0, 1)],
            method="highs",
        )
        if res.status != 0 or res.x[-1] <= 1e-9:
            return None
        centre = res.x[:-1]
    if d - 1 == 1:  # an interval
        a, c = H[:, 0], H[:, 1]
        lo = max((-c[a < 0] / a[a < 0]).max(initial=-np.inf), 0.0)
        hi = min((-c[a > 0] / a[a > 0]).min(initial=np.inf), 1.0)
        Y = np.array([[lo], [hi]])
    else:
        from scipy.spatial import HalfspaceIntersection

        Y = HalfspaceIntersection(H, centre).intersections
    return np.c_[Y, 1.0 - Y.sum(axis=1)]


def _highs_core():
    """SciPy's bundled HiGHS bindings (a private module, present in SciPy ≥ 1.15), or ``None``."""
    try:
        from scipy.optimize._highspy import _core
    except ImportError:  # pragma: no cover - older SciPy: the linprog loop
        return None
    return _core if all(hasattr(_core, n) for n in ("_Highs", "ObjSense", "HighsModelStatus")) else None


class OptimisticBound:
    r"""The optimistic bound ``UB(w) = max {w·v : Q v ≤ b, lo ≤ v ≤ hi}`` at many weights, with
    queries added over time: :func:`upper_bound_opt`'s numbers, from one warm-started LP.

    One HiGHS model is built for ``(Q, b)`` and kept: each weight changes only the objective, so
    the simplex restarts from the previous optimal basis (a few pivots), and :meth:`add` appends
    rows (new queries) without rebuilding.  Every returned value is the *dual* bound recomputed
    with NumPy from the solver's multipliers, ``b·y + Σ_i max(c_i·hi, c_i·lo)`` with
    ``c = w - Qᵀy`` and ``y ≥ 0``, an upper bound on the LP optimum whatever the solver's
    accuracy (the same contract as :func:`upper_bound_opt`).  Without SciPy's bundled HiGHS
    bindings it falls back to one ``linprog`` per weight.

    Parameters
    ----------
    Q : array_like (m, d)
        Queried weights (``m = 0`` allowed: the box alone).
    b : array_like (m,)
        ``b_q ≥ OPT(Q_q)``.
    value_range : (float, float)
        ``(lo, hi)``, the box every achievable vector lies in.

    Examples
    --------
    >>> from palmopt.certify import OptimisticBound, upper_bound_opt
    >>> bound = OptimisticBound([[0.5, 0.5]], [0.6])
    >>> ub, gap = bound([[0.5, 0.5], [1.0, 0.0]])
    >>> ub.round(9).tolist(), gap < 1e-9
    ([0.6, 1.0], True)
    >>> bound.add([[1.0, 0.0]], [0.7])
    >>> bool(np.allclose(bound([[0.3, 0.7]])[0], upper_bound_opt([[0.3, 0.7]], bound.Q, bound.b)[0]))
    True
    >>> bound.set_bounds([0.55, 0.7])
    >>> round(float(bound([[0.5, 0.5]])[0][0]), 9)
    0.55
    """

    def __init__(self, Q, b, value_range=(0.0, 1.0), *, d=None):
        Q = np.asarray(Q, dtype=np.float64)
        d = Q.shape[-1] if d is None else int(d)
        self.Q = Q.reshape(-1, d)
        self.b = np.asarray(b, dtype=np.float64).reshape(-1)
        if len(self.b) != len(self.Q):
            raise ValueError(f"`Q` has {len(self.Q)} rows but `b` has {len(self.b)} entries.")
        self.lo, self.hi = (float(x) for x in value_range)
        self.d = d
        self._core = _highs_core()
        self._h = None
        if self._core is not None:
            h = self._core._Highs()
            h.setOptionValue("output_flag", False)
            for key, value in _HIGHS_OPTIONS.items():  # a warm start stops at HiGHS's tolerances
                h.setOptionValue(key, value)
            # only the objective changes between solves: the last basis stays primal feasible
            h.setOptionValue("presolve", "off")
            h.setOptionValue("simplex_strategy", 4)  # primal simplex
            h.addVars(d, np.full(d, self.lo), np.full(d, self.hi))
            h.changeObjectiveSense(self._core.ObjSense.kMaximize)
            self._h = h
            self._add_rows(self.Q, self.b)

    def _add_rows(self, Q, b):
        if self._h is None or not len(Q):
            return
        m, d = Q.shape
        self._h.addRows(
            m,
            np.full(m, -np.inf),
            b,
            m * d,
            np.arange(0, m * d, d, dtype=np.int32),
            np.tile(np.arange(d, dtype=np.int32), m),
            np.ascontiguousarray(Q).ravel(),
        )

    def add(self, Q, b):
        """Append queries: rows ``Q`` (p, d) with bounds ``b`` (p,)."""
        Q = np.asarray(Q, dtype=np.float64).reshape(-1, self.d)
        b = np.asarray(b, dtype=np.float64).reshape(-1)
        if len(b) != len(Q):
            raise ValueError(f"`Q` has {len(Q)} rows but `b` has {len(b)} entries.")
        self.Q = np.vstack([self.Q, Q])
        self.b = np.r_[self.b, b]
        self._add_rows(Q, b)

    def set_bounds(self, b):
        """Replace every ``b_q`` (m,) -- e.g. when a noise allowance changes -- keeping the rows."""
        b = np.asarray(b, dtype=np.float64).reshape(-1)
        if len(b) != len(self.Q):
            raise ValueError(f"`b` must have {len(self.Q)} entries; got {len(b)}.")
        if self._h is not None:
            for i in np.flatnonzero(b != self.b):
                self._h.changeRowBounds(int(i), -np.inf, float(b[i]))
        self.b = b.copy()

    def __call__(self, W):
        """``(ub, lp_gap)`` at the rows of ``W`` (n, d), as :func:`upper_bound_opt`."""
        W = np.atleast_2d(np.asarray(W, dtype=np.float64))
        if self._h is None or not len(self.Q):
            return _upper_bound_lp(W, self.Q, self.b, self.lo, self.hi)
        h, core = self._h, self._core
        idx = np.arange(self.d, dtype=np.int32)
        n, m = len(W), len(self.Q)
        X, Y = np.zeros((n, self.d)), np.zeros((n, m))
        ok = np.zeros(n, dtype=bool)
        for i, w in enumerate(W):
            h.changeColsCost(self.d, idx, w)
            h.run()
            if h.getModelStatus() != core.HighsModelStatus.kOptimal:
                continue
            sol = h.getSolution()
            X[i], Y[i] = sol.col_value, sol.row_dual
            ok[i] = True
        # the verified dual bound b·y + Σ max(c·hi, c·lo), c = w - Qᵀy, for y >= 0 of either sign
        # convention (HiGHS's row duals of a maximisation are >= 0 at ``<=`` rows; both are valid
        # once clipped at 0): keep the tighter
        ub = np.full(n, np.inf)
        for sign in (1.0, -1.0):
            Ys = np.maximum(sign * Y, 0.0)
            Cr = W - Ys @ self.Q
            ub = np.minimum(ub, Ys @ self.b + np.maximum(Cr * self.hi, Cr * self.lo).sum(axis=1))
        primal = np.einsum("ij,ij->i", W, np.clip(X, self.lo, self.hi))
        gap = float((ub - primal)[ok].max(initial=0.0))
        if not ok.all():  # the warm model failed there (degenerate data): the plain LP decides
            ub[~ok], gap_lp = _upper_bound_lp(W[~ok], self.Q, self.b, self.lo, self.hi)
            gap = max(gap, gap_lp)
        return ub, gap


def _upper_bound_lp(W, Q, b, lo, hi):
    """One ``linprog`` per row of ``W`` (the plain path of :func:`upper_bound_opt`)."""
    d = W.shape[1]
    ub = np.empty(len(W))
    gap = 0.0
    for i, w in enumerate(W):
        res = linprog(-w, A_ub=Q if len(Q) else None, b_ub=b if len(Q) else None, bounds=[(lo, hi)] * d, method="highs")
        if res.status != 0:
            ub[i], gap = float(np.maximum(w * hi, w * lo).sum()), np.inf  # the box alone
            continue
        y = np.maximum(-res.ineqlin.marginals, 0.0) if len(Q) else np.zeros(0)
        c = w - Q.T @ y if len(Q) else w
        ub[i] = float(b @ y + np.maximum(c * hi, c * lo).sum())
        gap = max(gap, ub[i] - float(w @ np.clip(res.x, lo, hi)))
    return ub, gap


def upper_bound_opt(W, Q, b, value_range=(0.0, 1.0), *, method="auto"):
    """The optimistic bound ``UB(w) = max {w·v : Q v ≤ b, lo ≤ v ≤ hi}`` at each row of ``W``.

    Every achievable ``v`` satisfies ``w_q·v ≤ OPT(w_q)`` at each queried ``w_q`` (rows of ``Q``,
    with ``b_q ≥ OPT(w_q)``) and lies in the oracle's declared ``value_range = (lo, hi)``, so
    ``UB ≥ OPT``.  The value returned is the *dual* bound recomputed with NumPy from the
    solver's multipliers, ``b·y + Σ_i max(c_i·hi, c_i·lo)`` with ``c = w - Qᵀy`` and ``y ≥ 0`` --
    an upper bound on the LP optimum by weak duality whatever the solver's accuracy.  Returns
    ``(ub, lp_gap)`` where ``lp_gap`` is the largest distance between that bound and the primal
    value.

    ``method="auto"`` solves all rows with one warm-started HiGHS model
    (:class:`OptimisticBound`; about ten times faster than a ``linprog`` per row);
    ``method="lp"`` is one ``linprog`` per row.  Both return verified dual bounds.
    """
    method = check_choice(method, "method", ("auto", "lp"))
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    d = W.shape[1]
    Q = np.asarray(Q, dtype=np.float64).reshape(-1, d)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if method == "auto":
        return OptimisticBound(Q, b, value_range, d=d)(W)
    lo, hi = (float(x) for x in value_range)
    return _upper_bound_lp(W, Q, b, lo, hi)
