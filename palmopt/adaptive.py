r"""Certified adaptive portfolios: the corner-weight search (DESIGN.md §3–4).

What the oracle has said bounds OPT from above: every achievable ``v`` has
``w_q·v ≤ OPT(w_q) ≤ b_q`` at each queried ``w_q`` and ``0 ≤ v ≤ 1``, so

.. math:: OPT(w) ≤ UB(w) = \max\{ w·v : w_q·v ≤ b_q\ ∀q,\ 0 ≤ v ≤ 1 \}.

The portfolio's lower envelope ``LB(w) = max_j w·u_j`` is linear on the regions cut out by its
*corner weights*; on each region ``(1-ε) UB - δ - LB`` is convex (``UB`` is a support function),
so its maximum over the whole simplex is attained at a corner weight.  The search queries
the oracle at the corner(s) with the largest shortfall and stops when no corner falls short:
the certificate ``(1-ε) UB(w) - δ ≤ LB(w)`` then holds for every ``w``, hence the guarantee
``LB(w) ≥ (1-ε) OPT(w) - δ``.  With ``ε = 0`` this is Optimistic Linear Support (Roijers et
al., 2015) with an additive stop; in two dimensions it is the Chord algorithm
(Diakonikolas–Yannakakis).

Cost (issue #13).  Batched rounds spread their corners out (:func:`_select`) and ramp up (at
most as many weights as queried so far), so ``batch=8`` costs few extra calls; past
``CORNERS_PER_CALL`` corners per call of a round (d ≳ 8) rounds grow so that the certificate is
not rebuilt after every call.  ``time_limit`` stops between rounds with the best (sound)
certificate.  The search keeps its corner weights and its optimistic bound across rounds
(:class:`~palmopt.certify.Corners`, :class:`~palmopt.certify.OptimisticBound`), and greedy pruning
checks each removal only inside the removed member's region (:func:`_prune`), so it always runs
to the end: the portfolio does not depend on the machine's speed.  A looser target has never taken more calls than a tighter one
in the tests and benchmarks (``tests/test_adaptive.py``, ``bench/bench_calls.py``); it is not a
theorem.

An approximate oracle with declared error ``η = (η_m, η_a)`` (``w·V(π_w) ≥ (1-η_m) OPT(w) - η_a``)
enters through ``b_q = (w_q·v_q + η_a) / (1 - η_m)``; the target must leave room for it.
"""

import dataclasses
import time
import warnings

import numpy as np
from tqdm.auto import tqdm

from .oracle import checked

from .status import Status
from .validation import check_choice, check_count, check_fraction, check_real, check_tolerances
from .certificate import Certificate
from .certify import Corners, OptimisticBound, _region_vertices, _snap, corner_weights
from .executors import run_calls
from .portfolio import Portfolio
from .store import open_store
from .tolerances import FLOAT_SLACK, LP_SANDWICH, SAME_VALUE, SHORTFALL, VERTEX_MARGIN, WEIGHT_DECIMALS
from .scalarizations import scalarization_of
from .uncertainty import Evidence, NoiseBudget, _pair_lp, observed_error, policy_key, pool, robust_certificate

__all__ = ["adaptive", "ccs", "envelope_certificate"]



def envelope_certificate(U, Q, b, eps, delta, value_range=(0.0, 1.0)):
    """Black-box certificate of the members ``U`` (k, d) against the optimistic bound built
    from queries ``Q`` (m, d) with ``OPT(Q_q) ≤ b_q``: one LP per corner weight of ``U``.

    ``value_range`` is the oracle's declared range (the box of the optimistic bound).
    Returns ``(certificate, corners, shortfall, fresh)`` (``fresh``: all True).

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.adaptive import envelope_certificate
    >>> E = np.eye(2)                                  # queried the unit weights; found them
    >>> cert, corners, short, _ = envelope_certificate(E, E, [1.0, 1.0], 0.0, 0.5)
    >>> cert.holds, corners.tolist()                   # UB(0.5, 0.5) = 1 > LB = 0.5, met with delta = 0.5
    (True, [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    """
    U = np.asarray(U, dtype=np.float64)
    search = _CornerSearch(U.shape[1], value_range)
    search.add(Q, b, U)
    return search.certificate(eps, delta)


class _PointBounds:
    """Weights with ``LB`` and the optimistic bound ``UB`` at each, kept up to date as queries and
    members are added: the exact-value search's state (subclasses say which weights).

    ``UB`` comes from one warm-started :class:`~palmopt.certify.OptimisticBound` that gains a row
    per query.  Each weight remembers how many queries its bound used: adding queries only
    lowers ``UB``, so an older bound is still an upper bound and shortfalls computed from it
    are conservative; :meth:`certificate` re-solves only unmet weights whose bound is stale.
    """

    kind = "black-box"

    def __init__(self, d, value_range):
        self.d = d
        self.bound = OptimisticBound(np.zeros((0, d)), np.zeros(0), value_range, d=d)
        self.value_range = value_range
        self.ub = np.zeros(0)
        self.m_at = np.zeros(0, dtype=np.int64)  # queries the bound at each weight used (-1: none)
        self.own = {}  # rounded queried weight -> its b_q (the exact bound there)
        self.seen = set()
        self.lp_gap = 0.0

    @property
    def m(self):
        return len(self.bound.Q)

    def add(self, Q, b, U):
        """Append queries ``Q`` with bounds ``b`` and members ``U`` (duplicates ignored)."""
        Q = np.asarray(Q, dtype=np.float64).reshape(-1, self.d)
        self.bound.add(Q, b)
        for w, bq in zip(np.round(Q, WEIGHT_DECIMALS), np.asarray(b, dtype=np.float64).reshape(-1)):
            self.own[w.tobytes()] = min(bq, self.own.get(w.tobytes(), np.inf))
        U = np.asarray(U, dtype=np.float64).reshape(-1, self.d)
        new = [u for u in U if u.tobytes() not in self.seen and not self.seen.add(u.tobytes())]
        if new:
            self._add_members(np.array(new))

    def _resize(self, removed, n_added):
        self.ub = np.r_[np.delete(self.ub, removed), np.full(n_added, np.nan)]
        self.m_at = np.r_[np.delete(self.m_at, removed), np.full(n_added, -1, dtype=np.int64)]

    def solve(self, idx):
        """Current bounds at the weights ``idx``."""
        self.ub[idx] = self.bound_at(self.weights[idx])
        self.m_at[idx] = self.m

    def bound_at(self, W):
        """Current ``UB`` at the rows of ``W``."""
        ub, gap = self.bound(W)
        self.lp_gap = max(self.lp_gap, gap)
        # at a queried weight the query's own constraint is the exact bound (a solver's
        # multipliers recomputed in NumPy can overshoot it by its feasibility tolerance)
        if self.own:
            ub = np.array([min(u, self.own.get(k.tobytes(), np.inf)) for u, k in zip(ub, np.round(W, WEIGHT_DECIMALS))])
        return ub

    def certificate(self, eps, delta, n_fresh=None):
        """``(certificate, weights, shortfall, fresh)`` of the members against the queries.

        With ``n_fresh=None`` every unmet weight gets a current bound; with ``n_fresh=k`` only
        until the ``k`` largest shortfalls are current (lazy: a re-solved bound only drops).
        """
        unknown = np.flatnonzero(np.isnan(self.ub))
        if unknown.size:
            self.solve(unknown)
        lb = self.lb
        k = None if n_fresh is None else max(n_fresh, LAZY_CHUNK)
        while True:
            short = (1.0 - eps) * self.ub - delta - lb
            fresh = self.m_at == self.m
            unmet = (short > SHORTFALL) & ~fresh
            if k is not None and k < len(short) and unmet.any():
                top = np.argpartition(-short, k)[:k]  # the k largest shortfalls
                unmet = top[unmet[top]]
            else:
                unmet = np.flatnonzero(unmet)
            if not unmet.size:
                break
            self.solve(unmet)
        cert = _black_box_certificate(self.weights, self.ub, lb, eps, delta, self.lp_gap, self.kind)
        return cert, self.weights, short, fresh


