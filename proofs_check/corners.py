r"""The corner principle (DESIGN.md §3): the worst gap over the simplex is at a corner weight.

Claim.  Let ``LB(w) = max_j w·u_j`` be a portfolio's lower envelope and ``F`` a convex function
(``OPT(w) = max_t w·t`` for an exact front, or the optimistic bound ``UB`` of the black-box
case).  ``LB`` is linear on each region where one member wins; on such a region
``(1-ε)F - δ - LB`` and ``F - LB`` are convex and ``F/LB`` is quasi-convex, so their maxima over
the whole simplex are attained at the regions' vertices, the *corner weights*
(:func:`palmopt.certify.corner_weights`).

Checked on random tabular instances with random sub-portfolios of their fronts: the maximum of
each gap over the corner weights is compared with (i) dense sampling of the simplex (a lattice,
uniform Dirichlet points and points near the faces), which must never exceed it, and (ii) the
exact LP certificate :func:`palmopt.certify` (its plain per-vector LP path, ``method="lp"``), which
must agree with it.  The same comparison is made for ``UB`` built from a few random oracle queries.

Three fast paths are held to the same standard: ``certify``'s corner path (the default) must agree
with the LP path; the incremental corner weights (:class:`palmopt.certify.Corners`, members
added one at a time) must equal :func:`~palmopt.certify.corner_weights` from scratch; and the
removal lemma behind ``adaptive``'s pruning -- every corner weight of the envelope without member
``j`` is a corner weight of the whole envelope or a vertex of ``j``'s region under the other
members' envelope (``palmopt.adaptive._removal_vertices``) -- must hold for every member.
"""

import math
import time

import numpy as np

from palmopt.adaptive import ACTIVE, _removal_vertices
from palmopt.certify import Corners, certify, corner_weights, upper_bound_opt
from palmopt.nets import uniform
from palmopt.status import Status

from . import ClaimResult
from ._instances import describe, front

__all__ = ["corner_principle", "gaps_at"]

DEFAULT_INSTANCES = (
    ("random_momdp", 2, 0),
    ("random_momdp", 2, 1),
    ("random_momdp", 3, 1),
    ("random_momdp", 3, 2),
    ("random_momdp", 4, 2),
    ("many_policies", 3, 0),
    ("demo_instance", 3, 0),
)
#: The mixed target whose violation ``max (1-ε)F - δ - LB`` is compared.
EPS, DELTA = 0.05, 0.02
#: Sampled points may exceed the corner maximum by at most this (floating point).
TOL = 1e-9


def gaps_at(W, U, F):
    """Additive ``F - LB``, multiplicative ``1 - LB/F`` and mixed ``(1-ε)F - δ - LB`` at rows of ``W``."""
    lb = (W @ U.T).max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(F > 0, 1.0 - lb / np.where(F > 0, F, 1.0), 0.0)
    return {"additive": F - lb, "multiplicative": ratio, "mixed": (1.0 - EPS) * F - DELTA - lb}


