r"""Certificates from approximate and noisy oracles (DESIGN.md §6).

A learned oracle returns at ``w_q`` a policy ``π_q`` that may be suboptimal, and an *estimate*
``v̂_q`` of its values with standard errors ``s_q``.  Two things can make a black-box certificate
false, and both are accounted for here:

**Optimization error.**  With a declared error ``(η_m, η_a)`` -- ``w·v(π_w) ≥ (1-η_m) OPT(w) - η_a``
-- the bound at a queried weight is ``OPT(w_q) ≤ b_q = (w_q·v(π_q) + η_a) / (1-η_m)``.  Every
policy found so far is achievable, so ``w_q·v(π_j) ≤ OPT(w_q) ≤ b_q`` for all ``q, j``; an
excess ``w_q·v(π_j) - b_q > 0`` (net of the noise allowance) *refutes* the declared error and
is a lower bound on the oracle's additive error at ``w_q`` (:func:`observed_error`).

**Evaluation noise.**  Every estimate gets a box ``[v̂ - z·s, v̂ + z·s] ∩ value_range`` that
holds for all its coordinates at once; the error probability ``α = 1 - confidence`` is spent
over the estimates in the order they are made, ``α_t = α·6/(π² t²)`` for the ``t``-th (so any
number of adaptive calls and re-evaluations stays within ``α``), split over the ``d``
coordinates and both tails (:class:`NoiseBudget`).  On the event that every true value lies in
its box -- probability ``≥ confidence`` -- the certificate below is exact.

**The robust certificate.**  Let the portfolio's members have point estimates ``v̂_j`` and let
``R_j = {w ∈ Δ : w·v̂_j ≥ w·v̂_k ∀k}`` (these cells cover the simplex).  On ``R_j`` the true lower
envelope is at least ``w·v_j``, so the certificate holds if for every ``j`` and ``w ∈ R_j``

.. math:: g_j(w) = \sup_{v ∈ \text{boxes}} \; (1-ε)\,UB(w; b(v)) - w·v_j \;≤\; δ,

where ``UB(w; b) = max{w·x : w_q·x ≤ b_q ∀q, x ∈ value_range}`` and ``b_q(v) = (w_q·v_q + η_a) /
(1-η_m)``.  ``g_j`` is a supremum of convex functions of ``w``, hence convex, so its maximum over
the polytope ``R_j`` is attained at a vertex -- a corner weight of the estimated envelope where
``j`` is active.  At a vertex ``c`` the supremum is one small LP in ``(x, v_j)``: the member's
true value appears both in the objective (``-c·v_j``) and in its own query's bound
(``w_j·x ≤ (w_j·v_j + η_a)/(1-η_m)``), so the noise cancels near the member's own weight instead
of being paid twice; every other query enters with the top of its box.  With exact values the
LP is the optimistic bound of :func:`palmopt.certify.upper_bound_opt`.

Assumptions, stated on every certificate: each estimate is unbiased for the *returned* policy's
true value (not selected by the same noisy numbers), its coordinates' errors are independent of
everything before and approximately normal with the stated standard error (``tails="chebyshev"``
needs only the variance, at a higher price).
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.stats import norm

from .certificate import Certificate
from .certify import corner_weights
from .status import Status
from .tolerances import LP_SANDWICH, SHORTFALL, WEIGHT_DECIMALS
from .validation import check_choice, check_count, check_fraction

__all__ = ["NoiseBudget", "Evidence", "Replicates", "pool", "policy_key", "observed_error", "robust_certificate", "replicate"]

#: How the tails of an estimate's error are bounded.
TAILS = ("normal", "chebyshev")
#: A member counts as active at a corner weight when within this of the envelope (a wider net
#: only adds LPs, never loses soundness).
ACTIVE_TOL = 1e-7


class NoiseBudget:
    """Spend ``α = 1 - confidence`` over the estimates used, in the order they are made.

    The ``t``-th estimate (``t = 1, 2, ...``) gets ``α_t = α·6/(π² t²)`` (``Σ α_t = α``), split
    over its ``d`` coordinates and both tails: its box half-width is ``z_t·s`` with
    ``z_t = Φ⁻¹(1 - α_t/(2d))`` for normal errors, or ``z_t = (d/α_t)^½`` by Chebyshev's
    inequality (any distribution with the stated standard deviation).

    Examples
    --------
    >>> from palmopt.uncertainty import NoiseBudget
    >>> budget = NoiseBudget(0.9)
    >>> [round(budget.next(d=2), 3) for _ in range(3)]
    [2.165, 2.669, 2.931]
    >>> budget.used
    3
    """

    def __init__(self, confidence, tails="normal"):
        self.confidence = check_fraction(confidence, "confidence")
        self.tails = check_choice(tails, "tails", TAILS)
        self.used = 0

    @property
    def alpha(self):
        return 1.0 - self.confidence

    def next(self, d):
        """The box multiplier ``z_t`` for the next estimate of ``d`` coordinates."""
        self.used += 1
        alpha_t = self.alpha * 6.0 / (math.pi**2 * self.used**2)
        if self.tails == "normal":
            return float(norm.isf(alpha_t / (2 * d)))
        return math.sqrt(d / alpha_t)

    def describe(self):
        model = (
            "approximately normal" if self.tails == "normal" else "of any distribution (Chebyshev's inequality)"
        )
        return (
            f"each estimate unbiased for the returned policy's value, its coordinates' errors independent "
            f"and {model} with the stated standard errors; error probability {self.alpha:.3g} spent over "
            f"{self.used} estimates (alpha*6/(pi^2 t^2) for the t-th)"
        )


def pool(values, stderrs):
    """Inverse-variance pooling of independent estimates of one policy's values.

    Returns ``(values, stderr)``; an exact estimate (``stderr`` all zero) wins outright.

    Examples
    --------
    >>> from palmopt.uncertainty import pool
    >>> v, s = pool([[0.5, 0.2], [0.7, 0.4]], [[0.1, 0.1], [0.1, 0.1]])
    >>> v.round(3).tolist(), s.round(4).tolist()
    ([0.6, 0.3], [0.0707, 0.0707])
    """
    V = np.asarray(values, dtype=np.float64)
    S = np.asarray(stderrs, dtype=np.float64)
    if V.shape != S.shape or V.ndim != 2:
        raise ValueError(f"`values` and `stderrs` must have the same shape (r, d); got {V.shape} and {S.shape}.")
    exact = np.all(S == 0, axis=1)
    if exact.any():
        return V[np.argmax(exact)].copy(), np.zeros(V.shape[1])
    inv = 1.0 / S**2
    return (inv * V).sum(axis=0) / inv.sum(axis=0), 1.0 / np.sqrt(inv.sum(axis=0))


def policy_key(policy, default):
    """A key equal for equal policy handles (arrays by content, hashable handles by value), so
    that estimates of one policy can be pooled; ``default`` (unique) for ``None`` and for handles
    that cannot be compared that way.

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.uncertainty import policy_key
    >>> policy_key(np.array([0, 1]), 0) == policy_key(np.array([0, 1]), 1), policy_key(None, 7)
    (True, 7)
    """
    if isinstance(policy, np.ndarray):
        return ("array", policy.dtype.str, policy.shape, policy.tobytes())
    if policy is None:
        return default
    try:
        hash(policy)
    except TypeError:
        return default
    return ("handle", type(policy).__name__, policy)


@dataclass(frozen=True, eq=False)
class Evidence:
    """What the oracle has said: queried weights, point estimates, standard errors and box
    multipliers (one row per query), the declared error and the value range.

    ``group[q]`` is the first query that returned the same policy as query ``q`` (rows of one
    group share one pooled estimate, and the policy's true value enters every one of their
    bounds).  ``lower``/``upper`` are the boxes that hold, on the budget's event, for the true
    values.
    """

    Q: np.ndarray
    V: np.ndarray
    S: np.ndarray
    Z: np.ndarray
    eta: tuple = (0.0, 0.0)
    value_range: tuple = (0.0, 1.0)
    group: np.ndarray = None

    def __post_init__(self):
        if self.group is None:
            object.__setattr__(self, "group", np.arange(len(self.Q)))

    @property
    def members(self):
        """One row per distinct policy (the first query that returned it)."""
        return np.unique(self.group)

    @property
    def noisy(self):
        return bool(np.any(self.S > 0))

    @property
    def lower(self):
        return np.clip(self.V - self.Z[:, None] * self.S, *self.value_range)

    @property
    def upper(self):
        return np.clip(self.V + self.Z[:, None] * self.S, *self.value_range)

    def bounds(self):
        """``b_q``: the top of each query's box mapped through the declared error."""
        eta_m, eta_a = self.eta
        return (np.einsum("ij,ij->i", self.Q, self.upper) + eta_a) / (1.0 - eta_m)


