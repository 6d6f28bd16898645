r"""The smallest (eps, delta)-portfolio made of a known front's members, certified.

For an instance whose achievable vectors ``T = {t_1..t_n}`` are known (a tabular MOMDP's
``reference_front()``), the smallest portfolio ``P ⊆ T`` with

.. math:: \forall w ∈ Δ_d\ \exists t ∈ P:\quad w·t ≥ (1-ε)\,OPT(w) - δ, \qquad OPT(w) = \max_{t∈T} w·t,

is a set cover with infinitely many rows (one per ``w``).  :func:`minimum_portfolio` solves it by
row generation:

1. rows = a lattice of weights (the vertices included); member ``j`` covers row ``w`` iff
   ``w·t_j ≥ (1-ε) OPT(w) - δ - SHORTFALL``; a row whose covering set contains another row's is
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
subset fails by more than ``SHORTFALL``, so each round cuts off the previous solution.

Weakly dominated and duplicate front points are dropped first (``t ≤ t'`` coordinatewise gives
``w·t ≤ w·t'`` for every ``w ≥ 0``, so ``t'`` can replace ``t`` in any portfolio): neither the
minimum nor ``OPT`` changes.
"""

import time
from dataclasses import dataclass

import numpy as np

from . import lattice
from .certificate import Certificate
from .certify import certify, max_shortfall, reference_vectors
from .prune import lp_lower_bound, minimal_rows, set_cover
from .status import Status
from .tolerances import RANGE_ATOL, SHORTFALL
from .validation import check_count, check_fraction, check_real, check_tolerances, undominated

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
    status : Status
        ``SUCCESS``: the members form a minimum (eps, delta)-portfolio over the whole simplex.
        ``BUDGET_EXHAUSTED``: still not certified after ``max_rounds`` integer programmes (the
        members are the last, uncertified, solution).  ``TIME_LIMIT``: an integer programme
        was not solved within ``time_limit``; the later rounds repair greedy covers instead,
        and the members are the last one (see ``certificate.holds``).  ``NUMERICAL_TROUBLE``:
        the certificate's LPs disagreed with their duals, the integer programme's answer did
        not verify, or a repair row did not cut off the current solution.
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
    status: Status
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
            f"MinimumPortfolio(size={self.size}, status={str(self.status)!r}, exact={self.exact}, "
            f"lower_bound={self.lower_bound}, upper_bound={self.upper_bound}, rounds={self.rounds}, "
            f"eps={self.eps:g}, delta={self.delta:g}, n_candidates={self.n_candidates}, n_rows={self.n_rows})"
        )


def _front(reference):
    """The front as given (rows index ``members``), checked to lie in [0, 1]^d."""
    T = reference_vectors(reference, unique=False)
    if T.min() < -RANGE_ATOL or T.max() > 1.0 + RANGE_ATOL:
        r, c = np.argwhere((T < -RANGE_ATOL) | (T > 1.0 + RANGE_ATOL))[0]
        raise ValueError(
            f"`reference` must lie in [0, 1]^d (normalised rewards); row {r} has {T[r, c]} in column {c}."
        )
    return T


def _lattice(d, grid_eps):
    """Points of ``cover(d, grid_eps, kind="additive")`` and their L1 covering radius."""
    if d == 1:
        return np.ones((1, 1)), 0.0
    N = lattice.resolution(d, grid_eps)
    if lattice.size(d, N) > MAX_LATTICE_POINTS:
        raise ValueError(
            f"`grid_eps`={grid_eps} gives a lattice of more than {MAX_LATTICE_POINTS:,} weights in d={d}; "
            f"use a coarser one."
        )
    return lattice.points(d, N) / N, lattice.covering_radius(d, N)


def _rows(W, T, eps, delta, chunk=8192):
    """0/1 matrix (len(W), len(T)): does front point ``j`` serve weight ``w`` within (eps, delta)?"""
    C = np.empty((len(W), len(T)), dtype=np.uint8)
    for s in range(0, len(W), chunk):
        S = W[s : s + chunk] @ T.T
        need = (1.0 - eps) * S.max(axis=1) - delta - SHORTFALL
        C[s : s + chunk] = S >= need[:, None]
    return C


def _lp_witnesses(U, T, W, radius, eps, delta, chunk=8192):
    """Weights at which the subset ``U`` fails some ``t ∈ T``, one small LP per suspect ``t``.

    ``f_t(w) = (1-eps) w·t - delta - LB(w)`` moves by at most ``||w - w'||_1`` for values in
    [0, 1] (each term by at most half of it), so a ``t`` whose maximum over the lattice ``W``
    (L1 covering radius ``radius``) is below ``-radius - SHORTFALL`` fails nowhere: no LP for it.
    The LP is the certificate's, :func:`palmopt.certify.max_shortfall`.
    """
    best = np.full(len(T), -np.inf)
    for s in range(0, len(W), chunk):
        Wc = W[s : s + chunk]
        F = (1.0 - eps) * (Wc @ T.T) - (Wc @ U.T).max(axis=1)[:, None]
        np.maximum(best, F.max(axis=0) - delta, out=best)
    found = []
    for i in np.flatnonzero(best >= -1.01 * radius - SHORTFALL):
        value, w, _ = max_shortfall(U, T[i], eps)
        if w is not None and (1.0 - eps) * (T @ w).max() - delta - (U @ w).max() > SHORTFALL:
            found.append(w)  # a failed LP is left to the certificate, which has the last word
    return np.array(found).reshape(-1, U.shape[1])


