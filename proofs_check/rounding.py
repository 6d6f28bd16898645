r"""The rounding lemma of DESIGN.md §2, checked symbolically and by an exact adversarial search.

Claim.  Rewards lie in [0, 1]^d.  Let ``w`` be on the simplex and ``l`` the lower corner of
its net cell (``l_i = 0`` if ``w_i < τ = δ/d``, else the largest level ``≤ w_i``, so
``l_i ≤ w_i < (1+γ) l_i`` with ``1+γ = 1/(1-ε)``).  If ``v_net`` is optimal at ``l`` then

.. math:: w·v_{net} ≥ (1-ε)\,OPT(w) - δ.

(The oracle is called at ``l / Σl``; the argmax is scale-invariant, so ``v_net`` is optimal
at ``l`` too.)
"""

import itertools
import time
from fractions import Fraction

import numpy as np
from scipy.optimize import linprog

from palmopt.bounds import _edges
from palmopt.nets import cover

from . import ClaimResult

__all__ = ["rounding_lemma", "symbolic_chain", "cell_worst_case"]

#: (d, eps, delta) of the full check: every cell of each net is searched exactly.
DEFAULT_CASES = (
    (2, 0.05, 0.05),
    (2, 0.2, 0.01),
    (2, 0.01, 0.2),
    (3, 0.05, 0.05),
    (3, 0.1, 0.02),
    (3, 0.3, 0.3),
    (4, 0.2, 0.05),
    (4, 0.1, 0.1),
    (5, 0.3, 0.3),
)
#: A search value above this counts as a violation (LP / floating-point accuracy).
TOL = 1e-9


# ------------------------------------------------------------------------------ symbolic


