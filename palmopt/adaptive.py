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
certificate; greedy pruning stops after as long as the search took, and a trial removal stops
at its first corner found short.  A looser target has never taken more calls than a tighter one
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
from .certify import corner_weights, upper_bound_opt
from .executors import run_calls
from .portfolio import Portfolio
from .store import open_store
from .tolerances import FLOAT_SLACK, LP_SANDWICH, SAME_VALUE, SHORTFALL, WEIGHT_DECIMALS
from .scalarizations import scalarization_of
from .uncertainty import Evidence, NoiseBudget, _pair_lp, observed_error, policy_key, pool, robust_certificate

__all__ = ["adaptive", "ccs", "envelope_certificate"]



def envelope_certificate(U, Q, b, eps, delta, cache=None, n_fresh=None, value_range=(0.0, 1.0), early_exit=None):
    """Black-box certificate of the members ``U`` (k, d) against the optimistic bound built
    from queries ``Q`` (m, d) with ``OPT(Q_q) ≤ b_q``: one LP per corner weight of ``U``.

    ``cache`` maps corner weights to ``(bound, n_queries)`` computed earlier.  Adding queries
    only lowers ``UB``, so a cached bound is still an upper bound and shortfalls computed from
    it are conservative: a corner whose cached shortfall is met is never solved again.  With
    ``n_fresh=None`` every unmet corner is re-solved; with ``n_fresh=k`` only until the ``k``
    largest shortfalls are current (lazy evaluation: a re-solved bound can only drop).
    ``value_range`` is the oracle's declared range (the box of the optimistic bound).
    ``early_exit``: when only whether the certificate holds matters (pruning), the array of
    every vector found (a superset of ``U``); the LPs stop at the first corner found short, and
    the certificate returned then only says that it does not hold.
    Returns ``(certificate, corners, shortfall, fresh)``.
    """
    corners = corner_weights(U)
    keys = [c.tobytes() for c in np.round(corners, WEIGHT_DECIMALS)]
    cache = {} if cache is None else cache
    m = len(Q)
    ub = np.array([cache.get(key, (np.nan, -1))[0] for key in keys])
    fresh = np.array([cache.get(key, (np.nan, -1))[1] == m for key in keys])
    lb = (corners @ U.T).max(axis=1)
    lp_gap = 0.0

    own = {w.tobytes(): bq for w, bq in zip(np.round(Q, WEIGHT_DECIMALS), b)}

    def solve(idx):
        nonlocal lp_gap
        ub[idx], gap = upper_bound_opt(corners[idx], Q, b, value_range)
        # at a queried weight the query's own constraint is the exact bound (a solver's
        # multipliers recomputed in NumPy can overshoot it by its feasibility tolerance)
        ub[idx] = [min(u, own.get(keys[i], np.inf)) for u, i in zip(ub[idx], idx)]
        lp_gap = max(lp_gap, gap)
        fresh[idx] = True
        cache.update((keys[i], (ub[i], m)) for i in idx)

    unknown = np.flatnonzero(np.isnan(ub))
    failed = False
    if unknown.size and early_exit is not None:
        # only whether it holds is wanted: solve the new corners where LB lost most first, in
        # chunks, and stop at the first one that is short with a current bound
        lost = (corners[unknown] @ early_exit.T).max(axis=1) - lb[unknown]
        unknown = unknown[np.argsort(-lost, kind="stable")]
        step = max(4, unknown.size // 8)
        for start in range(0, unknown.size, step):
            chunk = unknown[start : start + step]
            solve(chunk)
            if np.any((1.0 - eps) * ub[chunk] - delta - lb[chunk] > SHORTFALL):
                ub[np.isnan(ub)] = np.inf
                failed = True
                break
    elif unknown.size:
        solve(unknown)
    while True:
        short = (1.0 - eps) * ub - delta - lb
        if failed:
            break
        unmet = np.flatnonzero((short > SHORTFALL) & ~fresh)
        if n_fresh is not None:
            top = np.argsort(-short, kind="stable")[:n_fresh]
            unmet = np.intersect1d(unmet, top[short[top] > SHORTFALL])
        if not unmet.size:
            break
        solve(unmet)
    i_worst = int(np.argmax(short))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_gap = np.where(ub > 0, 1.0 - lb / np.where(ub > 0, ub, 1.0), 0.0)
    i_eps, i_delta = int(np.argmax(ratio_gap)), int(np.argmax(ub - lb))
    cert = Certificate(
        holds=bool(short[i_worst] <= SHORTFALL),
        violation=float(short[i_worst]),
        worst_weight=corners[i_worst],
        eps_star=float(max(ratio_gap[i_eps], 0.0)),
        eps_weight=corners[i_eps],
        delta_star=float(max(ub[i_delta] - lb[i_delta], 0.0)),
        delta_weight=corners[i_delta],
        eps=eps,
        delta=delta,
        kind="black-box",
        status=Status.SUCCESS if lp_gap <= LP_SANDWICH else Status.NUMERICAL_TROUBLE,
        max_lp_gap=float(lp_gap),
        n_lps=len(corners),
    )
    return cert, corners, short, fresh


#: A trial removal is rejected without its certificate only when it falls short by this much more
#: than ``SHORTFALL`` at a weight with a current bound (the bound is a verified dual, above the LP's value
#: by at most its solver gap): a borderline trial still gets its full certificate.
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
        pruning of a certified portfolio then gets what is left (at least 2 s); without
        ``time_limit`` it stops after as long as the search took (at least 2 s), keeping the
        members it has not tried to drop (``info["prune_complete"]``: whether greedy pruning ran
        and tried every member).
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
            if evidence.noisy:
                cert, pairs = robust_certificate(evidence, evidence.members, eps, delta, cache=cache, version=n_evaluations)
                pending, evaluate = _next_noisy(pairs, evidence, effort, can_evaluate, max_repeats, batch, eps, delta)
            else:
                U = np.unique(evidence.V, axis=0)
                cert, corners, short, fresh = envelope_certificate(
                    U, evidence.Q, evidence.bounds(), eps, delta, cache, n_fresh=per_round if per_round == 1 else 4 * per_round,
                    value_range=value_range,
                )
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
            if inconsistency is not None or cert.certified or (not len(pending) and not evaluate):
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
    if status == Status.SUCCESS and not cert.certified:
        status = Status.NOT_CERTIFIED if cert.status == Status.SUCCESS else cert.status

    Va, Qa = evidence.V, evidence.Q
    if evidence.noisy:
        members = evidence.members
    else:  # one member per distinct value vector (the first weight that produced it)
        members = np.sort(np.unique(Va, axis=0, return_index=True)[1])
    size_before = len(members)
    if prune == "greedy" and status == Status.SUCCESS:
        searched = time.perf_counter() - t0
        allowed = max(2.0, searched if time_limit is None else time_limit - searched)
        members, cert, prune_complete = _prune(members, evidence, eps, delta, cert, cache, n_evaluations, allowed)
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
        holds=cert.holds and inconsistency is None,
        status=Status.ORACLE_INCONSISTENT if inconsistency is not None else cert.status,
        confidence=budget.confidence if evidence.noisy else 1.0,
        observed_error=observed[0] if observed[0] > SHORTFALL else 0.0,
        assumptions=_assumptions((eta_m, eta_a), declared, value_range, budget, evidence.noisy),
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


def _prune(members, evidence, eps, delta, cert, cache, version, seconds=np.inf):
    """Greedily drop members (least used at the corner weights first) while certified, for at
    most ``seconds``; returns ``(members, certificate, whether every member was tried)``."""
    t0 = time.perf_counter()
    V = evidence.V
    corners = corner_weights(V[members])
    use = np.bincount(np.argmax(corners @ V[members].T, axis=1), minlength=len(members))
    keep = list(members)
    if not evidence.noisy:
        # A necessary test for each trial, without LPs: every vector found is feasible in the
        # optimistic bound's LP (unless the oracle is inconsistent, and then nothing is pruned), so
        # UB(w) >= max_i w·V_i; a trial that falls short of that (or of a current bound in the
        # cache) at the corners, the queried weights or the cached weights fails its certificate.
        n_q, d = len(evidence.Q), V.shape[1]
        seen = [(k, ub) for k, (ub, n) in cache.items() if n == n_q]
        P = np.r_[np.array([np.frombuffer(k) for k, _ in seen]).reshape(-1, d), corners, evidence.Q]
        low = np.r_[np.array([ub for _, ub in seen]).reshape(-1) - PRUNE_MARGIN, np.full(len(P) - len(seen), -np.inf)]
        need = (1.0 - eps) * np.maximum(low, (P @ V.T).max(axis=1)) - delta
    for j in [members[i] for i in np.argsort(use, kind="stable")]:
        if time.perf_counter() - t0 > seconds:
            return np.array(keep), cert, False
        trial = [i for i in keep if i != j]
        if not trial:
            continue
        if not evidence.noisy and np.any(need - (P @ V[trial].T).max(axis=1) > SHORTFALL + PRUNE_MARGIN):
            continue  # short at a weight where UB is known from below: its certificate fails
        if evidence.noisy:
            trial_cert = robust_certificate(evidence, trial, eps, delta, cache=cache, version=version)[0]
        else:
            trial_cert = envelope_certificate(
                V[trial], evidence.Q, evidence.bounds(), eps, delta, cache, value_range=evidence.value_range,
                early_exit=V,
            )[0]
        if trial_cert.certified:
            keep, cert = trial, trial_cert
    return np.array(keep), cert, True


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