def observed_error(evidence):
    """The largest excess ``max_{q,j} w_q·l_j - b_q`` of a found policy's value (box bottom
    ``l_j``) over the bound at a queried weight; returns ``(excess, q, j, needed_eta_a)`` where
    ``needed_eta_a`` is the additive error that would make the answers consistent.

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.uncertainty import Evidence, observed_error
    >>> Q = np.array([[1.0, 0.0], [0.5, 0.5]])
    >>> V = np.array([[0.9, 0.1], [0.2, 0.2]])    # at w=(.5,.5) the first policy scores 0.5 > 0.2
    >>> ev = Evidence(Q, V, np.zeros_like(V), np.zeros(2))
    >>> excess, q, j, needed = observed_error(ev)
    >>> round(excess, 3), q, j, round(needed, 3)
    (0.3, 1, 0, 0.3)
    """
    eta_m, _ = evidence.eta
    scores = evidence.Q @ evidence.lower.T  # (q, j): w_q · l_j
    excess = scores - evidence.bounds()[:, None]
    q, j = np.unravel_index(int(np.argmax(excess)), excess.shape)
    own = float(evidence.Q[q] @ evidence.upper[q])
    needed = (1.0 - eta_m) * float(scores[q, j]) - own
    return float(excess[q, j]), int(q), int(j), float(needed)


