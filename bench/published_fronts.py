"""Published Pareto fronts of MO-Gymnasium environments against their exact tables (a study).

For each point of ``env.unwrapped.pareto_front(gamma)``: is it the value of some deterministic
stationary policy of the exact table (:mod:`oracles.mogym`), and is that policy optimal for
some weight, i.e. in the exact convex coverage set?  Deep-sea-treasure's published fronts are
Pareto fronts, not convex coverage sets; resource-gathering-v0's (MO-Gymnasium 1.3) is off by
one discount step (see :func:`compare_published_front`).  Runtime: about 4 minutes on 2 cores.

Usage: python bench/published_fronts.py [--gammas 0.9 0.95 0.99] [--time-limit 120]

Importable as a module (``sys.path`` holding ``bench/``): ``from published_fronts import
compare_published_front``.
"""

import argparse
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from oracles.mogym import DST_MAPS, MOGymTable, deep_sea_treasure, fruit_tree, resource_gathering
from oracles.mogym.adapters import make_env
from oracles.mogym.tables import ReadOnlyKwargs, env_label
from oracles.tabular import TabularMOMDP
from palmopt.certify import max_shortfall
from palmopt.tolerances import SAME_VALUE
from palmopt.validation import check_count, check_fraction

__all__ = [
    "PublishedPoint",
    "PublishedFrontComparison",
    "compare_published_front",
    "published_front",
    "published_front_report",
]

#: Actions whose Q-value is within this (relative) of the best count as optimal.
Q_RTOL = 1e-9


@dataclass(frozen=True, eq=False)
class PublishedPoint:
    """One point of an environment's published front, checked against the exact table.

    Attributes
    ----------
    env_units : ndarray, shape (d,)
        The published discounted return (after the ``discount_shift`` correction).
    values : ndarray, shape (d,)
        The same point in normalised units.
    achieved : bool or None
        Some deterministic stationary policy has this value within ``atol``; ``None`` when the
        mixed-integer search hit its time limit undecided.
    policy : ndarray of int64, shape (S,) or None
        Such a policy (a witness), when ``achieved``.
    policy_values : ndarray, shape (d,) or None
        The witness's exact normalised value.
    gap : float
        ``max_w (w·q - OPT(w))`` over the simplex, where ``q`` is the witness's value when
        achieved and the published point otherwise.  ``>= -tol``: ``q`` is optimal for some
        weight; ``> atol``: the published point beats every policy at ``weight``.
    weight : ndarray, shape (d,)
        A maximiser of that gap.
    in_ccs : bool
        ``achieved`` and the witness is optimal for some weight (it belongs to the exact convex
        coverage set; a point that only ties at a weight with zero entries counts).
    """

    env_units: np.ndarray
    values: np.ndarray
    achieved: Any
    policy: Any
    policy_values: Any
    gap: float
    weight: np.ndarray
    in_ccs: bool

    def __repr__(self):
        pt = np.array2string(self.env_units, precision=4, separator=", ")
        return f"PublishedPoint({pt}, achieved={self.achieved}, in_ccs={self.in_ccs}, gap={self.gap:.3g})"


@dataclass(frozen=True, eq=False)
class PublishedFrontComparison(ReadOnlyKwargs):
    """An environment's published front, point by point, against the exact table.

    Attributes
    ----------
    env_id : str
    env_kwargs : Mapping
    gamma : float
    discount_shift : int
        The published points were multiplied by ``gamma ** -discount_shift`` before the check.
    n_published, n_achieved, n_in_ccs, n_undecided : int
        Points published; achieved by a deterministic policy; achieved by a policy of the exact
        convex coverage set; left undecided by the time limit.
    points : tuple of PublishedPoint
    oracle_calls : int
        Calls of the exact oracle spent on the support checks.
    """

    env_id: str
    env_kwargs: Mapping[str, Any]
    gamma: float
    discount_shift: int
    n_published: int
    n_achieved: int
    n_in_ccs: int
    n_undecided: int
    points: tuple = field(repr=False)
    oracle_calls: int = field(repr=False, default=0)

    def __repr__(self):
        shift = f", discount_shift={self.discount_shift}" if self.discount_shift else ""
        undecided = f", undecided={self.n_undecided}" if self.n_undecided else ""
        return (
            f"PublishedFrontComparison({env_label(self.env_id, self.env_kwargs)}, gamma={self.gamma:g}{shift}, "
            f"published={self.n_published}, achieved={self.n_achieved}, in_ccs={self.n_in_ccs}{undecided})"
        )