def symbolic_chain():
    r"""The lemma's chain of inequalities, verified with sympy for symbolic ``eps, delta, d``.

    Steps (``v = V(π_w)``, ``OPT(w) = w·v``, ``τ = δ/d``, ``γ = ε/(1-ε)``):

    0. ``1/(1+γ) = 1-ε`` (identity).
    1. Coordinate with ``w_i ≥ τ``: write ``w_i = l_i (1 + γ s)``, ``s ∈ [0, 1]``.  Then
       ``l_i v_i - (1-ε) w_i v_i = ε l_i v_i (1-s) ≥ 0`` for ``v_i ∈ [0, 1]``.
    2. Coordinate with ``w_i < τ`` (``l_i = 0``): write ``w_i = τ s``.  Then
       ``l_i v_i - (1-ε) w_i v_i + (1-ε) τ = (1-ε) τ (1 - s v_i)``, multilinear in
       ``(s, v_i) ∈ [0,1]^2`` and ``≥ 0`` at the four vertices, hence everywhere.
    3. At most ``d-1`` coordinates are small (all ``d`` would give ``Σw < dτ = δ < 1``), so
       summing 1–2: ``l·v ≥ (1-ε) OPT(w) - (1-ε)(d-1)τ``, and
       ``δ - (1-ε)(d-1)τ = δ (1 + (d-1) ε) / d > 0``.
    4. ``w·v_net ≥ l·v_net`` (``w ≥ l``, ``v_net ≥ 0``) and ``l·v_net ≥ l·v`` (optimality at ``l``).

    Hence ``w·v_net - (1-ε) OPT(w) + δ ≥ δ (1 + (d-1) ε) / d``: the lemma holds with that slack,
    and the slack is attained (``d-1`` coordinates at ``τ``, ``v = e_small``, ``v_net = 0``), so the
    supremum of the adversarial search below is exactly ``-δ (1 + (d-1) ε) / d``.

    Returns
    -------
    dict
        ``ok`` (all steps verified) and, per step, the simplified expression and its verdict.
    """
    import sympy as sp

    eps, delta, d = sp.symbols("epsilon delta d", positive=True)
    l, v, s, r = sp.symbols("l v s r", nonnegative=True)
    p = sp.symbols("p", positive=True)  # p = 1 - eps > 0
    gamma = eps / (1 - eps)
    tau = delta / d
    out = {}

    step0 = sp.simplify(1 / (1 + gamma) - (1 - eps))
    out["step0_identity"] = {"expr": "1/(1+gamma) - (1-eps)", "simplified": str(step0), "ok": step0 == 0}

    w_big = l * (1 + gamma * s)
    big = sp.factor(sp.simplify(l * v - (1 - eps) * w_big * v))
    big_r = sp.factor(big.subs(s, 1 - r))  # s ∈ [0,1]  <=>  r = 1 - s ∈ [0,1]
    out["step1_large_coordinate"] = {
        "expr": "l*v - (1-eps)*w*v with w = l*(1+gamma*s)",
        "simplified": str(big),
        "ok": bool(sp.simplify(big - eps * l * v * (1 - s)) == 0 and big_r.is_nonnegative),
    }

    small = sp.expand((0 * v - (1 - eps) * (tau * s) * v + (1 - eps) * tau).subs(eps, 1 - p))
    degrees = sp.Poly(small, s, v).degree_list() if small.free_symbols & {s, v} else (0, 0)
    multilinear = max(sp.degree(small, s), sp.degree(small, v)) <= 1
    corners = [sp.simplify(small.subs({s: a, v: b})) for a, b in itertools.product((0, 1), repeat=2)]
    out["step2_small_coordinate"] = {
        "expr": "l*v - (1-eps)*w*v + (1-eps)*tau with l = 0, w = tau*s, eps = 1 - p",
        "simplified": str(sp.factor(small)),
        "degrees_in_s_v": [int(x) for x in degrees],
        "vertex_values": [str(c) for c in corners],
        "ok": bool(multilinear and all(c.is_nonnegative for c in corners)),
    }

    dd = sp.symbols("d", integer=True, positive=True)
    k = sp.symbols("k", integer=True, nonnegative=True)  # d = k + 1 >= 1
    slack = sp.factor(sp.simplify((delta - (1 - eps) * (d - 1) * tau).subs(d, dd)))
    out["step3_sum"] = {
        "expr": "delta - (1-eps)*(d-1)*tau",
        "simplified": str(slack),
        "at_most_d_minus_1_small": bool(sp.simplify(dd * (delta / dd) - delta) == 0),
        "ok": bool(
            sp.simplify(slack - delta * (1 + (dd - 1) * eps) / dd) == 0
            and sp.simplify(slack.subs(dd, k + 1)).is_positive
        ),
    }
    out["step4_premises"] = {
        "expr": "w.v_net - l.v_net = sum (w_i - l_i) v_net_i >= 0;  l.v_net >= l.v (optimal at l)",
        "ok": bool((sp.Symbol("x", nonnegative=True) * sp.Symbol("y", nonnegative=True)).is_nonnegative),
    }
    out["sup_of_search"] = "-delta*(1 + (d-1)*eps)/d"
    out["ok"] = all(step["ok"] for key, step in out.items() if isinstance(step, dict))
    return out


def search_supremum(d, eps, delta):
    """``-δ (1 + (d-1) ε) / d``: the exact supremum of the adversarial search (see :func:`symbolic_chain`)."""
    return -delta * (1.0 + (d - 1) * eps) / d


# ------------------------------------------------------------------------------ adversarial


def cell_boxes(net):
    """Lower corners ``L`` and *ideal* upper corners ``H`` of the net's cells.

    ``H_i = l_i / (1-ε)`` for a non-zero level, ``τ`` for level 0.  The implemented cells use
    dyadic levels with ``l_0 ≤ τ`` and ``l_(k+1) ≤ (1+γ) l_k`` (checked exactly by
    :func:`dyadic_levels_inside`), so every implemented cell lies inside its ideal box and
    searching the ideal boxes is the stronger test.
    """
    L = np.asarray(net.lower, dtype=np.float64)
    H = np.where(L > 0, L / (1.0 - net.eps), net.delta / net.d)
    return L, H


