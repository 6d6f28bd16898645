r"""Exactness of the PALM net count, and the closed-form upper bounds.

Claim.  ``palmopt.bounds.net_size(d, eps, delta)`` is the exact number of points of
``palmopt.cover(d, eps, delta)``: the level vectors whose cell ``∏[lo_i, hi_i)`` meets the
simplex, i.e. ``Σ lo ≤ 1 < Σ hi`` (DESIGN.md §2).  The closed forms
``bounds.upper_bound = (K+2)^d - (K+1)^d`` and DESIGN.md's ``(K+2)^d`` with
``K = ⌊ln(d/δ)/ln(1+γ)⌋`` are at least the count, and the first is exact for ``d = 2``.
"""

import itertools
import math
import time
from fractions import Fraction

import numpy as np

from palmopt import bounds
from palmopt.nets import cover

from . import ClaimResult

__all__ = ["net_count", "brute_force_count", "design_bound", "dyadic_level_units"]

#: (d, eps, delta) of the full check.
DEFAULT_GRID = (
    (1, 0.1, 0.1),
    (2, 0.05, 0.05),
    (2, 0.3, 0.01),
    (2, 0.01, 0.3),
    (3, 0.05, 0.05),
    (3, 0.02, 0.01),
    (3, 0.2, 0.05),
    (3, 0.5, 0.5),
    (4, 0.1, 0.1),
    (4, 0.3, 0.05),
    (5, 0.3, 0.3),
    (6, 0.5, 0.4),
)
#: The sizes quoted in DESIGN.md §2.
DESIGN_SIZES = {(2, 0.05, 0.05): 145, (3, 0.05, 0.05): 17776, (3, 0.02, 0.01): 228793, (4, 0.1, 0.1): 132959}
#: Build the net (enumeration) only up to this many points; brute-force up to this many tuples.
MAX_ENUMERATE = 300_000
MAX_BRUTE = 30_000_000

UNIT_BITS = 52


def dyadic_level_units(d, eps, delta):
    """The levels as integers in units of ``2^-52``, recomputed from their definition.

    ``l_0 = ⌊τ 2^52⌋``, ``l_(k+1) = ⌊l_k q⌋`` with ``q = 1 + ε/(1-ε)`` in exact rationals, until a
    level exceeds ``2^52`` (that last one is the open upper end of the top cell).  Returns
    ``[0, l_0, ..., l_K, l_(K+1)]``.
    """
    q = 1 + Fraction(eps) / (1 - Fraction(eps))
    one = 2**UNIT_BITS
    level = math.floor(Fraction(delta) / d * one)
    units = [0, level]
    while level <= one:
        level = math.floor(level * q)
        units.append(level)
    return units


def brute_force_count(d, eps, delta):
    """``#{level vectors : Σ lo ≤ 1 < Σ hi}`` over the full product of levels, in exact integers.

    Independent of palmopt's counting kernel and enumeration walk: every one of the
    ``(K+2)^d`` level vectors is tested (vectorised over the last two coordinates).
    """
    units = dyadic_level_units(d, eps, delta)
    lo = np.array(units[:-1], dtype=np.int64)  # level i covers [units[i], units[i+1])
    hi = np.array(units[1:], dtype=np.int64)
    one = 2**UNIT_BITS
    if d == 1:
        return int(np.sum((lo <= one) & (one < hi)))
    count = 0
    n = len(lo)
    lo2 = lo[:, None] + lo[None, :]
    hi2 = hi[:, None] + hi[None, :]
    for head in itertools.product(range(n), repeat=d - 2):
        idx = list(head)
        s_lo = int(lo[idx].sum())
        s_hi = int(hi[idx].sum())
        count += int(np.count_nonzero((s_lo + lo2 <= one) & (one < s_hi + hi2)))
    return count


def design_bound(d, eps, delta):
    """DESIGN.md §2's closed form ``(K+2)^d`` with ``K = ⌊ln(d/δ) / ln(1+γ)⌋``."""
    gamma = eps / (1 - eps)
    K = math.floor(math.log(d / delta) / math.log(1 + gamma))
    return (K + 2) ** d


def net_count(grid=DEFAULT_GRID, *, max_enumerate=MAX_ENUMERATE, max_brute=MAX_BRUTE):
    """Check the exact net count against enumeration and brute force, and the closed forms.

    Parameters
    ----------
    grid : sequence of (d, eps, delta)
    max_enumerate : int
        Build ``cover(...)`` and compare ``len`` when the count is at most this.
    max_brute : int
        Brute-force the full level product when it has at most this many tuples.

    Returns
    -------
    ClaimResult
        ``evidence``: ``count_mismatches`` (0 when every comparison agrees), the number of
        cases enumerated and brute-forced, ``bound_violations`` (cases where a closed form is
        below the count), the tightness ``count / upper_bound`` range, and a row per case.
    """
    t0 = time.perf_counter()
    rows = []
    for d, eps, delta in grid:
        count = bounds.net_size(d, eps, delta)
        units = dyadic_level_units(d, eps, delta)
        levels_match = bool(
            np.array_equal(np.array(units[:-1], dtype=np.float64) / 2**UNIT_BITS, bounds.levels(d, eps, delta))
        )
        enum = len(cover(d, eps, delta, max_points=max_enumerate)) if count <= max_enumerate else None
        n_tuples = (len(units) - 1) ** d
        brute = brute_force_count(d, eps, delta) if n_tuples <= max_brute else None
        ub = bounds.upper_bound(d, eps, delta)
        design_ub = design_bound(d, eps, delta)
        expected = DESIGN_SIZES.get((d, eps, delta))
        rows.append(
            {
                "d": d,
                "eps": eps,
                "delta": delta,
                "net_size": count,
                "enumerated": enum,
                "brute_force": brute,
                "design_md": expected,
                "upper_bound": ub,
                "design_bound": design_ub,
                "count_over_upper_bound": count / ub,
                "levels_match": levels_match,
                "agree": bool(
                    (enum is None or enum == count)
                    and (brute is None or brute == count)
                    and (expected is None or expected == count)
                    and levels_match
                ),
                "bounds_hold": bool(count <= ub <= design_ub and (d != 2 or ub == count)),
            }
        )
    mismatches = sum(not r["agree"] for r in rows)
    violations = sum(not r["bounds_hold"] for r in rows)
    ratios = [r["count_over_upper_bound"] for r in rows]
    return ClaimResult(
        claim="net_count",
        parameters={"grid": [tuple(g) for g in grid], "max_enumerate": max_enumerate, "max_brute": max_brute},
        evidence={
            "count_mismatches": mismatches,
            "bound_violations": violations,
            "brute_forced": sum(r["brute_force"] is not None for r in rows),
            "enumerated": sum(r["enumerated"] is not None for r in rows),
            "min_count_over_bound": min(ratios),
            "max_count_over_bound": max(ratios),
            "seconds": time.perf_counter() - t0,
            "cases": rows,
        },
        passed=mismatches == 0 and violations == 0 and any(r["brute_force"] is not None for r in rows),
    )
