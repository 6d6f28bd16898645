r"""Covering bounds on the simplex: exact net sizes, a closed-form upper bound, and a
worst-case lower bound on the size of any (eps, delta)-portfolio.

Notation (DESIGN.md §2): ``tau = delta / d``, ``gamma = eps / (1 - eps)``, ``q = 1 + gamma``.
The PALM levels are ``0`` and ``tau * q**k`` for ``k = 0..K`` with ``tau * q**K <= 1``;
level ``tau * q**k`` covers ``[tau q^k, tau q^(k+1))`` and level 0 covers ``[0, tau)``.
``B = {tau q^k : k = 0..K}`` are the non-zero levels (all ``<= 1``).
"""

import math
from fractions import Fraction

import numpy as np
from scipy.special import betainc

from . import _kernels, lattice
from .tolerances import INTEGER_ROUNDING
from .validation import check_count, check_dim, check_tolerances

__all__ = ["levels", "net_size", "upper_bound", "lower_bound", "sphere_front", "fmt_int"]

#: Work (elementary steps) above which :func:`net_size` refuses to count exactly.
MAX_COUNT_WORK = 2e10


def levels(d, eps, delta=None):
    """The PALM rounding levels ``[0, tau, tau q, ..., tau q^K]``.

    Parameters
    ----------
    d : int
        Number of objectives.
    eps, delta : float in (0, 1)
        Multiplicative and additive tolerances; ``delta`` defaults to ``eps``.

    Returns
    -------
    ndarray, shape (K + 2,)
        Ascending; the last entry is ``<= 1``.

    Examples
    --------
    >>> from palmopt.bounds import levels
    >>> levels(2, 0.5, 0.5)
    array([0.  , 0.25, 0.5 , 1.  ])
    """
    return _edges(check_dim(d), *check_tolerances(eps, delta))[:-1].copy()


#: Levels are integer multiples of 2**-UNIT_BITS: every sum the net compares with 1 is exact.
UNIT_BITS = 52


#: Most non-zero levels :func:`_edges` builds (about ln(d/delta)/eps of them); beyond, a ValueError.
MAX_LEVELS = 2**20
#: Exact integers with more decimal digits than this are not computed (a ValueError instead).
MAX_DIGITS = 10_000


def fmt_int(n):
    """A non-negative int for a message: ``12,345`` below a million, else ``1.23e+45``.

    Never converts through float (no OverflowError) and never calls ``str`` on a huge int.

    Examples
    --------
    >>> from palmopt.bounds import fmt_int
    >>> fmt_int(17776), fmt_int(10**400 * 3)
    ('17,776', '3.00e+400')
    """
    n = int(n)
    if n < 10**6:
        return f"{n:,}"
    e = int((n.bit_length() - 1) * 0.30102999566398120)
    while 10 ** (e + 1) <= n:
        e += 1
    while 10**e > n:
        e -= 1
    lead = n // 10 ** (e - 2)
    return f"{lead // 100}.{lead % 100:02d}e+{e}"


def _fmt_log10(x):
    """``10^x`` for a message, from its base-10 logarithm (a float, possibly huge)."""
    if x < 15:
        return f"{10**x:.3g}"
    return f"about 10^{x:.1f}"