def dyadic_levels_inside(d, eps, delta):
    """Exact rational check that the implemented levels satisfy what the lemma needs."""
    edges = [Fraction(float(x)) for x in _edges(d, eps, delta)]
    q = 1 / (1 - Fraction(eps))
    tau = Fraction(delta) / d
    return bool(
        edges[0] == 0
        and 0 < edges[1] <= tau
        and all(edges[k + 1] <= q * edges[k] for k in range(1, len(edges) - 1))
        and edges[-2] <= 1 < edges[-1]
    )


def _vertices(L, H):
    """Candidate vertices of ``{L ≤ w ≤ H, Σw = 1}`` per cell: (m, d 2^(d-1), d) and a mask.

    A vertex has at least ``d - 1`` box constraints active: all but one coordinate ``j`` at a
    bound, ``w_j = 1 - Σ others`` inside ``[L_j, H_j]``.
    """
    m, d = L.shape
    cands, ok = [], []
    for j in range(d):
        others = [i for i in range(d) if i != j]
        for mask in itertools.product((False, True), repeat=d - 1):
            W = np.empty((m, d))
            for i, up in zip(others, mask):
                W[:, i] = H[:, i] if up else L[:, i]
            W[:, j] = 1.0 - W[:, others].sum(axis=1)
            inside = (W[:, j] >= L[:, j] - 1e-12) & (W[:, j] <= H[:, j] + 1e-12)
            W[:, j] = np.clip(W[:, j], L[:, j], H[:, j])
            cands.append(W)
            ok.append(inside)
    return np.stack(cands, axis=1), np.stack(ok, axis=1)


def cell_worst_case(W, L, eps, delta):
    r"""``max {(1-ε) w·a - δ - w·b : a, b ∈ [0,1]^d, l·b ≥ l·a}`` for each row pair ``(w, l)``.

    Closed form by LP duality: the Lagrangian with multiplier ``λ ≥ 0`` on ``l·a - l·b ≤ 0``
    separates over coordinates, so the optimum is
    ``min_{λ≥0} Σ_i max(0, (1-ε)w_i - λ l_i) + max(0, λ l_i - w_i) - δ``, a convex piecewise-linear
    function of ``λ`` minimised at ``λ = 0`` or a breakpoint ``(1-ε)w_i/l_i``, ``w_i/l_i``.
    """
    W = np.asarray(W, dtype=np.float64)
    L = np.asarray(L, dtype=np.float64)
    A = (1.0 - eps) * W
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.concatenate(
            [np.zeros((W.shape[0], 1)), np.where(L > 0, A / L, 0.0), np.where(L > 0, W / L, 0.0)], axis=1
        )
    LL = lam[:, :, None] * L[:, None, :]
    vals = (np.maximum(0.0, A[:, None, :] - LL) + np.maximum(0.0, LL - W[:, None, :])).sum(axis=2)
    return vals.min(axis=1) - delta


def _lp_worst_case(w, l, eps, delta):
    """The same optimum by scipy's HiGHS: variables (a, b) ∈ [0,1]^(2d)."""
    d = len(w)
    c = -np.r_[(1.0 - eps) * w, -w]
    res = linprog(c, A_ub=np.r_[l, -l][None, :], b_ub=[0.0], bounds=[(0.0, 1.0)] * (2 * d), method="highs")
    if res.status != 0:  # pragma: no cover - the LP is feasible (a = b = 0) and bounded
        raise RuntimeError(f"linprog failed: {res.message}")
    x = np.clip(res.x, 0.0, 1.0)
    a, b = x[:d], x[d:]
    if l @ a > l @ b:  # restore feasibility exactly, never in the search's favour
        b = np.minimum(1.0, b + (l @ a - l @ b) / max(l.sum(), 1e-300))
    return float((1.0 - eps) * w @ a - delta - w @ b), a, b


