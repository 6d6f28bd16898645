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
optimum; when the two are further apart than ``LP_SANDWICH_TOL`` the certificate's status is
downgraded to ``"numerical-trouble"``.
"""

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import linprog

from ._validation import as_matrix, check_fraction

__all__ = ["Certificate", "certify", "reference_vectors"]

#: Largest accepted gap between an LP's verified primal value and its verified dual bound.
LP_SANDWICH_TOL = 1e-7


@dataclass(frozen=True)
class Certificate:
    """The outcome of an exact whole-simplex check.

    Attributes
    ----------
    holds : bool
        ``violation <= tol``: every ``w`` has a member with ``w·u ≥ (1-eps) OPT(w) - delta``.
    violation : float
        ``max_w (1-eps) OPT(w) - delta - max_j w·u_j`` (``<= 0`` when it holds).
    worst_weight : ndarray (d,)
        A weight attaining ``violation``.
    eps_star, eps_weight :
        Worst pure multiplicative gap ``max(0, 1 - min_w LB(w)/OPT(w))`` and a weight attaining
        it (``None`` when there is no gap).
    delta_star, delta_weight :
        Worst pure additive gap ``max_w OPT(w) - LB(w)`` and a weight attaining it.
    eps, delta : float
        The guarantee that was checked.
    status : {"ok", "numerical-trouble", "black-box"}
        ``"ok"``: every LP's primal and dual values agree within ``LP_SANDWICH_TOL`` when
        recomputed with NumPy.  ``"black-box"``: an upper bound on OPT was used instead of an
        exact front (adaptive runs); valid for an exact oracle.
    max_lp_gap : float
        The largest primal-dual disagreement seen.
    n_lps : int
    """

    holds: bool
    violation: float
    worst_weight: np.ndarray
    eps_star: float
    eps_weight: np.ndarray
    delta_star: float
    delta_weight: np.ndarray
    eps: float
    delta: float
    status: str
    max_lp_gap: float
    n_lps: int

    def __repr__(self):
        return (
            f"Certificate(holds={self.holds}, eps={self.eps:g}, delta={self.delta:g}, "
            f"violation={self.violation:.4g}, eps_star={self.eps_star:.4g}, "
            f"delta_star={self.delta_star:.4g}, status={self.status!r})"
        )

    def to_dict(self):
        """A JSON-serialisable dict (arrays as lists)."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        for key in ("worst_weight", "eps_weight", "delta_weight"):
            if data[key] is not None:
                data[key] = np.asarray(data[key], dtype=np.float64)
        return cls(**data)


def reference_vectors(reference, d=None):
    """An (n, d) array of achievable vectors from an array, or from an object that provides
    one through ``reference_front()`` (an exact oracle) or ``values`` (a portfolio)."""
    if hasattr(reference, "reference_front"):
        reference = reference.reference_front()
    elif hasattr(reference, "values") and not isinstance(reference, np.ndarray):
        reference = reference.values
    return np.unique(as_matrix(reference, "reference", d), axis=0)