def _edges(d, eps, delta):
    """Levels followed by the (open) upper end of the top level, which is > 1.

    The levels are dyadic: ``l_0 = floor(tau 2^52) 2^-52`` and ``l_(k+1) = floor(l_k q 2^52) 2^-52``
    in exact rational arithmetic, so ``l_0 <= tau`` and ``l_(k+1) <= q l_k`` hold exactly (the
    lemma needs nothing more), and sums of up to ``2^52`` levels below 2 are exact floats: the
    net, its count and ``locate`` agree even at exact ties ``Σ lo = 1``.

    Refuses (ValueError), before any loop, when ``tau`` is below ``2^-52``, when ``q`` is so
    close to 1 that the first level would not grow, or when there would be more than
    ``MAX_LEVELS`` levels: the work is bounded whatever the tolerances.
    """
    one_minus = 1 - Fraction(eps)
    a, b = one_minus.numerator, one_minus.denominator  # q = 1 / (1 - eps) = b / a
    level = int(Fraction(delta) / d * 2**UNIT_BITS)
    if level == 0:
        raise ValueError(
            f"delta={delta:g} is too small for d={d}: the first level delta/d = {delta / d:.3g} is below "
            f"2^-{UNIT_BITS} (about 2.2e-16), the resolution of the net's levels; use a larger delta."
        )
    if level * b // a == level:
        raise ValueError(
            f"eps={eps:g} is too small for delta={delta:g}, d={d}: the levels would not grow at the resolution "
            f"2^-{UNIT_BITS}; use a larger eps (or palmopt.cover(..., kind='additive'), which does not use eps)."
        )
    gamma = Fraction(eps) / one_minus
    estimate = math.log(2**UNIT_BITS / level) / math.log1p(float(gamma))
    if estimate > MAX_LEVELS:
        raise ValueError(
            f"the PALM net for d={d}, eps={eps:g}, delta={delta:g} needs about {estimate:.3g} levels per coordinate "
            f"(ln(d/delta)/ln(1+eps/(1-eps))), more than {MAX_LEVELS:,}; use larger tolerances, or "
            f"palmopt.adaptive, which needs no net."
        )
    units = [level]
    limit = 2**UNIT_BITS
    while level <= limit:
        level = level * b // a
        units.append(level)
    return np.concatenate(([0.0], np.array(units, dtype=np.float64) / 2**UNIT_BITS))


def net_size(d, eps, delta=None, *, kind="palm"):
    r"""Exact size of the net ``cover(d, eps, delta, kind=kind)``, without building it.

    Parameters
    ----------
    d : int
    eps, delta : float in (0, 1)
        ``delta`` defaults to ``eps``.  ``kind="additive"`` uses ``delta`` only.
    kind : {"palm", "additive"}

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If the exact count would take more than ``MAX_COUNT_WORK`` steps (use
        :func:`upper_bound` instead).

    Notes
    -----
    A level vector with cell ``∏ [lo_i, hi_i)`` is in the net iff ``Σ lo ≤ 1 < Σ hi``, and
    ``hi > lo`` coordinatewise, so ``|net| = #{Σ lo ≤ 1} - #{Σ hi ≤ 1}``.  The map
    ``level ↦ hi`` is a bijection from the levels onto ``{tau q^m : m = 0..K+1}``, whose
    members ``<= 1`` are exactly ``B``; so ``#{Σ hi ≤ 1} = M_d`` while, splitting by the
    number ``j`` of non-zero levels, ``#{Σ lo ≤ 1} = Σ_j C(d, j) M_j``.  Hence

    .. math:: |net| = \sum_{j=0}^{d-1} \binom{d}{j} M_j, \qquad
              M_j = \#\{ b ∈ B^j : b_1 + ... + b_j ≤ 1 \},

    exact ties included.  ``M_j`` is a dynamic programme over coordinates: the last four
    are counted with two pointers over the sorted pair sums, time ``O(|B|^{max(2, d-3)})``
    and memory ``O(|B|^2)``.  (Floating-point sums taken in another order than the
    enumeration's are the only way the two could differ; the tests check that they agree.)
    For ``kind="additive"`` the size is ``binom(N + d - 1, d - 1)`` with
    ``N = lattice.resolution(d, delta)``.

    Examples
    --------
    >>> from palmopt.bounds import net_size
    >>> net_size(3, 0.05), net_size(6, 0.01) > 10**11
    (17776, True)
    """
    d = check_dim(d)
    eps, delta = check_tolerances(eps, delta)
    if kind == "additive":
        return lattice.size(d, lattice.resolution(d, delta))
    if kind != "palm":
        raise ValueError(f"`kind` must be 'palm' or 'additive'; got {kind!r}.")
    B = np.ascontiguousarray(_edges(d, eps, delta)[1:-1])
    log_work = max(2, d - 3) * math.log10(len(B)) if len(B) > 1 else 0.0
    if log_work > math.log10(MAX_COUNT_WORK):
        raise ValueError(
            f"the exact count for d={d}, eps={eps}, delta={delta} needs {_fmt_log10(log_work)} steps "
            f"(|B| = {len(B):,} non-zero levels, more than {MAX_COUNT_WORK:.0e}); use "
            f"palmopt.bounds.upper_bound instead."
        )
    return sum(math.comb(d, j) * int(_kernels.count_tuples_at_most(B, j, 1.0)) for j in range(d))