def minimum_portfolio(reference, eps, delta=None, *, grid_eps=None, max_rounds=20, time_limit=None):
    r"""The smallest (eps, delta)-portfolio made of a known front's members, certified exactly.

    Parameters
    ----------
    reference : array_like (n, d), or an object with ``reference_front()``
        The achievable vectors (e.g. a tabular MOMDP's exact front), in [0, 1]^d.  ``OPT`` is
        their upper envelope and the members are chosen among them.
    eps, delta : float in [0, 1)
        The guarantee ``w·t ≥ (1-eps) OPT(w) - delta`` for every ``w`` on the simplex;
        ``delta=None`` means ``delta = eps``.
    grid_eps : float in (0, 1), optional
        Resolution of the initial rows, the lattice ``palmopt.cover(d, grid_eps,
        kind="additive")`` (only its rows that no other row implies reach the integer
        programme).  Default: the finest lattice with at most 50,000 points (spacing
        ``1/49999`` for d = 2, ``1/314`` for d = 3, ``1/64`` for d = 4).  A coarser lattice
        makes smaller integer programmes and more repair rounds.
    max_rounds : int, default 20
        Integer programmes to solve at most; when they run out the result has
        ``status=Status.BUDGET_EXHAUSTED``.
    time_limit : float, optional
        Seconds for all the integer programmes together (default: no limit).  When it runs
        out, the remaining rounds repair greedy set covers instead; the result has
        ``status=Status.TIME_LIMIT``, the last greedy cover (certified when the rounds
        sufficed), and bounds ``lower_bound <= minimum <= upper_bound``.

    Returns
    -------
    MinimumPortfolio
        ``status == Status.SUCCESS`` and ``exact`` when the minimum was found; otherwise
        ``lower_bound <= minimum <= upper_bound``.

    Raises
    ------
    TypeError, ValueError
        Invalid arguments, or a front outside [0, 1]^d.

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
    eps, delta = check_tolerances(eps, delta, allow_zero=True)
    if grid_eps is None:
        grid_eps = float("nan") if d == 1 else lattice.covering_radius(d, lattice.finest(d, DEFAULT_GRID_POINTS))
    else:
        grid_eps = check_fraction(grid_eps, "grid_eps")
    max_rounds = check_count(max_rounds, "max_rounds")
    time_limit = None if time_limit is None else check_real(time_limit, "time_limit", strict=True)
    deadline = None if time_limit is None else time.monotonic() + time_limit

    cand = undominated(front)
    T = front[cand]
    W, radius = _lattice(d, grid_eps)
    M = minimal_rows(_rows(W, T, eps, delta))
    n_rows = len(W)
    repairs = []
    status, rounds, lower, method = Status.BUDGET_EXHAUSTED, 0, 1, "exact"
    fallback = Status.TIME_LIMIT  # why the rounds switched to greedy covers, if they did
    cert = None
    while rounds < max_rounds:
        rounds += 1
        if method == "exact":
            left = None if deadline is None else deadline - time.monotonic()
            cov = set_cover(M, "exact", time_limit=left) if left is None or left > 0 else None
            if cov is not None and cov.optimal:
                lower = len(cov)  # rows only grow: each proven optimum is at least the last
            else:
                if cov is not None and cov.status == Status.NUMERICAL_TROUBLE:
                    fallback = Status.NUMERICAL_TROUBLE
                method = "greedy"  # from now on: repair greedy covers, for a certified upper bound
        chosen = cov.columns if method == "exact" else set_cover(M, "greedy").columns
        U = T[chosen]
        cert = None
        new = _lp_witnesses(U, T, W, radius, eps, delta)
        if not len(new):
            cert = certify(U, T, eps, delta)
            if cert.status != Status.SUCCESS:
                status = Status.NUMERICAL_TROUBLE
                break
            if cert.holds:
                status = Status.SUCCESS if method == "exact" else fallback
                break
            new = np.array([w for w in (cert.worst_weight, cert.eps_weight, cert.delta_weight) if w is not None])
        C_new = _rows(new, T, eps, delta)
        if C_new[:, chosen].any(axis=1).all():  # no new row cuts off this solution
            status = Status.NUMERICAL_TROUBLE
            break
        repairs.append(new)
        n_rows += len(new)
        M = minimal_rows(np.vstack([M, C_new]))
    if method == "greedy":
        lower = max(lower, lp_lower_bound(M))
        if status == Status.BUDGET_EXHAUSTED:
            status = fallback
    if cert is None:
        cert = certify(U, T, eps, delta)
    upper = min(len(chosen), len(cand)) if cert.certified else len(cand)
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
