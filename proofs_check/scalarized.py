r"""PALM for non-linear preferences (``docs/design.md`` §6): brute force against exact optima.

Claim.  For a scalarization that is monotone in ``v``, positively homogeneous in ``w`` and has
a rounding form covered by the lemma -- ``Linear()``, ``Tchebycheff()`` (min over the support),
``PMean(p)`` for ``0 < p ≤ 1`` at the budget ``(1-(1-ε)^p, pδ)`` -- ``palmopt.palm`` returns a
portfolio with ``max_j g_w(V_j) ≥ (1-ε)·OPT_g(w) - δ`` for every ``w``, where ``OPT_g`` is the
optimum over *stochastic* policies.  ``PMean(p)`` with ``p ≤ 0`` is refused, and the refusal is
justified by a counterexample to the rounding lemma.

Checked by brute force on small random MOMDPs: ``OPT_g(w)`` is bounded from above, on a fine
lattice of weights plus weights with coordinates at and around the net's threshold ``τ``, by the
*verified* upper bound of the exact cvxpy oracle (``TabularMOMDP(..., scalarization=g)``,
:mod:`oracles.tabular.occupancy`), and compared with the portfolio's best member.  This is a
sampled check of the guarantee (the LP certificates of :func:`palmopt.certify` are specific to
the weighted sum); the proof is in ``docs/design.md`` §6.
"""

import time

import numpy as np

from palmopt import lattice
from palmopt.palm import palm
from palmopt.scalarizations import Linear, PMean, Tchebycheff

from . import ClaimResult

__all__ = ["scalarized", "weight_grid", "measure", "counterexample_p0"]

DEFAULT_INSTANCES = ((2, 0, 0.1, 0.02), (2, 1, 0.2, 0.01), (3, 0, 0.5, 0.3))  # (d, seed, eps, delta)
DEFAULT_SCALARIZATIONS = (Linear(), Tchebycheff(), PMean(0.5))
#: lattice resolution of the weight grid, by d
DEFAULT_GRID = {2: 200, 3: 20}
#: a violation at most this counts as met (the oracle's verified gaps are <= 1e-5)
SLACK = 1e-9


def small_momdp(d, seed, scalarization, *, n_states=3, n_actions=3, gamma=0.8):
    """A small MOMDP with strong trade-offs, solved exactly for ``scalarization`` (method "lp").

    Transitions ``Dirichlet(1)``; each action's reward vector ``Dirichlet(0.5)`` (so actions
    specialise in an objective); start state 0.
    """
    from oracles.tabular import TabularMOMDP

    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(n_states), size=(n_states, n_actions))
    R = rng.dirichlet(np.full(d, 0.5), size=(n_states, n_actions))
    mu = np.eye(n_states)[0]
    return TabularMOMDP(P, R, gamma, mu, method="lp", scalarization=scalarization)


def weight_grid(d, resolution, taus=()):
    """The lattice ``{k/N}`` of the simplex plus, for each ``t`` in ``taus``, weights with a
    coordinate at ``t/2, t, 2t`` (the net's threshold and both sides of it)."""
    W = [lattice.points(d, resolution) / resolution]
    for t in taus:
        for f in (0.5, 1.0, 2.0):
            for i in range(d):
                for j in range(d):
                    if i != j:
                        w = np.zeros(d)
                        w[i], w[j] = f * t, 1.0 - f * t
                        W.append(w[None])
                        if d >= 3:
                            w = np.full(d, (1.0 - f * t) / (d - 1))
                            w[i] = f * t
                            W.append(w[None])
    return np.unique(np.vstack(W), axis=0)


def measure(oracle, V, W, eps=0.0, delta=0.0):
    """For the portfolio values ``V`` (k, d) against ``oracle`` on the weights ``W``:
    ``(violation, gap, opt_bound, best)`` arrays over ``W``; ``violation = (1-ε)·UB - δ - best``
    with ``UB`` the oracle's verified upper bound on ``OPT_g(w)``, ``gap = UB - best``."""
    g = oracle.scalarization
    UB = np.array([oracle(w).info["upper_bound"] for w in W])
    best = g(W, V).max(axis=1)
    return (1 - eps) * UB - delta - best, UB - best, UB, best