def _pair_lp(c, j, evidence, b, lower, upper, eps):
    """``sup (1-ε) c·x - c·v_j`` over ``x`` under every query's bound (``j``'s own with ``v_j``
    free in its box).  Returns ``(dual bound, primal value, multipliers, (c·x, c·v_j))``; the
    dual bound is recomputed with NumPy from the multipliers (weak duality)."""
    eta_m, eta_a = evidence.eta
    lo, hi = evidence.value_range
    kappa = 1.0 / (1.0 - eta_m)
    Q = evidence.Q
    m, d = Q.shape
    own = np.flatnonzero(evidence.group == j)  # every query that returned the member's policy
    A = np.zeros((m, 2 * d))
    A[:, :d] = Q
    rhs = b.copy()
    A[own, d:] = -kappa * Q[own]
    rhs[own] = kappa * eta_a
    obj = np.concatenate([-(1.0 - eps) * c, c])
    res = linprog(obj, A_ub=A, b_ub=rhs, bounds=[(lo, hi)] * d + list(zip(lower[j], upper[j])), method="highs")
    if res.status != 0:
        return np.inf, -np.inf, np.zeros(m), (np.nan, np.nan)
    y = np.maximum(-res.ineqlin.marginals, 0.0)
    gx = (1.0 - eps) * c - Q.T @ y
    gv = -c + kappa * (y[own] @ Q[own])
    bound = float(rhs @ y + np.maximum(gx * hi, gx * lo).sum() + np.maximum(gv * upper[j], gv * lower[j]).sum())
    cx = float(c @ np.clip(res.x[:d], lo, hi))
    cv = float(c @ np.clip(res.x[d:], lower[j], upper[j]))
    return bound, (1.0 - eps) * cx - cv, y, (cx, cv)


def _eps_root(c, j, evidence, b, lower, upper, max_iter=30):
    """Worst ratio gap ``max 1 - c·v_j / c·x`` at the pair, by Dinkelbach's iteration (the
    pair's LP value is convex and decreasing in ``ε``; its root is the gap)."""
    eps = 0.0
    for _ in range(max_iter):
        bound, _, _, (cx, cv) = _pair_lp(c, j, evidence, b, lower, upper, eps)
        if bound <= SHORTFALL or not np.isfinite(bound) or cx <= 0:
            break
        nxt = 1.0 - cv / cx
        if nxt <= eps + 1e-12:
            break
        eps = nxt
    return max(eps, 0.0)


def robust_certificate(evidence, members, eps, delta, *, cache=None, version=0, gaps=False):
    """The black-box certificate of the members (row indices into ``evidence``) that holds on
    the event that every true value lies in its box (see the module docstring).

    ``cache`` maps ``(corner, member)`` to an earlier LP ``(value, n_queries, version, y)``.
    Queries added since only lower the supremum, so a cached value is still an upper bound
    and a pair it shows met is not solved again; a different ``version`` (boxes changed by
    re-evaluation) invalidates the entry.  Returns ``(certificate, pairs)``: ``pairs`` lists
    ``(shortfall, corner, member, multipliers)`` for every (corner, active member) LP, largest
    shortfall first.  ``gaps=True`` also computes the worst pure gaps ``eps*`` (Dinkelbach) and
    ``delta*`` (additive); otherwise they are ``nan``.
    """
    members = np.asarray(members, dtype=int)
    cache = {} if cache is None else cache
    m = len(evidence.Q)
    b = evidence.bounds()
    lower, upper = evidence.lower, evidence.upper
    U = evidence.V[members]
    corners = corner_weights(U)
    scores = corners @ U.T
    active = scores >= scores.max(axis=1, keepdims=True) - ACTIVE_TOL
    pairs, lp_gap = [], 0.0
    for i, c in enumerate(corners):
        ckey = np.round(c, WEIGHT_DECIMALS).tobytes()
        for k in np.flatnonzero(active[i]):
            j = int(members[k])
            hit = cache.get((ckey, j))
            if hit is not None and hit[2] == version and (hit[1] == m or hit[0] - delta <= SHORTFALL):
                value, y = hit[0], hit[3]
            else:
                value, primal, y, _ = _pair_lp(c, j, evidence, b, lower, upper, eps)
                lp_gap = max(lp_gap, value - primal)
                cache[(ckey, j)] = (value, m, version, y)
            pairs.append((value - delta, i, j, y))
    pairs.sort(key=lambda p: -p[0])
    worst = pairs[0]
    eps_star = delta_star = float("nan")
    eps_w = delta_w = None
    if gaps:
        add = [(_pair_lp(corners[i], j, evidence, b, lower, upper, 0.0)[0], i) for _, i, j, _ in pairs]
        delta_star, i_d = max(add)
        delta_w = corners[i_d]
        ratio = [(_eps_root(corners[i], j, evidence, b, lower, upper), i) for _, i, j, _ in pairs]
        eps_star, i_e = max(ratio)
        eps_w = corners[i_e]
        delta_star = max(float(delta_star), 0.0)
    cert = Certificate(
        holds=bool(worst[0] <= SHORTFALL),
        violation=float(worst[0]),
        worst_weight=corners[worst[1]],
        eps_star=float(eps_star),
        eps_weight=eps_w,
        delta_star=float(delta_star),
        delta_weight=delta_w,
        eps=eps,
        delta=delta,
        kind="black-box",
        status=Status.SUCCESS if lp_gap <= LP_SANDWICH else Status.NUMERICAL_TROUBLE,
        max_lp_gap=float(lp_gap),
        n_lps=len(pairs),
    )
    return cert, [(s, corners[i], j, y) for s, i, j, y in pairs]


