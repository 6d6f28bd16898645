r"""The smallest (eps, delta)-portfolio made of a known front's members, certified.

For an instance whose achievable vectors ``T = {t_1..t_n}`` are known (a tabular MOMDP's
``reference_front()``), the smallest portfolio ``P ⊆ T`` with

.. math:: \forall w ∈ Δ_d\ \exists t ∈ P:\quad w·t ≥ (1-ε)\,OPT(w) - δ, \qquad OPT(w) = \max_{t∈T} w·t,

is a set cover with infinitely many rows (one per ``w``).  :func:`minimum_portfolio` solves it by
row generation:

1. rows = a lattice of weights (the vertices included); member ``j`` covers row ``w`` iff
   ``w·t_j ≥ (1-ε) OPT(w) - δ - tol``; a row whose covering set contains another row's is
   implied by it and dropped, and so is a column whose rows lie inside another column's;
2. solve the set cover exactly (integer programme, :func:`palmopt.prune.set_cover`);
3. look for weights the chosen subset fails: one small LP per front point that could still
   beat it somewhere (a Lipschitz bound on the lattice rules the others out); if there are
   none, certify the subset over the whole simplex (:func:`palmopt.certify`) and, if it fails
   -- the net missed a region -- take the certificate's worst weight (and its pure-gap
   witnesses).  Add them as rows and go back to 2.

Every row is a real constraint, so the integer programme's optimum is a **lower bound** on the
true minimum; a certified subset is an **upper bound**.  When the loop ends certified the two
coincide and the size is exactly minimal.  The rows added in step 3 include one that the current
subset fails by more than ``tol``, so each round cuts off the previous solution.

Weakly dominated and duplicate front points are dropped first (``t ≤ t'`` coordinatewise gives
``w·t ≤ w·t'`` for every ``w ≥ 0``, so ``t'`` can replace ``t`` in any portfolio): neither the
minimum nor ``OPT`` changes.
"""

import math
import numbers
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from .validation import as_matrix, check_count, check_fraction, undominated
from .bounds import lattice_resolution
from .certify import Certificate, certify
from .nets import cover
from .prune import set_cover
from .tolerances import RANGE_ATOL

__all__ = ["MinimumPortfolio", "minimum_portfolio"]

#: Largest number of points of the default lattice (the initial rows).
DEFAULT_GRID_POINTS = 50_000
#: Refuse lattices with more points.
MAX_LATTICE_POINTS = 2_000_000


@dataclass(frozen=True, repr=False, eq=False)
class MinimumPortfolio:
    """The smallest certified (eps, delta)-portfolio of a front's members.

    Attributes
    ----------
    members : ndarray of int64, shape (size,)
        Indices of the chosen members in the front (the array passed, or
        ``reference.reference_front()``); sorted.
    values : ndarray, shape (size, d)
        Their value vectors, ``front[members]``.
    size : int
        ``len(members)``.
    certificate : Certificate
        The whole-simplex check of ``values`` against the front.
    status : {"certified", "max-rounds", "time-limit", "numerical-trouble"}
        ``"certified"``: the members form a minimum (eps, delta)-portfolio over the whole simplex.
        ``"max-rounds"``: still not certified after ``max_rounds`` integer programmes (the
        members are the last, uncertified, solution).  ``"time-limit"``: an integer programme
        was not solved within ``time_limit``; the later rounds repair greedy covers instead,
        and the members are the last one (see ``certificate.holds``).  ``"numerical-trouble"``: the certificate's LPs disagreed with
        their duals, or a repair row did not cut off the current solution.
    rounds : int
        Integer programmes started (1 when the initial lattice sufficed).
    lower_bound : int
        No (eps, delta)-portfolio of front members is smaller: the last proven integer
        programme's optimum (every row is a real constraint), or, after a time-out, the larger
        of that and the LP relaxation's dual bound (verified with NumPy) over the final rows.
    upper_bound : int
        The size of a certified portfolio of front members: ``size`` when the members are
        certified, else the number of distinct undominated front points (the front itself
        serves everyone exactly).
    exact : bool
        ``lower_bound == upper_bound``: ``size`` is the true minimum.
    eps, delta : float
        The guarantee.
    n_rows : int
        Weights used as rows (initial lattice plus repair rows; the integer programme keeps only
        the rows that no other row implies).
    n_candidates : int
        Distinct, weakly undominated front points (the integer programme's columns).
    grid_eps : float
        Additive resolution of the initial lattice (``palmopt.cover(d, grid_eps, kind="additive")``).
    repair_weights : ndarray, shape (r, d)
        The rows added by the repair rounds (weights the lattice missed).
    """

    members: np.ndarray
    values: np.ndarray
    certificate: Certificate
    status: str
    rounds: int
    lower_bound: int
    upper_bound: int
    eps: float
    delta: float
    n_rows: int
    n_candidates: int
    grid_eps: float
    repair_weights: np.ndarray

    def __post_init__(self):
        for name in ("members", "values", "repair_weights"):
            getattr(self, name).setflags(write=False)

    @property
    def size(self):
        return int(self.members.shape[0])

    @property
    def exact(self):
        return self.lower_bound == self.upper_bound

    @property
    def d(self):
        return self.values.shape[1]

    def __len__(self):
        return self.size

    def __repr__(self):
        return (
            f"MinimumPortfolio(size={self.size}, status={self.status!r}, exact={self.exact}, "
            f"lower_bound={self.lower_bound}, upper_bound={self.upper_bound}, rounds={self.rounds}, "
            f"eps={self.eps:g}, delta={self.delta:g}, n_candidates={self.n_candidates}, n_rows={self.n_rows})"
        )


