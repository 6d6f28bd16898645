r"""The smallest (eps, delta)-portfolio made of a known front's members, certified.

For an instance whose achievable vectors ``T = {t_1..t_n}`` are known (a tabular MOMDP's
``reference_front()``), the smallest portfolio ``P ⊆ T`` with

.. math:: \forall w ∈ Δ_d\ \exists t ∈ P:\quad w·t ≥ (1-ε)\,OPT(w) - δ, \qquad OPT(w) = \max_{t∈T} w·t,

is a set cover with infinitely many rows (one per ``w``).  :func:`minimum_portfolio` solves it by
row generation:

1. rows = a lattice of weights (the vertices included); member ``j`` covers row ``w`` iff
   ``w·t_j ≥ (1-ε) OPT(w) - δ - tol``;
2. solve the set cover exactly (integer programme, :func:`palmopt.prune.set_cover`);
3. certify the chosen subset over the whole simplex (:func:`palmopt.certify`); if it fails,
   the net missed a region: add the certificate's worst weight (and its pure-gap witnesses) as
   rows and go back to 2.

Every row is a real constraint, so the integer programme's optimum is a **lower bound** on the
true minimum; a certified subset is an **upper bound**.  When the loop ends certified the two
coincide and the size is exactly minimal.  A row added in step 3 is violated by the current
subset by more than ``tol``, so each round cuts off the previous solution.

Weakly dominated and duplicate front points are dropped first (``t ≤ t'`` coordinatewise gives
``w·t ≤ w·t'`` for every ``w ≥ 0``, so ``t'`` can replace ``t`` in any portfolio): neither the
minimum nor ``OPT`` changes.
"""

import math
from dataclasses import dataclass

import numpy as np

from ._validation import as_matrix, check_count, check_fraction
from .bounds import lattice_resolution
from .certify import Certificate, certify
from .nets import cover
from .prune import set_cover

__all__ = ["MinimumPortfolio", "minimum_portfolio"]

#: Largest number of points of the default initial lattice.
DEFAULT_GRID_POINTS = 3000
#: Front entries must lie in [0, 1] within this tolerance (normalised rewards, DESIGN.md §1).
RANGE_ATOL = 1e-9


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
    status : {"certified", "max-rounds", "numerical-trouble"}
        ``"certified"``: the members form an (eps, delta)-portfolio over the whole simplex.
        ``"max-rounds"``: still not certified after ``max_rounds`` integer programmes (the
        members are the last, uncertified, solution).  ``"numerical-trouble"``: the
        certificate's LPs disagreed with their duals, or a repair row did not cut off the
        current solution.
    rounds : int
        Integer programmes solved (1 when the initial lattice sufficed).
    lower_bound : int
        The last integer programme's optimum: no (eps, delta)-portfolio of front members is
        smaller (every row is a real constraint).
    upper_bound : int
        The size of a certified portfolio of front members: ``size`` when certified, else the
        number of distinct undominated front points (the front itself serves everyone exactly).
    exact : bool
        ``lower_bound == upper_bound``: ``size`` is the true minimum.
    eps, delta : float
        The guarantee.
    n_rows : int
        Weights in the last integer programme (lattice plus repair rows).
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


def _undominated(T, chunk=512):
    """Indices of the first occurrence of each distinct, weakly undominated row of ``T``."""
    _, first = np.unique(T, axis=0, return_index=True)
    first = np.sort(first)
    U = T[first]
    keep = np.ones(len(U), dtype=bool)
    for s in range(0, len(U), chunk):
        A = U[s : s + chunk]
        # A[a] is dominated by U[b] when A[a] <= U[b] everywhere (distinct rows: strictly somewhere)
        dominated = (A[:, None, :] <= U[None, :, :]).all(axis=2)
        dominated[np.arange(len(A)), np.arange(s, s + len(A))] = False
        keep[s : s + chunk] = ~dominated.any(axis=1)
    return first[keep]


def _default_grid_eps(d):
    """The additive tolerance of the finest lattice with at most DEFAULT_GRID_POINTS points."""
    if d == 1:
        return float("nan")  # the simplex is one point
    N = 1
    while math.comb(N + d, d - 1) <= DEFAULT_GRID_POINTS:
        N += 1
    radius = 2 * (d // 2) * ((d + 1) // 2) / d  # lattice_resolution(d, radius / N) == N
    return radius / N


def _rows(W, T, eps, delta, tol):
    """0/1 matrix: does front point ``j`` serve weight ``w`` within (eps, delta)?"""
    S = W @ T.T
    need = (1.0 - eps) * S.max(axis=1) - delta - tol
    return (S >= need[:, None]).astype(np.uint8)


def minimum_portfolio(reference, eps, delta, *, grid_eps=None, max_rounds=20, tol=1e-9):
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
        kind="additive")``.  Default: the finest lattice with at most 3000 points (spacing
        ``1/2999`` for d = 2, ``1/75`` for d = 3, ``1/24`` for d = 4).  A coarser lattice
        makes smaller integer programmes and more repair rounds; the answer is the same.
    max_rounds : int, default 20
        Integer programmes to solve at most.
    tol : float, default 1e-9
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
    ``IP(R)``, hence minimal among portfolios of front members.  (A portfolio may also use
    policies off the front -- mixtures or dominated policies -- but those never serve anyone
    better than the front's members, so the minimum over front members is the minimum.)

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
    n, d = front.shape
    eps = check_fraction(eps, "eps", allow_zero=True)
    delta = check_fraction(delta, "delta", allow_zero=True)
    grid_eps = _default_grid_eps(d) if grid_eps is None else check_fraction(grid_eps, "grid_eps")
    max_rounds = check_count(max_rounds, "max_rounds")
    tol = check_fraction(tol, "tol", allow_zero=True)

    cand = _undominated(front)
    T = front[cand]
    if d == 1:
        W = np.ones((1, 1))
    else:
        if math.comb(lattice_resolution(d, grid_eps) + d - 1, d - 1) > 1_000_000:
            raise ValueError(
                f"`grid_eps`={grid_eps} gives a lattice of more than 1,000,000 weights in d={d}; "
                f"use a coarser one (the repair rounds refine it where needed)."
            )
        W = np.array(cover(d, grid_eps, kind="additive").points)
    C = _rows(W, T, eps, delta, tol)
    repairs = []
    status, rounds = "max-rounds", 0
    while rounds < max_rounds:
        rounds += 1
        chosen = set_cover(C, "exact")
        cert = certify(T[chosen], T, eps, delta, tol=tol)
        if cert.status != "ok":
            status = "numerical-trouble"
            break
        if cert.holds:
            status = "certified"
            break
        new = [w for w in (cert.worst_weight, cert.eps_weight, cert.delta_weight) if w is not None]
        C_new = _rows(np.array(new), T, eps, delta, tol)
        if C_new[0, chosen].any():  # the witness does not cut off this solution
            status = "numerical-trouble"
            break
        repairs.extend(new)
        C = np.vstack([C, C_new])
    members = np.sort(cand[chosen])
    return MinimumPortfolio(
        members=members,
        values=front[members],
        certificate=cert,
        status=status,
        rounds=rounds,
        lower_bound=int(len(chosen)),
        upper_bound=int(len(chosen)) if status == "certified" else int(len(cand)),
        eps=eps,
        delta=delta,
        n_rows=int(C.shape[0]),
        n_candidates=int(len(cand)),
        grid_eps=float(grid_eps),
        repair_weights=np.array(repairs).reshape(-1, d),
    )