def counterexample_p0(p=0.0, eps=0.1, delta=0.1):
    """The rounding lemma fails for ``PMean(p)``, ``p ≤ 0``: one state, two actions with values
    ``(1, 0)`` and ``(0.9, 0.9)``.  The user ``w = (1 - τ/2, τ/2)`` (``τ = δ/2``) rounds to the
    net point ``(1, 0)``, where (support convention: only ``v_1`` counts) the unique optimum is
    the first action, ``v = (1, 0)``: its value for ``w`` is 0 while ``OPT(w) ≥ 0.9``.  The
    interior-point oracle returns ``(1, ~1e-8)`` there, still far below ``(1-ε)·OPT(w) - δ``.

    Returns
    -------
    dict
        ``g_exact`` (value for ``w`` of the exact optimum at the rounded weight), ``g_oracle``
        (of the cvxpy oracle's answer there), ``opt`` (a lower bound on ``OPT(w)``: the oracle's
        value at ``w``), ``target`` ``(1-ε)·opt - δ``, ``w``.
    """
    from oracles.tabular import TabularMOMDP

    g = PMean(p)
    mdp = TabularMOMDP(np.ones((1, 2, 1)), np.array([[[1.0, 0.0], [0.9, 0.9]]]), 0.0, [1.0], scalarization=g)
    tau = delta / 2
    w = np.array([1 - tau / 2, tau / 2])
    rounded = mdp(np.array([1.0, 0.0]))
    opt = float(g(w, mdp(w).values)[0, 0])
    return {
        "p": p,
        "w": w,
        "g_exact": float(g(w, [1.0, 0.0])[0, 0]),
        "g_oracle": float(g(w, rounded.values)[0, 0]),
        "opt": opt,
        "target": (1 - eps) * opt - delta,
    }


def scalarized(
    instances=DEFAULT_INSTANCES,
    scalarizations=DEFAULT_SCALARIZATIONS,
    *,
    grid=None,
    prune="greedy",
):
    """PALM portfolios for non-linear scalarizations against exact optima on a weight grid.

    Parameters
    ----------
    instances : sequence of (d, seed, eps, delta)
        :func:`small_momdp` instances and the target for each.
    scalarizations : sequence of Scalarization
    grid : dict d -> lattice resolution, optional
    prune : {"greedy", "exact", "none"}

    Returns
    -------
    ClaimResult
        ``evidence``: ``max_violation`` (``≤ 0`` when the claim holds), ``runs``, and per run the
        instance, scalarization, target, portfolio size, oracle calls, weights checked, worst
        gap ``max_w (OPT - best)`` and worst violation; ``refused``: whether ``palm`` refuses
        ``PMean(0)`` and ``PMean(-1)``; ``counterexample``: the failing rounding for ``p = 0``.
    """
    t0 = time.perf_counter()
    grid = {**DEFAULT_GRID, **(grid or {})}
    rows = []
    for d, seed, eps, delta in instances:
        for g in scalarizations:
            oracle = small_momdp(d, seed, g)
            p = palm(oracle, eps, delta, prune=prune, progress=False)
            tau = p.info["delta_net"] / d
            W = weight_grid(d, grid[d], taus=(tau,))
            viol, gap, UB, best = measure(oracle, p.values, W, eps, delta)
            i = int(np.argmax(viol))
            rows.append({
                "instance": f"small_momdp(d={d}, seed={seed})", "scalarization": repr(g),
                "eps": eps, "delta": delta, "size": len(p), "calls": p.n_oracle_calls,
                "net_size": p.info["net_size"], "n_weights": len(W), "worst_gap": float(gap.max()),
                "worst_violation": float(viol.max()), "worst_w": W[i], "info_scalarization":
                p.info["scalarization"],
            })
    refused = {}
    oracle0 = small_momdp(2, 0, PMean(0.0))
    for q in (0.0, -1.0):
        try:
            palm(small_momdp(2, 0, PMean(q)) if q else oracle0, 0.2, 0.2, progress=False)
            refused[repr(PMean(q))] = False
        except ValueError:
            refused[repr(PMean(q))] = True
    cex = counterexample_p0()
    max_violation = max(r["worst_violation"] for r in rows)
    passed = (
        max_violation <= SLACK
        and all(refused.values())
        and cex["g_exact"] == 0.0
        and cex["g_oracle"] < cex["target"]
        and all(r["info_scalarization"] == r["scalarization"] for r in rows)
    )
    return ClaimResult(
        "scalarized_palm",
        {"instances": list(instances), "scalarizations": [repr(g) for g in scalarizations],
         "grid": grid, "prune": prune},
        {
            "max_violation": max_violation,
            "runs": len(rows),
            "refused_p_le_0": all(refused.values()),
            "refused": refused,
            "counterexample": cex,
            "rows": rows,
            "seconds": time.perf_counter() - t0,
        },
        passed,
    )
