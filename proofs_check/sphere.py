r"""The worst-case lower bound on portfolio size, checked on its own instance (the sphere front).

Claim (``palmopt.bounds.lower_bound``).  When the achievable set is the positive orthant of the
unit sphere, so ``OPT(w) = ||w||_2``, every (eps, delta)-portfolio has at least

.. math:: k ≥ 2^{1-d} / I_{\sin^2θ}\big(\tfrac{d-1}{2}, \tfrac12\big), \qquad cos θ = 1 - ε - δ\sqrt d

members.  The check brackets the true minimum ``k*`` of the *continuum* instance and compares.

How a finite sample changes the comparison.  :func:`palmopt.bounds.sphere_front` is a finite
sample ``T`` of the front.  Its own minimum portfolio (``palmopt.minimum.minimum_portfolio(T,
...)``) answers a different question in two ways that pull in opposite directions: the sample's
``OPT_T(w) = max_t w·t ≤ ||w||`` asks less of a portfolio (it can come out *smaller* than the
continuum's ``k*``), while members restricted to sample points can need more.  It is reported as
``sample_minimum`` but is not what decides the check.  The bracket is rigorous instead:

* upper: a portfolio of sample points that serves the continuum ``OPT = ||w||`` everywhere,
  certified exactly at the corner weights of its envelope (on each linear piece of ``LB``,
  ``(1-ε)||w|| - δ - LB(w)`` is convex, so its maximum is at a corner weight), the smallest such
  found by set cover with row generation: ``k* ≤ upper``;
* lower: any (continuum) portfolio, each member moved to its nearest sample point (chordal
  distance ``≤ ρ``), still serves every user ``w`` within ``(1-ε-ρ)||w|| - δ``
  (``w·u ≤ w·t + ||w|| ρ``); so the minimum set cover of a finite set of users under that
  relaxed rule, over sample members, is ``≤ k*``.  ``ρ`` is a proven covering radius of the
  sample: in ``d = 2`` from the sorted angles, otherwise from largest-remainder rounding to the
  lattice (``||x - y||_2 ≤ sqrt(L1 · L∞)``) and ``chord ≤ angle ≤ arcsin(||x-y|| / ||x||)`` with
  ``||x|| ≥ 1/√d``.

``d = 2`` also gets the exact continuum answer: a member at angle ``φ`` serves the user
directions ``θ`` with ``cos(θ-φ) + δ(cos θ + sin θ) ≥ 1-ε``, an arc ``[ψ-h, ψ+h]``
(``A e^{iψ} = e^{iφ} + δ(1+i)``, ``cos h = (1-ε)/A``); both ends increase with ``φ`` (checked on a
fine grid), so greedy interval covering of ``[0, π/2]`` -- each next arc the one reaching
furthest while containing the covered prefix -- is optimal and gives ``k*`` itself.
"""

import math
import time

import numpy as np

from palmopt import bounds, lattice
from palmopt.certify import corner_weights
from palmopt.nets import uniform
from palmopt.prune import lp_lower_bound, set_cover

from . import ClaimResult

__all__ = ["lower_bound", "arc_minimum", "continuum_bracket", "covering_radius"]

#: (d, eps, delta) of the full check.
DEFAULT_CASES = (
    (2, 0.02, 0.001),
    (2, 0.05, 0.001),
    (2, 0.1, 0.01),
    (2, 0.2, 0.05),
    (3, 0.05, 0.001),
    (3, 0.1, 0.01),
    (3, 0.2, 0.01),
)
#: Lattice resolution of the member sample per dimension.
DEFAULT_RESOLUTION = {2: 600, 3: 60}
#: Users (rows) per dimension: the simplex lattice of this resolution.
DEFAULT_USERS = {2: 300, 3: 30}
#: Resolution of the sample whose own minimum portfolio is reported (minimum_portfolio).
DEFAULT_SAMPLE_RESOLUTION = {2: 60, 3: 10}


# ------------------------------------------------------------------------------ d = 2, exact


def _arc(phi, eps, delta):
    x, y = np.cos(phi) + delta, np.sin(phi) + delta
    A = np.hypot(x, y)
    psi = np.arctan2(y, x)
    h = np.arccos(np.clip((1.0 - eps) / A, -1.0, 1.0))
    return psi - h, psi + h