class _FrontChecker:
    """Support tests and deterministic-policy searches on one table, sharing their work."""

    def __init__(self, table, tol, max_calls):
        m = table.momdp
        self.table = table
        self.P, self.R, self.mu, self.gamma = m.P, m.R, m.mu, float(m.gamma)
        self.tol = tol
        self.max_calls = max_calls
        self.calls = 0
        self.U = [self._oracle_values(np.eye(table.d)[i]) for i in range(table.d)]
        self._milp_parts = None

    def _oracle(self, w):
        if self.calls >= self.max_calls:
            raise RuntimeError(f"the published-front check used more than {self.max_calls} oracle calls")
        self.calls += 1
        return self.table(w)

    def _oracle_values(self, w):
        return np.asarray(self._oracle(w).values, dtype=np.float64)

    def support(self, q):
        """``max_{w in simplex} (w·q - OPT(w))`` and a maximiser, by outer approximation.

        ``U`` holds values of achievable policies, so ``g_U(w) = w·q - max_{u in U} w·u`` bounds
        ``w·q - OPT(w)`` from above.  Each round solves ``max_w g_U(w)`` -- the shortfall LP
        :func:`palmopt.certify.max_shortfall` of ``U`` against ``q``, with a dual-verified upper
        bound ``t`` -- and queries the exact oracle at its maximiser ``w``: if
        ``w·q - OPT(w) >= t - tol`` the bound is attained (up to ``tol``) and ``w`` is the
        answer; otherwise the oracle's value joins ``U``.  When that value is already in ``U``
        (within ``SAME_VALUE``) the LP cannot be sharpened and the gap recomputed with NumPy at
        ``w`` is the answer.  Deterministic values are finitely many, so the loop ends.
        """
        while True:
            V = np.array(self.U)
            _, w, t = max_shortfall(V, q)
            if w is None:  # pragma: no cover - feasible and bounded by construction
                raise RuntimeError("the support LP failed")
            u = self._oracle_values(w)
            gap = float(w @ (q - u))
            if gap >= t - self.tol or np.abs(V - u).max(axis=1).min() <= SAME_VALUE:
                return gap, w
            self.U.append(u)

    def optimal_actions(self, w):
        """Mask ``(S, A)`` of the actions optimal for ``w`` (Q-values within ``Q_RTOL`` of the best)."""
        sol = self._oracle(w)
        vw = self.table.momdp.value_function(sol.policy) @ w
        Q = self.R @ w + self.gamma * (self.P @ vw)
        best = Q.max(axis=1, keepdims=True)
        return Q >= best - Q_RTOL * (1.0 + np.abs(best))

    def _parts(self):
        """The pieces of the mixed-integer program shared by every search on this table."""
        if self._milp_parts is None:
            from scipy import sparse

            P, R, mu, g = self.P, self.R, self.mu, self.gamma
            S, A, d = R.shape
            n = S * A
            E = sparse.kron(sparse.eye(S), np.ones((1, A))).tocsr()  # (S, S*A): sums over actions
            flow = (E - g * sparse.csr_matrix(P.reshape(n, S).T)).tocsr()
            # tightest big-M: the largest normalised occupancy of each state over all policies
            hits = TabularMOMDP(P, np.broadcast_to(np.eye(S)[:, None, :], (S, A, S)), g, mu)
            M = np.array([hits(np.eye(S)[s]).values[s] for s in range(S)])
            M = np.repeat(np.minimum(M + 1e-9, 1.0), A)
            Z = sparse.csr_matrix((S, n))
            self._milp_parts = (
                (sparse.hstack([flow, Z]).tocsr(), (1 - g) * mu),
                sparse.hstack([sparse.csr_matrix(R.reshape(n, d).T), sparse.csr_matrix((d, n))]).tocsr(),
                sparse.hstack([sparse.eye(n), -sparse.diags(M)]).tocsr(),
                sparse.hstack([Z, E]).tocsr(),
                M,
            )
        return self._milp_parts

    def find_policy(self, q, atol, allowed=None, time_limit=None):
        """A deterministic policy with value ``q`` within ``atol``: ``(policy, values, decided)``.

        Mixed-integer feasibility over normalised discounted occupancies ``x[s, a]`` with one
        action per state (``x[s, a] <= M_s z[s, a]``, ``z`` binary, ``sum_a z[s, a] = 1``,
        ``M_s`` the largest occupancy of ``s``): a deterministic policy's occupancy satisfies
        these and, conversely, the actions picked by ``z`` induce ``x``.  The candidate is
        re-evaluated exactly and accepted only within ``atol``; ``allowed`` restricts actions.
        """
        from scipy.optimize import Bounds, LinearConstraint, milp

        (flow, rhs), value, link, pick, M = self._parts()
        S, A, _ = self.R.shape
        n = S * A
        upper = np.r_[M, np.ones(n)]
        if allowed is not None:
            upper = upper * np.tile(allowed.ravel(), 2)
        window = 0.5 * atol
        res = milp(
            np.zeros(2 * n),
            constraints=[
                LinearConstraint(flow, rhs, rhs),
                LinearConstraint(value, q - window, q + window),
                LinearConstraint(link, -np.inf, 0.0),
                LinearConstraint(pick, 1.0, 1.0),
            ],
            integrality=np.r_[np.zeros(n), np.ones(n)],
            bounds=Bounds(0.0, upper),
            options={} if time_limit is None else {"time_limit": float(time_limit)},
        )
        if res.x is None:
            return None, None, res.status == 2  # 2: proven infeasible
        policy = np.argmax(res.x[n:].reshape(S, A), axis=1).astype(np.int64)
        values = np.asarray(self.table.evaluate(policy), dtype=np.float64)
        if np.max(np.abs(values - q)) <= atol:
            return policy, values, True
        return None, None, False  # the solver's point does not survive exact evaluation