class _CornerSearch(_PointBounds):
    """:class:`_PointBounds` at the corner weights of the members' lower envelope, from
    :class:`~palmopt.certify.Corners` (updated, not recomputed, when a member is added): every
    corner is there, so its certificate is whole-simplex."""

    def __init__(self, d, value_range):
        super().__init__(d, value_range)
        self.corners = None

    @property
    def weights(self):
        return self.corners.weights

    @property
    def lb(self):
        return self.corners.lb

    def __len__(self):
        return 0 if self.corners is None else len(self.corners)

    def _add_members(self, U):
        if self.corners is None:  # the first members: corner weights from scratch
            self.corners = Corners(U)
            self._resize([], len(self.corners))
            return
        for u in U:
            removed, added = self.corners.add(u)
            self._resize(removed, len(added))


class _SampledSearch(_PointBounds):
    """:class:`_PointBounds` at a fixed random sample of weights (the simplex's vertices, its
    centre, uniform draws and draws near its faces) instead of every corner weight: for ``d``
    where the corners are too many.  Its certificate covers the sample only (``kind="sampled"``);
    :func:`_verify_sampled` turns a finished search into a claim about the whole simplex's
    measure."""

    kind = "sampled"

    def __init__(self, d, value_range, rng, n=None):
        super().__init__(d, value_range)
        n = SAMPLED_POINTS if n is None else n
        self._W = np.vstack([np.eye(d), np.full((1, d), 1.0 / d), rng.dirichlet(np.ones(d), n // 2),
                             rng.dirichlet(np.full(d, 0.25), n - n // 2)])
        self._lb = np.full(len(self._W), -np.inf)
        self._resize([], len(self._W))

    @property
    def weights(self):
        return self._W

    @property
    def lb(self):
        return self._lb

    def __len__(self):
        return len(self._W)

    def _add_members(self, U):
        self._lb = np.maximum(self._lb, (self._W @ U.T).max(axis=1))

    def add_weights(self, W, lb):
        """More weights to keep (e.g. where a verification found the target missed), with ``LB`` there."""
        self._W, self._lb = np.vstack([self._W, W]), np.r_[self._lb, lb]
        self._resize([], len(W))


#: The lazy bounds re-solve the stale ones among this many largest shortfalls per pass (at least
#: ``n_fresh``): one pass costs a partition of all the weights, about as much as a few LPs.
LAZY_CHUNK = 8
#: Past this many corner weights, ``adaptive(method="auto")`` switches to the sampled search.
MAX_CORNERS = 50_000
#: Weights the sampled search keeps (half uniform, half near the faces).
SAMPLED_POINTS = 20_000
#: Fresh uniform weights a sampled portfolio is verified on.
VERIFY_POINTS = 4_000


def _verify_sampled(search, U, eps, delta, rng, alpha):
    """Check the members ``U`` at ``VERIFY_POINTS`` fresh uniform weights (every bound current).

    The weights are drawn after the portfolio is fixed, so if the set where the target fails had
    uniform measure above ``p = 1 - alpha**(1/N)``, all ``N`` would meet it with probability at
    most ``alpha``.  Returns ``(certificate, weights missed, LB there)``.
    """
    W = rng.dirichlet(np.ones(search.d), VERIFY_POINTS)
    ub, lb = search.bound_at(W), (W @ U.T).max(axis=1)
    cert = _black_box_certificate(W, ub, lb, eps, delta, search.lp_gap, "sampled")
    missed = (1.0 - eps) * ub - delta - lb > SHORTFALL
    return dataclasses.replace(cert, samples=VERIFY_POINTS, uncovered=float(1.0 - alpha ** (1.0 / VERIFY_POINTS)),
                               confidence=1.0 - alpha), W[missed], lb[missed]


def _black_box_certificate(W, ub, lb, eps, delta, lp_gap, kind="black-box"):
    """The certificate from ``UB`` and ``LB`` at weights ``W``: whole-simplex (``"black-box"``)
    when ``W`` includes every corner weight; of the sample only (``"sampled"``) otherwise."""
    short = (1.0 - eps) * ub - delta - lb
    i_worst = int(np.argmax(short))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_gap = np.where(ub > 0, 1.0 - lb / np.where(ub > 0, ub, 1.0), 0.0)
    i_eps, i_delta = int(np.argmax(ratio_gap)), int(np.argmax(ub - lb))
    return Certificate(
        holds=bool(short[i_worst] <= SHORTFALL),
        violation=float(short[i_worst]),
        worst_weight=np.array(W[i_worst]),
        eps_star=float(max(ratio_gap[i_eps], 0.0)),
        eps_weight=np.array(W[i_eps]),
        delta_star=float(max(ub[i_delta] - lb[i_delta], 0.0)),
        delta_weight=np.array(W[i_delta]),
        eps=eps,
        delta=delta,
        kind=kind,
        status=Status.SUCCESS if lp_gap <= LP_SANDWICH else Status.NUMERICAL_TROUBLE,
        max_lp_gap=float(lp_gap),
        n_lps=len(W),
        uncovered=1.0 if kind == "sampled" else 0.0,
    )


#: A trial removal is rejected without LPs (every vector found is feasible in the bound's LP, up to
#: the consistency tolerance, so ``UB`` is at least their best) only when it falls short by this
#: much more than ``SHORTFALL``: a borderline trial still gets its LPs.
PRUNE_MARGIN = 1e-7

#: Past this many corner weights per call of a round, a round queries more corners (see ``adaptive``).
CORNERS_PER_CALL = 20_000
#: ... at most this many times ``batch``.
MAX_ROUND_GROWTH = 8


def _select(corners, short, ok, batch, Q):
    """The next ``batch`` weights: corners with the largest shortfall, spread out.

    The first is the corner with the largest shortfall (OLS).  A corner that is closer to one
    already picked this round than to every weight queried so far is likely repaired by that
    query, so later picks skip such corners while others are left (then they fill the batch in
    order of shortfall): batched rounds cost few more calls than one weight per round.
    """
    idx = np.flatnonzero(ok)
    idx = idx[np.argsort(-short[idx], kind="stable")]
    if batch == 1 or idx.size <= batch:
        return corners[idx[:batch]]
    C = corners[idx]
    near = np.sqrt(((C[:, None, :] - Q[None, :, :]) ** 2).sum(-1)).min(axis=1)
    chosen, closest = [0], np.sqrt(((C - C[0]) ** 2).sum(-1))
    for j in range(1, idx.size):
        if len(chosen) == batch:
            break
        if closest[j] >= near[j]:
            chosen.append(j)
            closest = np.minimum(closest, np.sqrt(((C - C[j]) ** 2).sum(-1)))
    rest = [j for j in range(idx.size) if j not in set(chosen)]
    chosen += rest[: batch - len(chosen)]
    return C[chosen]


def _estimate_total(bar, curve, eps, delta, d):
    """Set the progress bar's total to an estimate of the calls needed (for its ETA): the gap
    ``delta*`` has shrunk like ``calls^-r`` over the last rounds; extrapolate to the gap the
    target allows (about ``delta + eps/2``).  Only a display."""
    if len(curve) < 4:
        return
    (n1, _, _, g1), (n2, _, _, g2) = curve[len(curve) // 2], curve[-1]
    allowed = delta + eps / 2 if eps + delta > 0 else 1e-3
    if n2 <= n1 or min(g1, g2) <= 0 or g2 <= allowed:
        return
    rate = np.clip(np.log(g1 / g2) / np.log(n2 / n1), 2.0 / max(d, 2), 3.0) if g1 > g2 else 2.0 / max(d, 2)
    total = int(min(n2 * (g2 / allowed) ** (1.0 / rate), 1e7))
    if total > n2:
        bar.total = total
        bar.refresh()


def _check_eta(eta, eps, delta):
    eta_m, eta_a = (check_fraction(e, f"eta[{i}]", allow_zero=True) for i, e in enumerate(eta))
    if eps < eta_m or delta < (1.0 - eps) * eta_a / (1.0 - eta_m) - FLOAT_SLACK:
        raise ValueError(
            f"the target (eps={eps}, delta={delta}) is tighter than the oracle's declared error "
            f"eta={tuple(eta)}: need eps >= {eta_m} and delta >= {(1 - eps) * eta_a / (1 - eta_m):.6g}."
        )
    return eta_m, eta_a


def _declared_error(oracle, eta):
    """``(eta_m, eta_a)`` and whether it was declared (an argument or ``oracle.error``)."""
    declared = getattr(oracle.oracle, "error", None) if eta is None else eta
    if declared is None:
        return (0.0, 0.0), False
    declared = tuple(declared)
    if len(declared) != 2:
        raise ValueError(f"`eta` must be a pair (eta_mult, eta_add); got {declared!r}.")
    return declared, True


def _assumptions(eta, declared, value_range, budget, noisy):
    eta_m, eta_a = eta
    return {
        "oracle error": (
            f"declared (eta_mult, eta_add) = ({eta_m:g}, {eta_a:g}): w·V(policy) >= (1 - eta_mult) OPT(w) - eta_add "
            f"at every queried w"
            if declared
            else "undeclared, so the oracle is assumed exact at every queried w (the certificate is relative to "
            "its answers; declare `error` for a claim about the true optimum)"
        ),
        "values": f"every policy's values lie in [{value_range[0]:g}, {value_range[1]:g}]",
        "noise": budget.describe() if noisy else "none: every value returned is exact",
    }


def adaptive(
    oracle,
    eps,
    delta=None,
    *,
    batch=1,
    max_calls=None,
    eta=None,
    confidence=0.95,
    tails="normal",
    max_repeats=64,
    prune="greedy",
    executor=None,
    store=None,
    progress=True,
    time_limit=None,
    method="auto",
    seed=None,
):
    r"""A certified (eps, delta)-portfolio from few oracle calls (corner-weight search).

    Parameters
    ----------
    oracle : AlignmentOracle
        Values in its ``value_range`` (default [0, 1]^d; checked).  If it has an attribute
        ``error = (eta_m, eta_a)`` it is treated as approximate (see ``eta``).  Solutions that
        carry a ``stderr`` are noisy estimates (see ``confidence``).
    eps, delta : float in [0, 1)
        Stopping rule: multiplicative (``delta = 0``), additive (``eps = 0``) or mixed;
        ``delta=None`` means ``delta = eps``.  ``eps = delta = 0`` computes an exact convex
        coverage set (see :func:`ccs`).
    batch : int
        Query ``batch`` corners per round (parallel executors): the largest shortfall first, then
        the largest among those not closer to a corner picked this round than to every weight
        queried so far.  When the envelope has more than ``CORNERS_PER_CALL`` (20,000) corner
        weights per call of a round (d ≳ 8), rounds grow (up to 8 × ``batch``) so that the
        certificate is not recomputed after each call.
    max_calls : int, optional
        Budget of oracle calls; when it runs out the portfolio has
        ``status=Status.BUDGET_EXHAUSTED`` and carries the best certificate reached.  Not part
        of the run's identity: a rerun with a larger budget resumes.  With a noisy oracle it
        defaults to ``50·d`` (every noisy answer is a new member, so the search needs a cap).
    eta : (float, float), optional
        Declared oracle error ``(eta_m, eta_a)``; defaults to ``oracle.error``.  When neither is
        given the error is *undeclared*: the oracle is assumed exact and the certificate says
        so in its ``assumptions``.  Either way every answer is cross-checked against every
        other (``certificate.observed_error``); answers that refute the declared error end the
        search with ``Status.ORACLE_INCONSISTENT`` and a note naming the two weights.
    confidence : float in (0, 1), default 0.95
        With noisy values (solutions with ``stderr``), the certificate holds with at least
        this probability over the evaluation noise (:mod:`palmopt.uncertainty`); ignored, and
        ``certificate.confidence == 1``, when every value is exact.
    tails : {"normal", "chebyshev"}
        How an estimate's error is bounded: approximately normal, or any distribution with the
        stated standard error (Chebyshev's inequality, wider intervals).
    max_repeats : int, default 64
        When the oracle offers ``evaluate(policy, *, repeats)``, a shortfall caused by noise
        alone is resolved by re-evaluating the policies involved (4× the effort each time, up
        to ``max_repeats``× in all) instead of by new oracle calls.  ``1`` disables it.
    prune : {"greedy", "none"}
        ``"greedy"``: drop members whose removal keeps the certificate (least-used first).
        (``"exact"``, a minimum subset, is offered by :func:`palmopt.palm` only.)
    time_limit : float, optional
        Seconds for the search (oracle calls included).  When it runs out between rounds the
        portfolio has ``status=Status.TIME_LIMIT`` and carries the best certificate reached
        (sound, like every anytime certificate).  Not part of the run's identity.  Greedy
        pruning of a certified portfolio then gets what is left (at least 2 s), keeping the
        members it has not tried to drop (``info["prune_complete"]``: whether greedy pruning ran
        and tried every member).  Without ``time_limit`` pruning always runs to the end, so the
        portfolio is the same on a fast and on a slow machine.
    method : {"auto", "corners", "sampled"}
        ``"corners"``: the corner-weight search, whose certificate is proven for every ``w``.
        ``"sampled"``: the same search at a fixed random sample of ``SAMPLED_POINTS`` weights,
        for ``d`` where the corner weights are too many (they grow like ``calls^(d/2)``); when
        every sample meets the target the (pruned) portfolio is checked at ``VERIFY_POINTS``
        fresh uniform weights, and a portfolio that meets it at all of them ends with
        ``Status.SAMPLED`` and a ``"sampled"`` certificate: with probability ``confidence``
        the weights it fails have uniform measure at most ``certificate.uncovered`` (about
        ``1e-3``) -- never "certified" for every ``w``.  Where the check misses, the weights
        missed join the sample and the search goes on (each check spends
        ``(1 - confidence)·6/(π²t²)``).  Exact values only.  ``"auto"`` (default): corners
        until the envelope has more than ``MAX_CORNERS`` (50,000) of them (``d ≳ 9``), then
        sampled.
    seed : int, optional
        Seeds the sampled search's weights; default: fresh entropy from the operating system
        (recorded in ``info["seed"]``).  Unused while the search runs on corners.
    executor, store, progress
        ``progress``: a bar of oracle calls with an ETA (its total is ``max_calls``, else an
        estimate from the shrinking gap: the trend of ``delta*`` against calls).  As in :func:`palmopt.palm`; a rerun with the same store repeats no call (evaluations
        are not stored: a resumed noisy run re-evaluates).

    Returns
    -------
    Portfolio
        ``certificate`` is the black-box certificate (valid over the whole simplex under its
        ``assumptions``, with probability ``confidence``); ``values`` are point estimates,
        ``info["stderr"]`` their standard errors (noisy oracles); ``info["curve"]`` the
        anytime record ``(calls, violation, eps*, delta*)`` after each round (the gaps are
        computed for the final certificate only when the values are noisy).

    Raises
    ------
    ValueError
        ``confidence`` outside (0, 1), a target tighter than the declared error, bad arguments.
    OracleError
        A call or an evaluation failed; every call finished before it is in the store.

    Examples
    --------
    >>> import numpy as np, palmopt
    >>> theta = np.linspace(0, np.pi / 2, 200)
    >>> V = np.c_[np.cos(theta), np.sin(theta)]          # a curved front of 200 policies
    >>> oracle = palmopt.as_oracle(lambda w: V[np.argmax(V @ w)], d=2, name="arc")
    >>> p = palmopt.adaptive(oracle, 0.05, 0.0, progress=False)
    >>> p.certificate.holds, len(p), p.n_oracle_calls
    (True, 5, 5)
    >>> palmopt.certify(p, V).holds                      # the portfolio's own (0.05, 0)
    True

    A noisy oracle (estimates with standard error 0.002): the certificate holds with
    probability at least 0.9 over the noise.

    >>> rng = np.random.default_rng(0)
    >>> noisy = palmopt.as_oracle(
    ...     lambda w: (V[np.argmax(V @ w)] + rng.normal(0, 0.002, 2), [0.002, 0.002]), d=2, name="noisy-arc")
    >>> p = palmopt.adaptive(noisy, 0.05, 0.01, confidence=0.9, progress=False)
    >>> p.certificate.certified, p.certificate.confidence
    (True, 0.9)
    """
    eps, delta = check_tolerances(eps, delta, allow_zero=True)
    prune = check_choice(prune, "prune", ("greedy", "none"))
    method = check_choice(method, "method", ("auto", "corners", "sampled"))
    seeds = np.random.SeedSequence(None if seed is None else check_count(seed, "seed", minimum=0))
    sample_rng, verify_rng = (np.random.default_rng(x) for x in seeds.spawn(2))
    batch = check_count(batch, "batch")
    max_calls = None if max_calls is None else check_count(max_calls, "max_calls")
    max_repeats = check_count(max_repeats, "max_repeats")
    time_limit = None if time_limit is None else check_real(time_limit, "time_limit", strict=True)
    budget = NoiseBudget(confidence, tails)
    oracle = checked(oracle)
    scal = scalarization_of(oracle)
    if not scal.linear:
        raise ValueError(
            f"palmopt.adaptive certifies the weighted sum only (corner weights and the optimistic LP bound need an "
            f"envelope linear in w); the oracle's scalarization is {scal!r}. Use palmopt.palm(oracle, eps, delta), "
            f"whose rounding lemma covers Tchebycheff() and PMean(p) with 0 < p <= 1 (docs/design.md §6)."
        )
    (eta_m, eta_a), declared = _declared_error(oracle, eta)
    eta_m, eta_a = _check_eta((eta_m, eta_a), eps, delta)
    d, value_range = oracle.d, oracle.value_range
    can_evaluate = oracle.can_evaluate and max_repeats > 1
    params = {"method": "adaptive", "eps": eps, "delta": delta, "batch": batch, "eta": [eta_m, eta_a]}

    t0 = time.perf_counter()
    Q, V, S, Z, effort, policies, group, curve, cache = [], [], [], [], [], [], [], [], {}
    groups = {}  # policy key -> the first query that returned the policy
    search, added = None, None  # exact values: the search's state, and the rows it holds
    sampled, checks, sampled_members = method == "sampled", 0, None
    n_evaluations = 0
    per_round = batch
    pending = np.eye(d)
    status = Status.SUCCESS
    inconsistency = None
    bar = tqdm(total=max_calls, desc="adaptive", disable=not progress, leave=False)
    with open_store(store, oracle, params) as run_store:
        while True:
            cap = max_calls if max_calls is not None else (50 * d if any(np.any(s > 0) for s in S) else None)
            if cap is not None:
                pending = pending[: cap - len(Q)]
            solutions, _ = run_calls(oracle, pending, executor=executor, store=run_store, progress=False)
            for w, sol in zip(pending, solutions):
                se = np.zeros(d) if sol.stderr is None else np.array(sol.stderr)
                q = len(Q)
                g = groups.setdefault(policy_key(sol.policy, ("call", q)), q)
                Q.append(w)
                V.append(np.array(sol.values))
                S.append(se)
                Z.append(0.0)
                effort.append(1)
                policies.append(sol.policy)
                group.append(g)
                _pool_into(g, q, group, V, S, Z, budget, d)
            bar.update(len(pending))
            evidence = Evidence(
                np.array(Q), np.array(V), np.array(S), np.array(Z), (eta_m, eta_a), value_range, np.array(group)
            )
            observed = observed_error(evidence)
            if observed[0] > SHORTFALL:
                inconsistency = observed
                status = Status.ORACLE_INCONSISTENT
            if evidence.noisy and sampled:
                raise ValueError(
                    "method='sampled' needs exact values; the oracle returned standard errors (noisy values are "
                    "certified on corner weights only: method='corners')."
                )
            if evidence.noisy:
                cert, pairs = robust_certificate(evidence, evidence.members, eps, delta, cache=cache, version=n_evaluations)
                pending, evaluate = _next_noisy(pairs, evidence, effort, can_evaluate, max_repeats, batch, eps, delta)
            else:
                b_all = evidence.bounds()
                if search is None or not np.array_equal(added, np.c_[evidence.Q, evidence.V, b_all][: len(added)]):
                    search, added = None, np.zeros((0, 2 * d + 1))  # (re)built
                if search is None or (not sampled and method == "auto" and len(search) > MAX_CORNERS):
                    sampled = sampled or search is not None
                    search = _SampledSearch(d, value_range, sample_rng) if sampled else _CornerSearch(d, value_range)
                    added = np.zeros((0, 2 * d + 1))
                new = slice(len(added), len(evidence.Q))
                search.add(evidence.Q[new], b_all[new], evidence.V[new])
                added = np.c_[evidence.Q, evidence.V, b_all]
                n_fresh = per_round if per_round == 1 else 4 * per_round
                cert, corners, short, fresh = search.certificate(eps, delta, n_fresh=n_fresh)
                tries = 0
                while sampled and cert.holds and inconsistency is None and sampled_members is None:
                    # every sample met: prune, then check at fresh weights; weights missed join the
                    # sample (pruning then keeps members for them; after 3 tries, no pruning)
                    keep = np.sort(np.unique(evidence.V, axis=0, return_index=True)[1])
                    if prune == "greedy" and tries < 3:
                        keep = _prune_sampled(keep, evidence.V, search, eps, delta)
                    checks, tries = checks + 1, tries + 1
                    alpha = (1.0 - budget.confidence) * 6.0 / (np.pi**2 * checks**2)
                    verified, missed, _ = _verify_sampled(search, evidence.V[keep], eps, delta, verify_rng, alpha)
                    if verified.holds:
                        cert, sampled_members = verified, keep
                    else:
                        search.add_weights(missed, (missed @ evidence.V.T).max(axis=1))
                        cert, corners, short, fresh = search.certificate(eps, delta, n_fresh=n_fresh)
                # a round's certificate costs about its number of corners: past CORNERS_PER_CALL of them
                # (d ≳ 8) query more corners per round (spread out) instead of re-certifying after each call
                per_round = batch * int(min(MAX_ROUND_GROWTH, max(1, len(corners) // CORNERS_PER_CALL)))
                queried = {w.tobytes() for w in np.round(evidence.Q, WEIGHT_DECIMALS)}
                ok = (short > SHORTFALL) & fresh
                ok[ok] = [w.tobytes() not in queried for w in np.round(corners[ok], WEIGHT_DECIMALS)]
                # rounds ramp up (at most as many weights as queried so far): a first wide round
                # would overshoot a small portfolio
                pending, evaluate = _select(corners, short, ok, min(per_round, len(Q)), evidence.Q), []
            curve.append((len(Q), cert.violation, cert.eps_star, cert.delta_star))
            bar.set_postfix(violation=f"{cert.violation:.2e}", members=len(Q))
            if max_calls is None and not evidence.noisy:
                _estimate_total(bar, curve, eps, delta, d)
            if inconsistency is not None or cert.certified or sampled_members is not None:
                break
            if not len(pending) and not evaluate:
                break
            if time_limit is not None and time.perf_counter() - t0 >= time_limit:
                status = Status.TIME_LIMIT
                break
            if cap is not None and len(Q) >= cap and not evaluate:
                status = Status.BUDGET_EXHAUSTED
                break
            for j in evaluate:
                sol = oracle.evaluate(policies[j], 3 * effort[j], Q[j])
                q = len(Q)  # a scratch row: pooled into the policy's group, then dropped
                V.append(np.array(sol.values))
                S.append(np.zeros(d) if sol.stderr is None else np.array(sol.stderr))
                Z.append(0.0)
                group.append(j)
                _pool_into(j, q, group, V, S, Z, budget, d)
                del V[q], S[q], Z[q], group[q]
                effort[j] *= 4
                n_evaluations += 1
    bar.close()
    if status == Status.SUCCESS and sampled_members is not None:
        status = Status.SAMPLED if cert.status == Status.SUCCESS else cert.status
    elif status == Status.SUCCESS and not cert.certified:
        status = Status.NOT_CERTIFIED if cert.status == Status.SUCCESS else cert.status

    Va, Qa = evidence.V, evidence.Q
    if evidence.noisy:
        members = evidence.members
    else:  # one member per distinct value vector (the first weight that produced it)
        members = np.sort(np.unique(Va, axis=0, return_index=True)[1])
    size_before = len(members)
    if sampled_members is not None:
        members, prune_complete = sampled_members, prune == "greedy"
    elif prune == "greedy" and status == Status.SUCCESS:
        allowed = np.inf if time_limit is None else max(2.0, time_limit - (time.perf_counter() - t0))
        if evidence.noisy:
            members, cert, prune_complete = _prune_noisy(members, evidence, eps, delta, cert, cache, n_evaluations, allowed)
        else:
            members, cert, prune_complete = _prune(members, evidence.V, search, eps, delta, cert, allowed)
    else:
        prune_complete = False
    if evidence.noisy:  # the final certificate with its pure gaps
        cert = robust_certificate(evidence, members, eps, delta, cache=cache, version=n_evaluations, gaps=True)[0]
    note = ""
    if inconsistency is not None:
        excess, q, j, needed = inconsistency
        allowed = f"the declared error eta = ({eta_m:g}, {eta_a:g})" if declared else "an exact oracle (no error declared)"
        note = (
            f"the policy found at w = {_fmt(Qa[j])} scores {excess:.4g} more at w = {_fmt(Qa[q])} than {allowed} "
            f"allows the policy returned there (net of the noise allowance); the oracle's error is larger -- "
            f"declare at least eta = ({eta_m:g}, {needed:.4g}), or fix the oracle"
        )
    cert = dataclasses.replace(
        cert,
        holds=cert.holds and inconsistency is None and (cert.kind != "sampled" or sampled_members is not None),
        status=Status.ORACLE_INCONSISTENT if inconsistency is not None else cert.status,
        confidence=budget.confidence if evidence.noisy or sampled_members is not None else 1.0,
        observed_error=observed[0] if observed[0] > SHORTFALL else 0.0,
        assumptions=_assumptions((eta_m, eta_a), declared, value_range, budget, evidence.noisy)
        | ({"weights checked": f"{VERIFY_POINTS} uniform random weights per check, drawn after the portfolio was "
            f"fixed (seed entropy {seeds.entropy}); {checks} check(s), the error probability spent as "
            f"(1 - confidence)·6/(π²t²) on the t-th"} if sampled else {}),
        note=note,
    )
    if note:
        warnings.warn(f"adaptive: {note}.", RuntimeWarning, stacklevel=2)
    return Portfolio(
        values=Va[members],
        weights=Qa[members],
        policies=[policies[i] for i in members],
        n_oracle_calls=len(Qa),
        eps=eps,
        delta=delta,
        method="adaptive",
        status=status,
        certificate=cert,
        info={
            "rounds": len(curve),
            "prune_complete": prune_complete,
            "size_before_prune": size_before,
            "eta": [eta_m, eta_a],
            "eta_declared": declared,
            "batch": batch,
            "method": "sampled" if sampled else "corners",
            **({"seed": seeds.entropy, "sampled_checks": checks} if sampled else {}),
            "curve": curve,
            "seconds": time.perf_counter() - t0,
            **(
                {
                    "stderr": evidence.S[members].tolist(),
                    "evaluations": n_evaluations,
                    "evaluation_effort": [effort[i] for i in members],
                    "estimates_used": budget.used,
                }
                if evidence.noisy
                else {}
            ),
        },
    )


def _pool_into(g, q, group, V, S, Z, budget, d):
    """Pool row ``q``'s estimate into its policy's group ``g``: every row of the group gets the
    pooled estimate and one new box (one more estimate spent from the budget)."""
    rows = [r for r, gr in enumerate(group) if gr == g]
    if q != g:
        V[g], S[g] = pool([V[g], V[q]], [S[g], S[q]])
    z = budget.next(d) if np.any(S[g] > 0) else 0.0
    for r in rows:
        V[r], S[r], Z[r] = V[g], S[g], z


def _fmt(w):
    return np.array2string(np.asarray(w), precision=4, separator=", ")


def _next_noisy(pairs, evidence, effort, can_evaluate, max_repeats, batch, eps, delta):
    """The next round with noisy values: corners to query and queries to re-evaluate.

    A short (corner, member) pair whose shortfall vanishes at the point estimates is short
    because of noise: re-evaluate the member and the queries whose bounds bind there (when the
    oracle can).  Otherwise the corner needs a new policy, unless it was queried already.
    """
    queried = {w.tobytes() for w in np.round(evidence.Q, WEIGHT_DECIMALS)}
    point = dataclasses.replace(evidence, Z=np.zeros_like(evidence.Z))
    b0 = point.bounds()
    queries, evaluate = [], set()
    for short, c, j, y in pairs:
        if short <= SHORTFALL or len(queries) >= batch:
            break
        rows = {j, *np.flatnonzero(y > 1e-12)}  # the member and the queries whose bounds bind
        involved = [g for g in {int(evidence.group[r]) for r in rows} if evidence.S[g].any() and 4 * effort[g] <= max_repeats]
        if can_evaluate and involved:
            if _pair_lp(c, j, point, b0, point.V, point.V, eps)[0] - delta <= SHORTFALL:
                evaluate.update(involved)
                continue
        key = np.round(c, WEIGHT_DECIMALS).tobytes()
        if key not in queried:
            queried.add(key)
            queries.append(c)
    return np.array(queries).reshape(-1, evidence.Q.shape[1]), sorted(evaluate)


def _prune_order(members, V, W):
    """Members least used at the corner weights ``W`` first (the order greedy pruning tries them)."""
    use = np.bincount(np.argmax(W @ V[members].T, axis=1), minlength=len(members))
    return [members[i] for i in np.argsort(use, kind="stable")]


#: A member counts as active at a weight (in the region of the member being removed, or its
#: neighbour) when it is within this much of ``LB`` there.  Generous: extra neighbours only add
#: constraints that are redundant, and extra points of the region are weights checked needlessly.
ACTIVE = 1e-7


def _prune(members, V, search, eps, delta, cert, seconds=np.inf):
    """Greedily drop members (least used at the corner weights first) while the black-box
    certificate holds, for at most ``seconds``; returns ``(members, certificate, complete)``.

    Removing member ``j`` changes ``LB`` only inside its region ``R_j``, so a trial needs the
    bound only there: at the weights kept so far that lie in ``R_j`` and at the vertices of the
    new envelope inside ``R_j`` (:func:`_removal_vertices`, a small Qhull on ``j``'s neighbours).
    Every corner of the new envelope is a kept weight or such a vertex (a vertex outside
    ``R_j`` is a vertex of the old envelope), so the certificate stays whole-simplex; the kept
    weights are a superset of the corners, which only adds weights that are checked.  Where
    ``LB`` does not drop (the boundary of ``R_j``), the certificate in force already bounds
    ``UB`` -- ``UB(w) ≤ (LB(w) + δ + SHORTFALL) / (1 - ε)`` -- so no LP is solved there; that
    implied bound is marked stale, and solved when a later trial needs it.  LPs go first where
    ``LB`` drops most, and a trial stops at its first weight found short (after a cheap test
    against every vector found, a lower bound on ``UB``).  When the local vertices are in doubt
    (a thin region, a Qhull error, no neighbour) the trial is certified from scratch.
    """
    t0 = time.perf_counter()
    solve = search.bound_at  # current bounds (the queries are fixed now); tracks the LPs' gap
    W, ub = np.array(search.corners.weights), search.ub.copy()
    fresh = search.m_at == search.m
    keep = list(members)
    lb = (W @ V[keep].T).max(axis=1)
    complete = True

    def short(u, lbs):
        return (1.0 - eps) * u - delta - lbs > SHORTFALL

    for j in _prune_order(members, V, corner_weights(V[members])):  # from scratch: independent of the search's history
        if time.perf_counter() - t0 > seconds:
            complete = False
            break
        trial = [i for i in keep if i != j]
        if not trial:
            continue
        inR = np.flatnonzero(W @ V[j] >= lb - ACTIVE)
        lbR = (W[inR] @ V[trial].T).max(axis=1)
        bad = short(ub[inR], lbR)
        if bad.any():  # re-solve the stale bounds there before giving up
            stale = inR[bad & ~fresh[inR]]
            ub[stale], fresh[stale] = solve(W[stale]), True
            if short(ub[inR], lbR).any():
                continue
        neighbours = [i for i in trial if np.any(np.abs(W[inR] @ V[i] - lb[inR]) <= ACTIVE)]
        T = _removal_vertices(V[j], V[neighbours], V.shape[1]) if neighbours else None
        if T is None:  # in doubt: the trial's certificate from scratch
            scratch = _CornerSearch(V.shape[1], search.value_range)
            scratch.add(search.bound.Q, search.bound.b, V[trial])
            trial_cert, Wt, _, _ = scratch.certificate(eps, delta)
            if trial_cert.certified:
                keep, cert, W, ub, lb = trial, trial_cert, np.array(Wt), scratch.ub.copy(), scratch.corners.lb.copy()
                fresh = scratch.m_at == scratch.m
                search.lp_gap = max(search.lp_gap, scratch.lp_gap)
            continue
        lbT = (T @ V[trial].T).max(axis=1)
        lost = np.maximum(T @ V[j], lbT) - lbT  # how much LB drops there
        drop = np.flatnonzero(lost > 0)
        if np.any((1.0 - eps) * (T[drop] @ V.T).max(axis=1) - delta - lbT[drop] > SHORTFALL + PRUNE_MARGIN):
            continue  # short against a lower bound on UB (see PRUNE_MARGIN)
        ubT = (np.maximum(T @ V[j], lbT) + delta + SHORTFALL) / (1.0 - eps)  # implied where LB keeps
        freshT = np.zeros(len(T), dtype=bool)
        drop = drop[np.argsort(-lost[drop], kind="stable")]
        step = max(8, drop.size // 4)
        for start in range(0, drop.size, step):
            chunk = drop[start : start + step]
            ubT[chunk], freshT[chunk] = solve(T[chunk]), True
            if short(ubT[chunk], lbT[chunk]).any():
                break
        else:
            keep = trial
            known = {k.tobytes() for k in np.round(W, WEIGHT_DECIMALS)}
            new = np.array([k.tobytes() not in known for k in np.round(T, WEIGHT_DECIMALS)], dtype=bool)
            lb[inR] = lbR
            W, ub, lb, fresh = np.vstack([W, T[new]]), np.r_[ub, ubT[new]], np.r_[lb, lbT[new]], np.r_[fresh, freshT[new]]
            cert = None
    if cert is None:  # the pruned portfolio's certificate: current bounds where its numbers are attained
        while True:
            with np.errstate(divide="ignore", invalid="ignore"):
                scores = [(1.0 - eps) * ub - delta - lb, np.where(ub > 0, 1.0 - lb / np.where(ub > 0, ub, 1.0), 0.0), ub - lb]
            stale = np.unique(np.concatenate([np.argsort(-x, kind="stable")[:64] for x in scores]))
            stale = stale[~fresh[stale]]
            if not any(not fresh[np.argmax(x)] for x in scores):
                break
            ub[stale], fresh[stale] = solve(W[stale]), True
        cert = _black_box_certificate(W, ub, lb, eps, delta, search.lp_gap)
    return np.array(keep), cert, complete


def _prune_sampled(members, V, search, eps, delta):
    """Greedy pruning for the sampled search: drop members (least used first) while every weight
    of the sample still meets the target (stale bounds re-solved before a removal is refused).
    The portfolio is then verified at fresh weights (:func:`_verify_sampled`)."""
    W = search.weights
    keep = list(members)
    lb = (W @ V[keep].T).max(axis=1)
    for j in _prune_order(members, V, W):
        trial = [i for i in keep if i != j]
        if not trial:
            continue
        inR = np.flatnonzero(W @ V[j] >= lb - ACTIVE)
        lbR = (W[inR] @ V[trial].T).max(axis=1)
        bad = (1.0 - eps) * search.ub[inR] - delta - lbR > SHORTFALL
        stale = inR[bad & (search.m_at[inR] != search.m)]
        if stale.size:
            search.solve(stale)
        if np.any((1.0 - eps) * search.ub[inR] - delta - lbR > SHORTFALL):
            continue
        keep, lb[inR] = trial, lbR
    return np.array(keep)


def _prune_noisy(members, evidence, eps, delta, cert, cache, version, seconds=np.inf):
    """:func:`_prune` with noisy values: each trial gets its robust certificate."""
    t0 = time.perf_counter()
    keep = list(members)
    for j in _prune_order(members, evidence.V, corner_weights(evidence.V[members])):
        if time.perf_counter() - t0 > seconds:
            return np.array(keep), cert, False
        trial = [i for i in keep if i != j]
        if not trial:
            continue
        trial_cert = robust_certificate(evidence, trial, eps, delta, cache=cache, version=version)[0]
        if trial_cert.certified:
            keep, cert = trial, trial_cert
    return np.array(keep), cert, True


def _removal_vertices(u, neighbours, d):
    """The vertices, inside ``u``'s region ``R_u``, of the envelope without ``u``:
    the vertices of ``{(w, s) : w ∈ Δ, w·(n - u) ≤ 0, s ≥ w·n for every neighbour n}`` (weights,
    rows on the simplex), or ``None`` when in doubt (thin region, Qhull error)."""
    from scipy.spatial import HalfspaceIntersection, QhullError

    Y = _region_vertices(u, neighbours, d)  # R_u itself: None when empty or thin
    if Y is None:
        return None
    centre = Y.mean(axis=0)
    cap = float(np.abs(neighbours).max()) + 1.0
    A = neighbours - u[None, :]
    # coordinates y = (w_1..w_{d-1}, s); rows [a | c] mean a·y + c <= 0
    H = np.vstack(
        [
            np.c_[-np.eye(d - 1), np.zeros((d - 1, 2))],
            np.r_[np.ones(d - 1), 0.0, -1.0][None, :],
            np.c_[A[:, :-1] - A[:, -1:], np.zeros(len(A)), A[:, -1]],
            np.c_[neighbours[:, :-1] - neighbours[:, -1:], -np.ones(len(A)), neighbours[:, -1]],
            np.r_[np.zeros(d - 1), 1.0, -cap][None, :],
        ]
    )
    inner = np.r_[centre[:-1], float((neighbours @ centre).max()) + 0.5]
    if np.any(H[:, :-1] @ inner + H[:, -1] >= -1e-9):
        return None
    try:
        P = HalfspaceIntersection(H, inner).intersections
    except QhullError:
        return None
    P = P[P[:, -1] < cap - VERTEX_MARGIN]
    if not len(P):
        return None
    return _snap(np.c_[P[:, : d - 1], 1.0 - P[:, : d - 1].sum(axis=1)])


def ccs(oracle, *, progress=False):
    """The exact convex coverage set of an exact oracle: :func:`adaptive` at ``eps = delta = 0``.

    No enumeration: the corner-weight search calls the oracle until the optimistic bound meets
    the lower envelope everywhere, so the returned vectors' upper envelope is ``OPT``.  On ties
    it keeps the vector the oracle returns (values within ``SAME_VALUE`` are one vector), so it
    can be a subset of an enumerated front that keeps every tied maximiser.

    Parameters
    ----------
    oracle : AlignmentOracle
        An exact oracle with values in [0, 1]^d.
    progress : bool, default False

    Returns
    -------
    ndarray (n, d), lexicographically sorted

    Warns
    -----
    RuntimeWarning
        When the search ended without a certificate (``NOT_CERTIFIED``: the oracle contradicted
        itself; ``NUMERICAL_TROUBLE``): the vectors are then not proven to be the whole set.
        For the status itself, call ``adaptive(oracle, 0.0, 0.0, prune="none")``.

    Examples
    --------
    >>> import numpy as np, palmopt
    >>> V = np.array([[1.0, 0.0], [0.8, 0.8], [0.0, 1.0], [0.3, 0.3]])
    >>> palmopt.ccs(palmopt.as_oracle(lambda w: V[np.argmax(V @ w)], d=2, name="ccs-doc"))
    array([[0. , 1. ],
           [0.8, 0.8],
           [1. , 0. ]])
    """
    p = adaptive(oracle, 0.0, 0.0, prune="none", progress=progress)
    if p.status != Status.SUCCESS:
        warnings.warn(
            f"the convex-coverage-set search ended with status {str(p.status)!r}: the {len(p)} vectors "
            f"returned are not proven to be the whole set.",
            RuntimeWarning,
            stacklevel=2,
        )
    kept = []
    for v in np.unique(p.values, axis=0):
        if not any(np.abs(v - k).max() <= SAME_VALUE for k in kept):  # same value, other policy
            kept.append(v)
    return np.array(kept)