def arc_minimum(eps, delta, *, grid=200_001):
    """Exact minimum size of an (eps, delta)-portfolio of the quarter circle (``d = 2``).

    Returns ``(k, monotone, reach)``: the greedy arc count, whether both arc ends are
    non-decreasing in ``φ`` on a grid of ``grid`` angles (the condition for greedy to be
    optimal), and the reach of the last arc (``≥ π/2``).
    """
    phis = np.linspace(0.0, math.pi / 2, grid)
    a, b = _arc(phis, eps, delta)
    monotone = bool(np.all(np.diff(a) >= -1e-15) and np.all(np.diff(b) >= -1e-15))
    covered, k = 0.0, 0
    while covered < math.pi / 2 and k < 10_000:
        if _arc(math.pi / 2, eps, delta)[0] <= covered:
            phi = math.pi / 2
        else:  # largest phi whose arc starts at or before `covered`
            lo, hi = 0.0, math.pi / 2
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if _arc(mid, eps, delta)[0] <= covered else (lo, mid)
            phi = lo
        new = float(_arc(phi, eps, delta)[1])
        if new <= covered:  # pragma: no cover - a gap no member can serve
            return None, monotone, covered
        covered, k = new, k + 1
    return k, monotone, covered


# ------------------------------------------------------------------------------ any d, bracket


def covering_radius(d, resolution, T):
    """A proven bound on ``max_{unit u ≥ 0} min_t ||u - t||`` for ``T = sphere_front(d, resolution)``."""
    if d == 2:
        ang = np.sort(np.arctan2(T[:, 1], T[:, 0]))
        gap = float(np.max(np.diff(np.r_[0.0, ang, math.pi / 2])))
        return 2.0 * math.sin(gap / 4.0)  # half the widest gap, as a chord
    l1 = lattice.covering_radius(d, resolution)  # largest-remainder rounding, L1
    l2 = math.sqrt(l1 / resolution)  # ||.||_2 ≤ sqrt(||.||_1 ||.||_inf), ||.||_inf < 1/N
    return math.asin(min(1.0, math.sqrt(d) * l2))


def _serves(W, T, eps, delta):
    norms = np.linalg.norm(W, axis=1)
    return (W @ T.T >= ((1.0 - eps) * norms - delta)[:, None] - 1e-12).astype(np.uint8)


def continuum_bracket(
    d, eps, delta, *, resolution, users, margins=(0.0, 0.002, 0.005, 0.01, 0.02), rounds=4, method=None
):
    r"""``(lower, upper, info)`` with ``lower ≤ k* ≤ upper`` for the continuum sphere instance.

    See the module docstring.  ``resolution``: lattice resolution of the member sample;
    ``users``: lattice resolution of the user rows (the lower bound's rows, and the first rows
    of the upper bound's row generation).  The upper end: set covers (``method``: "greedy" or
    "exact") of the rows with a service ``margin`` (``w·t ≥ (1-ε+margin)||w|| - δ``), ``rounds``
    rounds of row generation (the violated corner weights) per margin, the first cover that is
    certified over the whole simplex (default: exact for ``d = 2``, greedy otherwise, where
    the exact integer programmes get slow).  Any certified cover bounds ``k*`` from above; the
    lower end always uses the exact minimum (a greedy cover would not bound it from below).
    """
    method = ("exact" if d == 2 else "greedy") if method is None else method
    T = bounds.sphere_front(d, resolution)
    rho = covering_radius(d, resolution, T)
    W = uniform(d, math.comb(users + d - 1, d - 1))
    # lower: relaxed service (1 - eps - rho) ||w|| - delta; exact minimum set cover
    C_low = _serves(W, T, min(eps + rho, 1.0), delta)
    lower = 1
    if C_low.any(axis=1).all():
        cov = set_cover(C_low, "exact")  # a lower bound only when proven minimum
        lower = len(cov) if cov.optimal else lp_lower_bound(C_low)
    # upper: certify at the envelope's corner weights (exact for OPT = ||w||), add violators
    upper, violation, n_rounds, used_margin = None, np.inf, 0, None
    rows = W
    for margin in margins:
        C = _serves(rows, T, eps - margin, delta)
        if not C.any(axis=1).all():
            break
        for _ in range(rounds):
            n_rounds += 1
            chosen = set_cover(C, method).columns
            U = T[chosen]
            corners = corner_weights(U)
            gap = (1.0 - eps) * np.linalg.norm(corners, axis=1) - delta - (corners @ U.T).max(axis=1)
            if gap.max() <= 1e-12:
                upper, violation, used_margin = len(chosen), float(gap.max()), margin
                break
            new = corners[gap > 1e-12]
            rows = np.vstack([rows, new])
            C = np.vstack([C, _serves(new, T, eps - margin, delta)])
        if upper is not None:
            break
    info = {"rho": rho, "n_members": len(T), "n_users": len(W), "rounds": n_rounds, "margin": used_margin,
            "violation": violation}
    return lower, upper, info