def compare_published_front(
    table, gamma=None, *, discount_shift=0, atol=1e-6, tol=1e-9, time_limit=120.0, max_calls=10_000
):
    """Check an environment's published front against its exact table.

    For each point of ``env.unwrapped.pareto_front(gamma)`` (converted to normalised units):
    is it the value of some deterministic stationary policy, and is that policy optimal for some
    weight, i.e. in the exact convex coverage set?

    Parameters
    ----------
    table : MOGymTable
    gamma : float, optional
        Must equal ``table.gamma`` when given (the published front depends on it).
    discount_shift : int, default 0
        Multiply the published points by ``gamma ** -discount_shift`` first.  ``1`` corrects a
        front computed with ``gamma**t`` for the reward of step ``t = 1, 2, ...``, as
        resource-gathering-v0's (MO-Gymnasium 1.3): its points are then all achieved.
    atol : float, default 1e-6
        Tolerance (normalised units) for "achieved": published fronts are float64 while the
        environments return float32 rewards.
    tol : float, default 1e-9
        Tolerance of the support test ``w·q >= OPT(w) - tol``.
    time_limit : float or None, default 120
        Seconds allowed to each mixed-integer search; a point it leaves open gets
        ``achieved=None``.
    max_calls : int, default 10000

    Returns
    -------
    PublishedFrontComparison

    Raises
    ------
    ValueError
        If the environment publishes no front, or ``gamma`` differs from ``table.gamma``.

    Notes
    -----
    *Achieved*: a mixed-integer feasibility problem over discounted occupancies with one action
    per state; a witness policy is re-evaluated exactly.  A point whose support gap exceeds
    ``atol`` beats ``OPT`` somewhere and is rejected without it; a supported point is searched
    among the actions optimal at its support weight first.  *In the CCS*: the witness's exact
    value ``q`` satisfies ``max_w (w·q - OPT(w)) >= -tol``, decided by an outer-approximation
    loop of small LPs around the exact oracle (no sampling of weights, no enumeration of
    ``A**S`` policies).

    Examples
    --------
    >>> from oracles.mogym import deep_sea_treasure
    >>> result = compare_published_front(deep_sea_treasure(0.95))
    >>> result.n_published, result.n_achieved, result.n_in_ccs
    (10, 10, 6)
    """
    if not isinstance(table, MOGymTable):
        raise TypeError(f"`table` must be a MOGymTable; got {type(table).__name__}.")
    if gamma is not None and check_fraction(gamma, "gamma", allow_zero=True) != table.gamma:
        raise ValueError(f"`gamma` must equal the table's gamma {table.gamma}; got {gamma}.")
    discount_shift = check_count(discount_shift, "discount_shift", minimum=-(2**31))
    published = published_front(table) * table.gamma ** (-int(discount_shift))
    checker = _FrontChecker(table, float(tol), check_count(max_calls, "max_calls"))
    points = []
    for g in published:
        v = table.from_env_units(g)
        gap, w = checker.support(v)
        policy = pv = None
        achieved = False
        if gap <= atol:  # otherwise v beats OPT(w) by more than atol: not achievable
            decided = False
            if gap >= -atol:
                policy, pv, decided = checker.find_policy(v, atol, checker.optimal_actions(w), time_limit)
            if policy is None:
                policy, pv, decided = checker.find_policy(v, atol, None, time_limit)
            achieved = True if policy is not None else (False if decided else None)
        if pv is not None:
            gap, w = checker.support(pv)
        for a in (g, v, w) + (() if pv is None else (pv, policy)):
            a.setflags(write=False)
        points.append(PublishedPoint(g, v, achieved, policy, pv, gap, w, bool(achieved) and gap >= -tol))
    return PublishedFrontComparison(
        env_id=table.env_id,
        env_kwargs=table.env_kwargs,
        gamma=table.gamma,
        discount_shift=int(discount_shift),
        n_published=len(points),
        n_achieved=sum(p.achieved is True for p in points),
        n_in_ccs=sum(p.in_ccs for p in points),
        n_undecided=sum(p.achieved is None for p in points),
        points=tuple(points),
        oracle_calls=checker.calls,
    )