def _solve(c, A_ub, b_ub, A_eq, b_eq, xmax):
    """min c·x, A_ub x ≤ b_ub, A_eq x = b_eq, x[:-1] ≥ 0, x[-1] free.

    Returns the primal point and a NumPy-verified lower bound on the optimum from the
    solver's dual multipliers (weak duality; ``xmax`` bounds |x| on the feasible set).
    """
    n = len(c)
    res = linprog(
        c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=[(0, None)] * (n - 1) + [(None, None)], method="highs"
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


def _min_ratio(U, t, A_ub, b_ub, A_simplex, box, max_iter=60):
    """Dinkelbach's iteration for ``min_{w∈Δ, w·t>0} LB(w) / (w·t)``.

    Each step solves the well-conditioned simplex LP ``F(ρ) = min_w LB(w) - ρ w·t`` and moves
    ``ρ`` to the ratio at its minimiser; ``ρ`` decreases strictly until ``F(ρ) = 0``.  Returns the
    witness and ``(n_lps, trouble, primal-dual gap)``; the gap is in the units of ``F``.
    """
    d = len(t)
    w = np.eye(d)[int(np.argmax(t))]
    lb = float((U @ w).max())
    rho = lb / float(w @ t)
    for it in range(1, max_iter + 1):
        x, dual = _solve(np.r_[-rho * t, 1.0], A_ub, b_ub, A_simplex, np.ones(1), box)
        if x is None:
            return w, (it, True, np.inf)
        v = np.clip(x[:d], 0, None)
        v /= v.sum()
        value = float((U @ v).max()) - rho * float(v @ t)  # verified F at the LP's point
        if float(v @ t) <= 0.0 or float((U @ v).max()) / float(v @ t) >= rho - 1e-15:
            return w, (it, False, max(value, 0.0) - dual)  # no better ratio: F(rho) = 0
        w, rho = v, float((U @ v).max()) / float(v @ t)
    return w, (max_iter, True, np.inf)


def certify(portfolio, reference, eps=0.0, delta=0.0, *, tol=1e-9):
    r"""Check a portfolio against a reference front over the whole simplex, exactly.

    Parameters
    ----------
    portfolio : Portfolio or array_like (k, d)
        The members' value vectors.
    reference : array_like (n, d), or an object with ``reference_front()`` or ``values``
        Achievable vectors whose upper envelope is OPT (an exact front).
    eps, delta : float in [0, 1)
        The guarantee to check, ``w·u ≥ (1-eps) OPT(w) - delta``.
    tol : float
        ``holds`` means ``violation <= tol``.

    Returns
    -------
    Certificate

    Notes
    -----
    Per reference vector: one LP for the mixed and additive gaps (two when ``eps > 0``) and a
    few Dinkelbach steps for the multiplicative gap, each LP with ``d + 1`` variables and ``k``
    constraints; see the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt import certify
    >>> T = np.array([[1.0, 0.0], [0.8, 0.8], [0.0, 1.0]])
    >>> certify(T[[0, 2]], T, eps=0.2).holds          # the corners miss (0.8, 0.8) at w = (½, ½)
    False
    >>> cert = certify(T[[1]], T, eps=0.2, delta=0.0)
    >>> cert.holds, round(cert.eps_star, 3), round(cert.delta_star, 3)
    (True, 0.2, 0.2)
    """
    U = as_matrix(getattr(portfolio, "values", portfolio), "portfolio")
    k, d = U.shape
    T = reference_vectors(reference, d)
    eps = check_fraction(eps, "eps", allow_zero=True)
    delta = check_fraction(delta, "delta", allow_zero=True)

    A_ub = np.c_[U, -np.ones(k)]  # w·u_j - s <= 0
    b_ub = np.zeros(k)
    A_simplex = np.r_[np.ones(d), 0.0][None, :]
    smax = max(float(np.abs(U).max()), 1.0)
    box = np.r_[np.ones(d), smax]

    def lb(w):
        return float((U @ w).max())

    worst = (-np.inf, None)
    add = (-np.inf, None)
    ratio = (1.0, None)  # no multiplicative gap unless a weight with LB < OPT is found
    gap, n_lps, trouble = 0.0, 0, False
    for t in T:
        for scale in sorted({1.0 - eps, 1.0}):  # one LP when eps = 0
            x, dual = _solve(np.r_[-scale * t, 1.0], A_ub, b_ub, A_simplex, np.ones(1), box)
            n_lps += 1
            if x is None:
                trouble = True
                continue
            w = np.clip(x[:d], 0, None)
            w /= w.sum()
            value = scale * float(w @ t) - lb(w)  # verified witness value
            gap = max(gap, -dual - value)  # the optimum lies in [value, -dual]
            if scale == 1.0 - eps and value - delta > worst[0]:
                worst = (value - delta, w)
            if scale == 1.0 and value > add[0]:
                add = (value, w)
        if not np.any(t > 0):
            continue  # OPT = 0 along t: no multiplicative requirement
        w, n = _min_ratio(U, t, A_ub, b_ub, A_simplex, box)
        n_lps += n[0]
        trouble |= n[1]
        gap = max(gap, n[2])
        if w is not None:
            r_opt = lb(w) / float((T @ w).max())  # verified LB(w) / OPT(w) at the witness
            if r_opt < ratio[0]:
                ratio = (r_opt, w)
    status = "numerical-trouble" if trouble or gap > LP_SANDWICH_TOL else "ok"
    return Certificate(
        holds=bool(worst[0] <= tol),
        violation=float(worst[0]),
        worst_weight=worst[1],
        eps_star=float(1.0 - ratio[0]),
        eps_weight=ratio[1],
        delta_star=float(add[0]),
        delta_weight=add[1],
        eps=eps,
        delta=delta,
        status=status,
        max_lp_gap=float(gap),
        n_lps=n_lps,
    )