def _search_case(d, eps, delta, n_lp, n_interior, rng, chunk=5000):
    net = cover(d, eps, delta)
    L, H = cell_boxes(net)
    n = len(L)
    best = (-np.inf, None, None)
    cell_max = np.empty(n)
    n_vertices = 0
    for s in range(0, n, chunk):
        V, ok = _vertices(L[s : s + chunk], H[s : s + chunk])
        rows, cols = np.nonzero(ok)  # evaluate the feasible vertices only
        vals = np.full(ok.shape, -np.inf)
        vals[rows, cols] = cell_worst_case(V[rows, cols], L[s + rows], eps, delta)
        n_vertices += len(rows)
        cell_max[s : s + chunk] = vals.max(axis=1)
        i, j = np.unravel_index(np.argmax(vals), vals.shape)
        if vals[i, j] > best[0]:
            best = (float(vals[i, j]), V[i, j].copy(), L[s + i].copy())

    # LP twin on a sample of cells: the worst ones and random ones, at all their vertices
    order = np.argsort(-cell_max, kind="stable")
    sample = np.unique(np.r_[order[: max(1, n_lp // 4)], rng.choice(n, size=min(n, n_lp), replace=False)])
    V, ok = _vertices(L[sample], H[sample])
    lp_max, lp_diff, witness, n_solved = -np.inf, 0.0, None, 0
    for r, cell in enumerate(sample):
        for w in V[r][ok[r]]:
            n_solved += 1
            value, a, b = _lp_worst_case(w, L[cell], eps, delta)
            closed = float(cell_worst_case(w[None, :], L[cell][None, :], eps, delta)[0])
            lp_diff = max(lp_diff, abs(value - closed))
            if value > lp_max:
                lp_max, witness = value, {"w": w, "l": L[cell], "v_opt": a, "v_net": b}

    # interior points (random convex combinations of a cell's vertices) never beat the vertices
    cells = rng.choice(n, size=min(n, n_interior), replace=True)
    V, ok = _vertices(L[cells], H[cells])
    mix = rng.dirichlet(np.ones(V.shape[1]), size=len(cells)) * ok
    mix /= mix.sum(axis=1, keepdims=True)
    Wi = np.einsum("mv,mvd->md", mix, V)
    interior = cell_worst_case(Wi, L[cells], eps, delta)
    interior_excess = float((interior - cell_max[cells]).max())

    # the implementation rounds every weight into its cell's (ideal) box
    Wr = np.vstack([rng.dirichlet(np.ones(d), size=n_interior), rng.dirichlet(np.full(d, 0.2), size=n_interior)])
    lo = net.lower[net.locate(Wr)]
    hi = np.where(lo > 0, lo / (1.0 - eps), delta / d)
    locate_ok = bool(np.all(lo <= Wr) and np.all(Wr < hi * (1 + 1e-12)))

    sup = search_supremum(d, eps, delta)
    return {
        "d": d,
        "eps": eps,
        "delta": delta,
        "n_cells": n,
        "n_vertices": n_vertices,
        "max_value": best[0],
        "supremum_formula": sup,
        "attains_supremum": bool(abs(best[0] - sup) <= 1e-9),
        "worst_w": best[1],
        "worst_l": best[2],
        "n_lp": n_solved,
        "lp_max_value": lp_max,
        "lp_vs_closed_form": lp_diff,
        "lp_witness": witness,
        "interior_excess": interior_excess,
        "control_value_without_delta": best[0] + delta,  # the same search for the claim (eps, 0)
        "dyadic_levels_inside": dyadic_levels_inside(d, eps, delta),
        "locate_inside_cell": locate_ok,
    }


def rounding_lemma(cases=DEFAULT_CASES, *, n_lp=40, n_interior=2000, rng=0):
    r"""Check the rounding lemma symbolically and by an exact search over every net cell.

    Parameters
    ----------
    cases : sequence of (d, eps, delta)
        Nets ``palmopt.cover(d, eps, delta)`` to search.
    n_lp : int
        Cells per case (the worst quarter plus random ones) re-solved with scipy's ``linprog``
        at every vertex, as an independent twin of the closed form.
    n_interior : int
        Random interior points per case (convexity spot check) and random weights (rounding
        implementation check).
    rng : None, int or numpy.random.Generator

    Returns
    -------
    ClaimResult
        ``evidence``: ``max_violation`` (the largest search value over all cases; the lemma says
        ``≤ 0``), ``min_slack_ratio`` (found maximum / predicted supremum, 1 when the search
        attains it), ``symbolic_ok``, the largest LP-vs-closed-form difference, and a row per case.

    Notes
    -----
    The search.  For a cell with lower corner ``l`` and box ``[l, h]`` (``h = l/(1-ε)``, or ``τ``
    at level 0 -- the closure of the ideal cell, which contains the implemented dyadic one)
    it maximises, over ``w ∈ [l, h] ∩ Δ_d`` and reward vectors ``v_opt, v_net ∈ [0,1]^d`` with
    ``l·v_net ≥ l·v_opt`` (``v_net`` at least as good as ``v_opt`` at ``l``; ``OPT(w) ≥ w·v_opt``),

    .. math:: (1-ε)\, w·v_{opt} - δ - w·v_{net},

    which the lemma says is ``≤ 0``.  The problem is bilinear in ``w`` and ``v``, but for fixed
    ``w`` it is an LP in ``v`` whose optimum ``g(w)`` is a maximum of functions linear in ``w``
    (its dual), hence convex in ``w``; so its maximum over the polytope ``[l, h] ∩ Δ_d`` is
    attained at a vertex.  The vertices (all but one coordinate at a bound, the last fixed by
    ``Σw = 1``) are enumerated for *every* cell of the net, and ``g`` is evaluated there in
    closed form (:func:`cell_worst_case`): an exact global search, no alternation or grid needed.
    ``linprog`` re-solves the LP in ``v`` on a sample of cells and must agree; random interior
    points must not beat their cell's vertices (the convexity argument, spot-checked).  The
    search's supremum is known exactly (``-δ(1+(d-1)ε)/d``, :func:`symbolic_chain`), and the
    maximum found must equal it -- evidence the search reaches the extreme cells.  As a
    control, the same search for the false claim ``(ε, 0)`` finds a positive value.
    """
    rng = np.random.default_rng(rng)
    t0 = time.perf_counter()
    sym = symbolic_chain()
    rows = [_search_case(d, eps, delta, n_lp, n_interior, rng) for d, eps, delta in cases]
    max_violation = max(r["max_value"] for r in rows)
    passed = (
        sym["ok"]
        and max_violation <= TOL
        and all(r["lp_max_value"] <= TOL for r in rows)
        and all(r["lp_vs_closed_form"] <= 1e-7 for r in rows)
        and all(r["interior_excess"] <= 1e-12 for r in rows)
        and all(r["dyadic_levels_inside"] and r["locate_inside_cell"] for r in rows)
        and all(r["attains_supremum"] for r in rows)
        and all(r["control_value_without_delta"] > 0 for r in rows)
    )
    return ClaimResult(
        claim="rounding_lemma",
        parameters={"cases": [tuple(c) for c in cases], "n_lp": n_lp, "n_interior": n_interior},
        evidence={
            "max_violation": max_violation,
            "cells_searched": sum(r["n_cells"] for r in rows),
            "symbolic_ok": sym["ok"],
            "min_slack_ratio": min(r["max_value"] / r["supremum_formula"] for r in rows),
            "lp_vs_closed_form": max(r["lp_vs_closed_form"] for r in rows),
            "lps_solved": sum(r["n_lp"] for r in rows),
            "seconds": time.perf_counter() - t0,
            "symbolic": sym,
            "cases": rows,
        },
        passed=passed,
    )