def _front(reference):
    """The front as given (rows index ``members``), from an array or ``reference_front()``."""
    if hasattr(reference, "reference_front"):
        reference = reference.reference_front()
    T = as_matrix(reference, "reference")
    if T.min() < -RANGE_ATOL or T.max() > 1.0 + RANGE_ATOL:
        r, c = np.argwhere((T < -RANGE_ATOL) | (T > 1.0 + RANGE_ATOL))[0]
        raise ValueError(
            f"`reference` must lie in [0, 1]^d (normalised rewards); row {r} has {T[r, c]} in column {c}."
        )
    return T


def _lattice_eps(d, n_points):
    """The additive tolerance of the finest simplex lattice with at most ``n_points`` points."""
    if d == 1:
        return float("nan")  # the simplex is one point
    N = 1
    while math.comb(N + d, d - 1) <= n_points:
        N += 1
    radius = 2 * (d // 2) * ((d + 1) // 2) / d  # lattice_resolution(d, radius / N) == N
    return radius / N


def _lattice(d, g, name):
    """Lattice points of ``cover(d, g, kind="additive")`` and their L1 covering radius."""
    if d == 1:
        return np.ones((1, 1)), 0.0
    N = lattice_resolution(d, g)
    if math.comb(N + d - 1, d - 1) > MAX_LATTICE_POINTS:
        raise ValueError(
            f"`{name}`={g} gives a lattice of more than {MAX_LATTICE_POINTS:,} weights in d={d}; "
            f"use a coarser one."
        )
    radius = 2 * (d // 2) * ((d + 1) // 2) / d / N
    return np.array(cover(d, g, kind="additive").points), radius


def _rows(W, T, eps, delta, tol, chunk=8192):
    """0/1 matrix (len(W), len(T)): does front point ``j`` serve weight ``w`` within (eps, delta)?"""
    C = np.empty((len(W), len(T)), dtype=np.uint8)
    for s in range(0, len(W), chunk):
        S = W[s : s + chunk] @ T.T
        need = (1.0 - eps) * S.max(axis=1) - delta - tol
        C[s : s + chunk] = S >= need[:, None]
    return C


def _pack(C):
    """Rows of a 0/1 matrix as bit sets, uint64 words."""
    B = np.packbits(C.astype(bool), axis=1)
    B = np.pad(B, ((0, 0), (0, (-B.shape[1]) % 8)))
    return np.ascontiguousarray(B).view(np.uint64)


def _minimal_rows(C, chunk=128):
    """The distinct rows of the 0/1 matrix ``C`` whose column set contains no other row's.

    A row that contains another is implied by it, so the set cover keeps its feasible set.
    Rows are taken by increasing size and each is compared with the minimal rows kept so far
    only (a row containing any row contains a minimal one).
    """
    P = _pack(C)
    _, first = np.unique(P, axis=0, return_index=True)
    size = C[first].sum(axis=1)
    kept = []
    K = np.empty((0, P.shape[1]), dtype=np.uint64)
    for s in np.unique(size):
        block = first[size == s]  # distinct rows of equal size: none contains another
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


def _exact_cover(M, time_limit=None):
    """A minimum set cover of the rows of ``M`` (column indices): drop every column whose rows
    lie inside another column's (the optimum is unchanged), then the exact integer programme.
    ``RuntimeError`` when it is not proven optimal within ``time_limit`` seconds."""
    order = np.lexsort((np.arange(M.shape[1]), M.sum(axis=0)))  # ascending count, then index
    P = _pack(M.T)[order]
    keep = np.ones(M.shape[1], dtype=bool)
    for i, a in enumerate(order[:-1]):
        # implied when a later column (as many rows or more) contains its rows
        keep[a] = not ((P[i + 1 :] & P[i]) == P[i]).all(axis=1).any()
    cols = np.flatnonzero(keep)
    return cols[set_cover(_minimal_rows(M[:, cols]), "exact", time_limit=time_limit)]


def _lp_bound(M):
    """A lower bound on the set cover of the rows of ``M`` from its LP relaxation's dual,
    verified with NumPy: any ``y ≥ 0`` with ``Mᵀy ≤ 1`` gives ``Σ y ≤`` every cover's size."""
    A = M.astype(np.float64)
    res = linprog(np.ones(M.shape[1]), A_ub=-A, b_ub=-np.ones(len(M)), bounds=(0, 1), method="highs")
    if res.status != 0:
        return 1
    y = np.clip(-res.ineqlin.marginals, 0.0, None)
    bound = y.sum() / max(1.0, float((A.T @ y).max()))
    return max(1, math.ceil(bound - 1e-9))


def _lp_witnesses(U, T, W, radius, eps, delta, tol, chunk=8192):
    """Weights at which the subset ``U`` fails some ``t ∈ T``, one small LP per suspect ``t``.

    ``f_t(w) = (1-eps) w·t - delta - LB(w)`` moves by at most ``||w - w'||_1`` for values in
    [0, 1] (each term by at most half of it), so a ``t`` whose maximum over the lattice ``W``
    (L1 covering radius ``radius``) is below ``-radius - tol`` fails nowhere: no LP for it.
    The LP is the certificate's mixed LP, ``max (1-eps) w·t - s`` s.t. ``s ≥ w·u_j``, ``w ∈ Δ``.
    """
    best = np.full(len(T), -np.inf)
    for s in range(0, len(W), chunk):
        Wc = W[s : s + chunk]
        F = (1.0 - eps) * (Wc @ T.T) - (Wc @ U.T).max(axis=1)[:, None]
        np.maximum(best, F.max(axis=0) - delta, out=best)
    k, d = U.shape
    A_ub, b_ub = np.c_[U, -np.ones(k)], np.zeros(k)
    A_eq = np.r_[np.ones(d), 0.0][None, :]
    found = []
    for i in np.flatnonzero(best >= -1.01 * radius - tol):
        res = linprog(
            np.r_[-(1.0 - eps) * T[i], 1.0],
            A_ub=A_ub,
            b_ub=b_ub,
            A_eq=A_eq,
            b_eq=[1.0],
            bounds=[(0, None)] * d + [(None, None)],
            method="highs",
        )
        if res.status != 0:
            continue  # the certificate has the last word
        w = np.clip(res.x[:d], 0.0, None)
        w /= w.sum()
        if (1.0 - eps) * (T @ w).max() - delta - (U @ w).max() > tol:
            found.append(w)
    return np.array(found).reshape(-1, d)


def minimum_portfolio(reference, eps, delta, *, grid_eps=None, max_rounds=20, time_limit=None, tol=1e-9):
    r"""The smallest (eps, delta)-portfolio made of a known front's members, certified exactly.

    Parameters
    ----------
    reference : array_like (n, d), or an object with ``reference_front()``
        The achievable vectors (e.g. a tabular MOMDP's exact front), in [0, 1]^d.  ``OPT`` is
        their upper envelope and the members are chosen among them.
    eps, delta : float in [0, 1)
        The guarantee ``w·t ≥ (1-eps) OPT(w) - delta`` for every ``w`` on the simplex.
    grid_eps : float in (0, 1), optional
        Resolution of the initial rows, the lattice ``palmopt.cover(d, grid_eps,
        kind="additive")`` (only its rows that no other row implies reach the integer
        programme).  Default: the finest lattice with at most 50,000 points (spacing
        ``1/49999`` for d = 2, ``1/314`` for d = 3, ``1/64`` for d = 4).  A coarser lattice
        makes smaller integer programmes and more repair rounds.
    max_rounds : int, default 20
        Integer programmes to solve at most.
    time_limit : float, optional
        Seconds for all the integer programmes together (default: no limit).  When it runs
        out, the remaining rounds repair greedy set covers instead; the result has
        ``status="time-limit"``, the last greedy cover (certified when the rounds sufficed),
        and bounds ``lower_bound <= minimum <= upper_bound``.
    tol : float in [0, 1), default 1e-9
        Slack of the covering test and of the certificate (``Certificate.holds``).

    Returns
    -------
    MinimumPortfolio
        ``status == "certified"`` and ``exact`` when the minimum was found; otherwise
        ``lower_bound <= minimum <= upper_bound``.

    Raises
    ------
    TypeError, ValueError
        Invalid arguments, or a front outside [0, 1]^d.
    RuntimeError
        The integer programme did not reach a proven optimum (HiGHS).

    Notes
    -----
    Row generation on the set cover whose rows are all ``w ∈ Δ_d`` (module docstring).  With
    ``R`` the rows used, ``IP(R) ≤ IP(Δ_d) = minimum``, and the returned subset is feasible for
    ``R``; once :func:`palmopt.certify` proves it feasible for all of ``Δ_d``, its size is
    ``IP(R)``, hence minimal among portfolios of front members.  (Policies off the front --
    mixtures, dominated ones -- never serve anyone better than the front's best member, so this
    is also the minimum over all portfolios whose members' values lie under the front.)

    Cost: one ``(m, n)`` covering matrix for the ``m`` lattice weights; integer programmes over
    its implied-row-free part (typically a few thousand rows; the integer programme is the
    slow step when the minimum is large, e.g. over 15 members in d = 4); a few LPs per round;
    and one :func:`palmopt.certify` (about ``4 n`` LPs) per candidate that passes them.

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.minimum import minimum_portfolio
    >>> T = np.array([[1.0, 0.0], [0.9, 0.5], [0.5, 0.9], [0.0, 1.0], [0.4, 0.4]])
    >>> m = minimum_portfolio(T, 0.1, 0.05)
    >>> m.size, m.members.tolist(), m.exact, m.certificate.holds
    (2, [1, 2], True, True)
    """
    front = _front(reference)
    d = front.shape[1]
    eps = check_fraction(eps, "eps", allow_zero=True)
    delta = check_fraction(delta, "delta", allow_zero=True)
    grid_eps = _lattice_eps(d, DEFAULT_GRID_POINTS) if grid_eps is None else check_fraction(grid_eps, "grid_eps")
    max_rounds = check_count(max_rounds, "max_rounds")
    if time_limit is not None:
        if isinstance(time_limit, bool) or not isinstance(time_limit, numbers.Real):
            raise TypeError(f"`time_limit` must be a number of seconds or None; got {time_limit!r}.")
        if not time_limit > 0:
            raise ValueError(f"`time_limit` must be > 0 seconds; got {time_limit}.")
    tol = check_fraction(tol, "tol", allow_zero=True)
    deadline = None if time_limit is None else time.monotonic() + float(time_limit)

    cand = undominated(front)
    T = front[cand]
    W, radius = _lattice(d, grid_eps, "grid_eps")
    M = _minimal_rows(_rows(W, T, eps, delta, tol))
    n_rows = len(W)
    repairs = []
    status, rounds, lower, method = "max-rounds", 0, 1, "exact"
    while rounds < max_rounds:
        rounds += 1
        if method == "exact":
            try:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise RuntimeError("time limit reached")
                chosen = _exact_cover(M, left)
                lower = len(chosen)  # rows only grow: each proven optimum is at least the last
            except RuntimeError:
                if deadline is None:
                    raise
                method = "greedy"  # from now on: repair greedy covers, for a certified upper bound
        if method == "greedy":
            chosen = set_cover(M, "greedy")
        U = T[chosen]
        cert = None
        new = _lp_witnesses(U, T, W, radius, eps, delta, tol)
        if not len(new):
            cert = certify(U, T, eps, delta, tol=tol)
            if cert.status != "ok":
                status = "numerical-trouble"
                break
            if cert.holds:
                status = "certified" if method == "exact" else "time-limit"
                break
            new = np.array([w for w in (cert.worst_weight, cert.eps_weight, cert.delta_weight) if w is not None])
        C_new = _rows(new, T, eps, delta, tol)
        if C_new[:, chosen].any(axis=1).all():  # no new row cuts off this solution
            status = "numerical-trouble"
            break
        repairs.append(new)
        n_rows += len(new)
        M = _minimal_rows(np.vstack([M, C_new]))
    if method == "greedy":
        lower = max(lower, _lp_bound(M))
        if status == "max-rounds":
            status = "time-limit"
    if cert is None:
        cert = certify(U, T, eps, delta, tol=tol)
    if cert.holds and cert.status == "ok":
        upper = min(len(chosen), len(cand))
    else:
        upper = len(cand)
    members = np.sort(cand[chosen])
    return MinimumPortfolio(
        members=members,
        values=front[members],
        certificate=cert,
        status=status,
        rounds=rounds,
        lower_bound=int(min(lower, upper)),
        upper_bound=int(upper),
        eps=eps,
        delta=delta,
        n_rows=int(n_rows),
        n_candidates=int(len(cand)),
        grid_eps=float(grid_eps),
        repair_weights=np.concatenate(repairs) if repairs else np.empty((0, d)),
    )