@dataclass(frozen=True, eq=False)
class Replicates:
    """Replicated oracle calls at one weight with different training seeds.

    Attributes
    ----------
    weight : ndarray (d,)
    values : ndarray (k, d)
        Each replicate's (estimated) values.
    stderr : ndarray (k, d)
        Their standard errors (zeros for exact values).
    spread : ndarray (d,)
        Seed-to-seed standard deviation of each value.
    observed_error : float
        ``max_r w·l_r - min_r w·u_r`` over the replicates' boxes (``z`` at ``confidence``): the
        best replicate proves ``OPT(w)`` at least its value, so the worst one fell short of the
        optimum by at least this much -- a lower bound on the oracle's additive error at ``w``
        (``0`` when the replicates agree within the noise).
    """

    weight: np.ndarray
    values: np.ndarray
    stderr: np.ndarray
    spread: np.ndarray
    observed_error: float

    def __repr__(self):
        return (
            f"Replicates(k={len(self.values)}, spread={np.array2string(self.spread, precision=3)}, "
            f"observed_error={self.observed_error:.3g})"
        )


def replicate(oracle, w, k, *, seeds=None, confidence=0.95):
    """Run the oracle ``k`` times at ``w`` with different training seeds.

    Seed-to-seed variation of training is *optimization* error, not evaluation noise: this
    estimates it, e.g. to choose the ``error`` an oracle should declare.  The oracle must offer
    ``with_seed(seed)`` returning an otherwise equal oracle.

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.oracle import Solution
    >>> from palmopt.uncertainty import replicate
    >>> class Seeded:
    ...     d = 2
    ...     def __init__(self, seed=0): self.seed = seed
    ...     def with_seed(self, seed): return Seeded(seed)
    ...     def __call__(self, w):    # seed 1 trains a worse policy
    ...         return Solution([0.8, 0.8] if self.seed != 1 else [0.6, 0.6])
    >>> r = replicate(Seeded(), [0.5, 0.5], 3)
    >>> round(r.observed_error, 3)
    0.2
    """
    from .oracle import checked

    k = check_count(k, "k", minimum=2)
    if not callable(getattr(oracle, "with_seed", None)):
        raise TypeError(
            f"replicate() needs an oracle with `with_seed(seed)` (an equal oracle with another training seed); "
            f"{type(oracle).__name__} has none."
        )
    seeds = list(range(k)) if seeds is None else list(seeds)
    if len(seeds) != k:
        raise ValueError(f"`seeds` must have k={k} entries; got {len(seeds)}.")
    base = checked(oracle)
    w = np.array(w, dtype=np.float64)
    sols = [checked(oracle.with_seed(s), base.value_range)(w) for s in seeds]
    V = np.array([s.values for s in sols])
    S = np.array([np.zeros(base.d) if s.stderr is None else s.stderr for s in sols])
    budget = NoiseBudget(confidence)
    Z = np.array([budget.next(base.d) if np.any(s > 0) else 0.0 for s in S])
    lo = (V - Z[:, None] * S) @ w
    hi = (V + Z[:, None] * S) @ w
    return Replicates(
        weight=w,
        values=V,
        stderr=S,
        spread=V.std(axis=0, ddof=1),
        observed_error=float(max(lo.max() - hi.min(), 0.0)),
    )