def published_front(table):
    """The environment's published front at ``table.gamma``, environment units, shape (n, d).

    Raises ``ValueError`` when the environment has no ``pareto_front`` method.
    """
    env = make_env(table.env_id, table.env_kwargs)
    try:
        front_fn = getattr(env.unwrapped, "pareto_front", None)
        if front_fn is None:
            raise ValueError(f"{table.env_id} publishes no front (it has no `pareto_front` method).")
        return np.array([np.asarray(p, dtype=np.float64) for p in front_fn(table.gamma)]).reshape(-1, table.d)
    finally:
        env.close()


def published_front_report(gammas=(0.9, 0.95, 0.99), **options):
    """:func:`compare_published_front` for every supported environment and discount.

    For each ``gamma``: deep-sea-treasure on its three maps, fruit-tree at depths 5, 6 and 7,
    and resource-gathering twice (``discount_shift=0``, as published, and ``1``, corrected).
    ``options`` go to :func:`compare_published_front`.  Returns a list of
    :class:`PublishedFrontComparison`.
    """
    out = []
    for g in gammas:
        tables = [deep_sea_treasure(g, map=m) for m in DST_MAPS] + [fruit_tree(k, g) for k in (5, 6, 7)]
        out += [compare_published_front(t, **options) for t in tables]
        rg = resource_gathering(g)
        out += [compare_published_front(rg, discount_shift=s, **options) for s in (0, 1)]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.9, 0.95, 0.99])
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per mixed-integer search")
    args = parser.parse_args(argv)
    for result in published_front_report(tuple(args.gammas), time_limit=args.time_limit):
        print(result)


if __name__ == "__main__":
    main()