def _dense(d, n, rng):
    """A lattice, uniform points and points near the faces and vertices of the simplex."""
    per = max(1, n // 3)
    N = 1
    while math.comb(N + 1 + d - 1, d - 1) <= per:
        N += 1
    return np.vstack(
        [
            uniform(d, math.comb(N + d - 1, d - 1)),
            rng.dirichlet(np.ones(d), size=per),
            rng.dirichlet(np.full(d, 0.15), size=per),
        ]
    )


def corner_principle(
    instances=DEFAULT_INSTANCES,
    *,
    sizes=(1, 2, 3, 5),
    n_dense=20_000,
    n_dense_ub=150,
    rng=0,
):
    """Compare the maximum gap over corner weights with dense sampling and the exact LPs.

    Parameters
    ----------
    instances : sequence of (kind, d, seed)
    sizes : sequence of int
        Sizes of the random sub-portfolios of each front (capped at the front's size); the
        ``d`` best members at the simplex vertices ("specialists") are added as one more.
    n_dense : int
        Sampled weights per instance for ``OPT``.
    n_dense_ub : int
        Sampled weights per instance for ``UB`` (one LP each).
    rng : None, int or numpy.random.Generator

    Returns
    -------
    ClaimResult
        ``evidence``: ``max_excess`` (largest sampled gap minus corner maximum; must be
        ``≤ 1e-9``; for ``UB`` net of the LPs' verified primal-dual gaps),
        ``max_lp_disagreement`` (corner maxima vs certify's ``eps*``, ``delta*`` and
        violation, LP path), ``max_fast_certify_disagreement`` (certify's corner path vs its LP
        path; must be ``≤ 1e-8``), ``max_incremental_corner_mismatch`` (incremental corner
        weights vs from scratch; must be ``≤ 1e-8``), ``max_removal_corner_miss`` (the largest
        distance from a corner weight of the envelope without one member to the nearest
        weight of the whole envelope's corners and that member's removal vertices; must be
        ``≤ 1e-8``; removals whose local vertices are in doubt, which ``adaptive`` certifies
        from scratch instead, are counted in ``removals_in_doubt``), ``sampling_shortfall`` (how far the
        densest sample stays below the corner maximum: what sampling alone would miss) and a
        row per portfolio.
    """
    rng = np.random.default_rng(rng)
    t0 = time.perf_counter()
    rows = []
    for spec in instances:
        T = front(*spec)
        d = T.shape[1]
        W = _dense(d, n_dense, rng)
        F_dense = (W @ T.T).max(axis=1)
        specialists = np.unique(T[np.argmax(T, axis=0)], axis=0)
        portfolios = [("specialists", specialists)]
        for k in sizes:
            k = min(k, len(T))
            portfolios.append((f"random-{k}", T[np.sort(rng.choice(len(T), size=k, replace=False))]))
        # a black-box bound from the d vertices and a few random queries
        Q = np.vstack([np.eye(d), rng.dirichlet(np.ones(d), size=2 * d)])
        b = (Q @ T.T).max(axis=1)
        W_ub = W[rng.choice(len(W), size=min(len(W), n_dense_ub), replace=False)]
        UB_sample, ub_gap_sample = upper_bound_opt(W_ub, Q, b)
        for name, U in portfolios:
            C = corner_weights(U)
            at_corners = gaps_at(C, U, (C @ T.T).max(axis=1))
            sampled = gaps_at(W, U, F_dense)
            cert = certify(U, T, EPS, DELTA, method="lp")
            fast = certify(U, T, EPS, DELTA)
            inc = Corners(U[:1])
            for u in U[1:]:
                inc.add(u)
            exact = {"additive": cert.delta_star, "multiplicative": cert.eps_star, "mixed": cert.violation}
            corner_max = {k: float(v.max()) for k, v in at_corners.items()}
            sample_max = {k: float(v.max()) for k, v in sampled.items()}
            UB_corner, ub_gap_corner = upper_bound_opt(C, Q, b)
            ub_corner = gaps_at(C, U, UB_corner)
            ub_sample = gaps_at(W_ub, U, UB_sample)
            ub_corner_max = {k: float(v.max()) for k, v in ub_corner.items()}
            ub_sample_max = {k: float(v.max()) for k, v in ub_sample.items()}
            rows.append(
                {
                    "instance": describe(spec),
                    "portfolio": name,
                    "k": len(U),
                    "n_corners": len(C),
                    "corner_max": corner_max,
                    "sample_max": sample_max,
                    "exact_lp": exact,
                    "excess": max(sample_max[k] - corner_max[k] for k in corner_max),
                    # certify reports eps* as max(0, ...); the corner maxima are compared likewise
                    "lp_disagreement": max(
                        abs(exact[k] - (max(corner_max[k], 0.0) if k == "multiplicative" else corner_max[k]))
                        for k in corner_max
                    ),
                    "shortfall": max(corner_max[k] - sample_max[k] for k in corner_max),
                    "ub_corner_max": ub_corner_max,
                    "ub_sample_max": ub_sample_max,
                    # UB is the LP's verified dual bound: allow its primal-dual gap at both ends
                    "ub_excess": max(ub_sample_max[k] - ub_corner_max[k] for k in ub_corner_max)
                    - (ub_gap_sample + ub_gap_corner),
                    "lp_status": str(cert.status),
                    "fast_disagreement": max(
                        abs(fast.violation - cert.violation),
                        abs(fast.eps_star - cert.eps_star),
                        abs(fast.delta_star - cert.delta_star),
                    ),
                    "incremental_corner_mismatch": _mismatch(inc.weights, C),
                    **_removal_miss(U, C),
                }
            )
    max_excess = max(max(r["excess"], r["ub_excess"]) for r in rows)
    lp_dis = max(r["lp_disagreement"] for r in rows)
    fast_dis = max(r["fast_disagreement"] for r in rows)
    inc_mis = max(r["incremental_corner_mismatch"] for r in rows)
    return ClaimResult(
        claim="corner_principle",
        parameters={
            "instances": [describe(s) for s in instances],
            "sizes": list(sizes),
            "n_dense": n_dense,
            "n_dense_ub": n_dense_ub,
            "eps": EPS,
            "delta": DELTA,
        },
        evidence={
            "max_excess": max_excess,
            "max_lp_disagreement": lp_dis,
            "max_fast_certify_disagreement": fast_dis,
            "max_incremental_corner_mismatch": inc_mis,
            "max_removal_corner_miss": max(r["removal_corner_miss"] for r in rows),
            "removals_checked": sum(r["removals"] for r in rows),
            "removals_in_doubt": sum(r["removals_in_doubt"] for r in rows),
            "portfolios": len(rows),
            "sampling_shortfall": max(r["shortfall"] for r in rows),
            "seconds": time.perf_counter() - t0,
            "table": rows,
        },
        passed=max_excess <= TOL
        and lp_dis <= 1e-6
        and fast_dis <= 1e-8
        and inc_mis <= 1e-8
        and max(r["removal_corner_miss"] for r in rows) <= 1e-8
        and all(r["lp_status"] == Status.SUCCESS for r in rows),
    )


def _removal_miss(U, C):
    """For each member ``j`` of ``U`` (distinct, undominated ones), how far the corners without
    ``j`` lie from the corners ``C`` with it plus ``j``'s removal vertices."""
    U = np.unique(U, axis=0)
    miss, checked, doubt = 0.0, 0, 0
    lb = (C @ U.T).max(axis=1)
    for j in range(len(U)):
        rest = np.delete(U, j, axis=0)
        if not len(rest):
            continue
        inR = C @ U[j] >= lb - ACTIVE
        near = np.abs(C[inR] @ rest.T - lb[inR, None]) <= ACTIVE
        neighbours = rest[near.any(axis=0)]
        T = _removal_vertices(U[j], neighbours, U.shape[1]) if len(neighbours) else None
        if T is None:
            doubt += int(inR.any())
            continue
        checked += 1
        candidates = np.vstack([C, T])
        after = corner_weights(rest)
        miss = max(miss, float(np.abs(after[:, None, :] - candidates[None, :, :]).max(axis=2).min(axis=1).max()))
    return {"removal_corner_miss": miss, "removals": checked, "removals_in_doubt": doubt}


def _mismatch(A, B):
    """The largest distance from a row of one set to the nearest row of the other (``inf`` when
    the sets differ in size)."""
    if A.shape != B.shape:
        return float("inf")
    D = np.abs(A[:, None, :] - B[None, :, :]).max(axis=2)
    return float(max(D.min(axis=1).max(), D.min(axis=0).max()))