def upper_bound(d, eps, delta=None):
    r"""Closed-form upper bound on the size of the PALM net.

    .. math:: |net| ≤ (K + 2)^d - (K + 1)^d, \qquad K + 1 = |B| ≈ ⌊ \ln(d/δ) / \ln(1+γ) ⌋ + 1

    (``K + 1`` non-zero levels; the dyadic rounding of the levels can add one when
    ``tau (1+γ)^(K+1)`` is within 2^-52 of 1).

    Proof: in the count of :func:`net_size`, ``M_j ≤ |B|^j`` with ``|B| = K + 1``, so
    ``|net| ≤ Σ_{j<d} C(d, j) (K+1)^j = (K+2)^d - (K+1)^d``; this improves DESIGN.md's
    ``(K+2)^d`` by the ``(K+1)^d`` tuples without a zero level, and is exact for ``d = 2``.

    Examples
    --------
    >>> from palmopt.bounds import upper_bound
    >>> upper_bound(2, 0.05), upper_bound(3, 0.05)
    (145, 19441)
    """
    d = check_dim(d)
    eps, delta = check_tolerances(eps, delta)
    K = len(_edges(d, eps, delta)) - 3
    digits = d * math.log10(K + 2)
    if digits > MAX_DIGITS:
        raise ValueError(
            f"the upper bound for d={d}, eps={eps:g}, delta={delta:g} is {_fmt_log10(digits)}, more than "
            f"{MAX_DIGITS:,} digits; it is not computed exactly."
        )
    return (K + 2) ** d - (K + 1) ** d


def lower_bound(d, eps, delta=None):
    r"""Worst-case lower bound on the size of any (eps, delta)-portfolio in dimension d.

    On the instance whose achievable set is the positive orthant of the unit sphere
    (:func:`sphere_front`), every (eps, delta)-portfolio has at least

    .. math:: k ≥ \frac{2^{1-d}}{I_{\sin^2θ}\big(\tfrac{d-1}{2}, \tfrac12\big)},
              \qquad \cos θ = 1 - ε - δ\sqrt{d},

    members (``I`` the regularised incomplete beta function; 1 when ``cos θ ≤ 0``).

    Proof sketch: there ``OPT(w) = ||w||_2``.  A member ``u`` (a unit vector, or a shorter
    one, which serves less) serves ``w`` only if ``w·u ≥ (1-ε)||w|| - δ``, i.e.
    ``cos∠(w, u) ≥ 1 - ε - δ/||w|| ≥ 1 - ε - δ√d`` since ``||w|| ≥ 1/√d`` on the simplex.
    So each member serves the directions in a spherical cap of angular radius θ, whose
    share of the sphere is ``I_{sin²θ}((d-1)/2, 1/2) / 2``, while the simplex's directions
    fill the orthant, a share ``2^-d``.  For d = 2 this reads ``k ≥ π / (4θ)``.

    Examples
    --------
    >>> from palmopt.bounds import lower_bound
    >>> lower_bound(2, 0.05, 0.0001), lower_bound(3, 0.05, 0.0001)
    (3, 5)
    """
    d = check_dim(d)
    eps, delta = check_tolerances(eps, delta)
    cos_theta = 1.0 - eps - delta * math.sqrt(d)
    if d == 1 or cos_theta <= 0.0:
        return 1
    sin2 = 1.0 - cos_theta**2
    share = float(betainc((d - 1) / 2.0, 0.5, sin2))
    ratio = 2.0 ** (1 - d) / share if share > 0 else math.inf
    if not math.isfinite(ratio):
        raise ValueError(
            f"the lower bound for d={d}, eps={eps:g}, delta={delta:g} overflows floating point "
            f"(the cap's share of the sphere underflows); it is computed for moderate d only."
        )
    return max(1, math.ceil(ratio * (1.0 - INTEGER_ROUNDING)))


def sphere_front(d, resolution):
    """The worst-case instance of :func:`lower_bound`: unit vectors of the positive orthant.

    Returns the normalised points of the simplex lattice of the given resolution, i.e. a
    finite, evenly spread sample of ``{v ≥ 0 : ||v||_2 = 1}``; every row lies in [0, 1]^d.

    Examples
    --------
    >>> from palmopt.bounds import sphere_front
    >>> sphere_front(2, 2).round(3)
    array([[0.   , 1.   ],
           [0.707, 0.707],
           [1.   , 0.   ]])
    """
    V = lattice.points(check_dim(d), check_count(resolution, "resolution")).astype(np.float64)
    return V / np.linalg.norm(V, axis=1, keepdims=True)