def lower_bound(
    cases=DEFAULT_CASES,
    *,
    resolution=None,
    users=None,
    sample_resolution=None,
):
    r"""Check ``bounds.lower_bound`` against the minimum portfolio size of the sphere front.

    Parameters
    ----------
    cases : sequence of (d, eps, delta)
    resolution : dict {d: int}, optional
        Lattice resolution of the member sample (default ``{2: 600, 3: 60}``).
    users : dict {d: int}, optional
        Lattice resolution of the users of the lower bound (default ``{2: 300, 3: 30}``).
    sample_resolution : dict {d: int}, optional
        Resolution of the finite front whose own minimum portfolio is reported
        (``palmopt.minimum.minimum_portfolio``; default ``{2: 60, 3: 10}``; ``{}`` skips it).

    Returns
    -------
    ClaimResult
        Passed when, for every case, the rigorous lower end of the bracket is at least the
        formula (so ``k* ≥ formula`` is verified), the certified upper end is too (it would
        refute the formula otherwise), and for ``d = 2`` the exact arc count lies in the
        bracket and is at least the formula.  ``evidence``: per case the formula, the
        bracket, the arc count (``d = 2``), the sample's own minimum and the covering radius.
    """
    resolution = {**DEFAULT_RESOLUTION, **(resolution or {})}
    users = {**DEFAULT_USERS, **(users or {})}
    sample_resolution = DEFAULT_SAMPLE_RESOLUTION if sample_resolution is None else sample_resolution
    t0 = time.perf_counter()
    rows = []
    for d, eps, delta in cases:
        formula = bounds.lower_bound(d, eps, delta)
        lower, upper, info = continuum_bracket(d, eps, delta, resolution=resolution[d], users=users[d])
        row = {
            "d": d,
            "eps": eps,
            "delta": delta,
            "formula": formula,
            "continuum_lower": lower,
            "continuum_upper": upper,
            "arc_exact": None,
            "sample_minimum": None,
            **info,
        }
        ok = upper is not None and formula <= lower <= upper
        if d == 2:
            k, monotone, _ = arc_minimum(eps, delta)
            row["arc_exact"], row["arc_monotone"] = k, monotone
            ok = ok and monotone and k is not None and lower <= k <= upper and k >= formula
        if d in sample_resolution:
            from palmopt.minimum import minimum_portfolio

            m = minimum_portfolio(bounds.sphere_front(d, sample_resolution[d]), eps, delta)
            row["sample_minimum"] = m.size if m.exact else None
            row["sample_size"] = math.comb(sample_resolution[d] + d - 1, d - 1)
        row["ok"] = bool(ok)
        rows.append(row)
    return ClaimResult(
        claim="lower_bound",
        parameters={
            "cases": [tuple(c) for c in cases],
            "resolution": resolution,
            "users": users,
            "sample_resolution": dict(sample_resolution),
        },
        evidence={
            "cases_ok": f"{sum(r['ok'] for r in rows)}/{len(rows)}",
            "min_lower_minus_formula": min(r["continuum_lower"] - r["formula"] for r in rows),
            "max_upper_over_formula": max((r["continuum_upper"] or np.inf) / r["formula"] for r in rows),
            "seconds": time.perf_counter() - t0,
            "cases": rows,
        },
        passed=all(r["ok"] for r in rows),
    )
