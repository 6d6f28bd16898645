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

An approximate oracle with declared error ``η = (η_m, η_a)`` (``w·V(π_w) ≥ (1-η_m) OPT(w) - η_a``)
enters through ``b_q = (w_q·v_q + η_a) / (1 - η_m)``; the target must leave room for it.
"""

import time
import warnings

import numpy as np
from tqdm.auto import tqdm

from .oracle import checked

from .status import Status
from .validation import check_choice, check_count, check_fraction, check_tolerances
from .certificate import Certificate
from .certify import corner_weights, upper_bound_opt
from .executors import run_calls
from .portfolio import Portfolio
from .store import open_store
from .tolerances import FLOAT_SLACK, LP_SANDWICH, SAME_VALUE, SHORTFALL, WEIGHT_DECIMALS

__all__ = ["adaptive", "ccs", "envelope_certificate"]



def envelope_certificate(U, Q, b, eps, delta, cache=None, n_fresh=None):
    """Black-box certificate of the members ``U`` (k, d) against the optimistic bound built
    from queries ``Q`` (m, d) with ``OPT(Q_q) ≤ b_q``: one LP per corner weight of ``U``.

    ``cache`` maps corner weights to ``(bound, n_queries)`` computed earlier.  Adding queries
    only lowers ``UB``, so a cached bound is still an upper bound and shortfalls computed from
    it are conservative: a corner whose cached shortfall is met is never solved again.  With
    ``n_fresh=None`` every unmet corner is re-solved; with ``n_fresh=k`` only until the ``k``
    largest shortfalls are current (lazy evaluation: a re-solved bound can only drop).
    Returns ``(certificate, corners, shortfall, fresh)``.
    """
    corners = corner_weights(U)
    keys = [c.round(WEIGHT_DECIMALS).tobytes() for c in corners]
    cache = {} if cache is None else cache
    m = len(Q)
    ub = np.array([cache.get(key, (np.nan, -1))[0] for key in keys])
    fresh = np.array([cache.get(key, (np.nan, -1))[1] == m for key in keys])
    lb = (corners @ U.T).max(axis=1)
    lp_gap = 0.0

    def solve(idx):
        nonlocal lp_gap
        ub[idx], gap = upper_bound_opt(corners[idx], Q, b)
        lp_gap = max(lp_gap, gap)
        fresh[idx] = True
        cache.update((keys[i], (ub[i], m)) for i in idx)

    unknown = np.flatnonzero(np.isnan(ub))
    if unknown.size:
        solve(unknown)
    while True:
        short = (1.0 - eps) * ub - delta - lb
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


def _check_eta(eta, eps, delta):
    eta_m, eta_a = (check_fraction(e, f"eta[{i}]", allow_zero=True) for i, e in enumerate(eta))
    if eps < eta_m or delta < (1.0 - eps) * eta_a / (1.0 - eta_m) - FLOAT_SLACK:
        raise ValueError(
            f"the target (eps={eps}, delta={delta}) is tighter than the oracle's declared error "
            f"eta={tuple(eta)}: need eps >= {eta_m} and delta >= {(1 - eps) * eta_a / (1 - eta_m):.6g}."
        )
    return eta_m, eta_a


def adaptive(
    oracle,
    eps,
    delta=None,
    *,
    batch=1,
    max_calls=None,
    eta=None,
    prune="greedy",
    executor=None,
    store=None,
    progress=True,
):
    r"""A certified (eps, delta)-portfolio from few oracle calls (corner-weight search).

    Parameters
    ----------
    oracle : AlignmentOracle
        Values in [0, 1]^d (checked).  If it has an attribute ``error = (eta_m, eta_a)`` it is
        treated as approximate (see ``eta``).
    eps, delta : float in [0, 1)
        Stopping rule: multiplicative (``delta = 0``), additive (``eps = 0``) or mixed;
        ``delta=None`` means ``delta = eps``.  ``eps = delta = 0`` computes an exact convex
        coverage set (see :func:`ccs`).
    batch : int
        Query the ``batch`` corners with the largest shortfall per round (parallel executors).
    max_calls : int, optional
        Budget of oracle calls; when it runs out the portfolio has
        ``status=Status.BUDGET_EXHAUSTED`` and carries the best certificate reached.  Not part
        of the run's identity: a rerun with a larger budget resumes.
    eta : (float, float), optional
        Declared oracle error ``(eta_m, eta_a)``; defaults to ``oracle.error`` or ``(0, 0)``.
    prune : {"greedy", "none"}
        ``"greedy"``: drop members whose removal keeps the certificate (least-used first).
        (``"exact"``, a minimum subset, is offered by :func:`palmopt.palm` only.)
    executor, store, progress
        As in :func:`palmopt.palm`; a rerun with the same store repeats no call.

    Returns
    -------
    Portfolio
        ``certificate`` is the black-box certificate (valid over the whole simplex for an
        oracle within its declared error); ``info["curve"]`` the anytime record
        ``(calls, violation, eps*, delta*)`` after each round.

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
    """
    eps, delta = check_tolerances(eps, delta, allow_zero=True)
    prune = check_choice(prune, "prune", ("greedy", "none"))
    batch = check_count(batch, "batch")
    max_calls = None if max_calls is None else check_count(max_calls, "max_calls")
    oracle = checked(oracle)
    eta = tuple(getattr(oracle.oracle, "error", (0.0, 0.0)) if eta is None else eta)
    if len(eta) != 2:
        raise ValueError(f"`eta` must be a pair (eta_mult, eta_add); got {eta!r}.")
    eta_m, eta_a = _check_eta(eta, eps, delta)
    d = oracle.d
    params = {"method": "adaptive", "eps": eps, "delta": delta, "batch": batch, "eta": [eta_m, eta_a]}

    t0 = time.perf_counter()
    Q, V, policies, curve, cache = [], [], [], [], {}
    pending = np.eye(d)
    status = Status.SUCCESS
    bar = tqdm(total=max_calls, desc="adaptive", disable=not progress, leave=False)
    with open_store(store, oracle, params) as run_store:
        while True:
            if max_calls is not None:
                pending = pending[: max_calls - len(Q)]
            solutions, _ = run_calls(oracle, pending, executor=executor, store=run_store, progress=False)
            for w, sol in zip(pending, solutions):
                Q.append(w)
                V.append(sol.values)
                policies.append(sol.policy)
            bar.update(len(pending))
            Qa, Va = np.array(Q), np.array(V)
            b = (np.einsum("ij,ij->i", Qa, Va) + eta_a) / (1.0 - eta_m)
            U = np.unique(Va, axis=0)
            cert, corners, short, fresh = envelope_certificate(U, Qa, b, eps, delta, cache, n_fresh=batch)
            curve.append((len(Q), cert.violation, cert.eps_star, cert.delta_star))
            bar.set_postfix(violation=f"{cert.violation:.2e}", members=len(U))
            queried = {w.tobytes() for w in np.round(Qa, WEIGHT_DECIMALS)}
            order = [i for i in np.argsort(-short, kind="stable") if short[i] > SHORTFALL]
            order = [i for i in order if fresh[i] and np.round(corners[i], WEIGHT_DECIMALS).tobytes() not in queried]
            if not order:
                break
            if max_calls is not None and len(Q) >= max_calls:
                status = Status.BUDGET_EXHAUSTED
                break
            pending = corners[order[:batch]]
    bar.close()
    if status == Status.SUCCESS and not cert.certified:  # e.g. an oracle that contradicts itself
        status = Status.NOT_CERTIFIED if cert.status == Status.SUCCESS else cert.status

    # one member per distinct value vector (the first weight that produced it)
    _, first = np.unique(Va, axis=0, return_index=True)
    members = np.sort(first)
    size_before = len(members)
    if prune == "greedy" and status == Status.SUCCESS:
        members, cert = _prune(members, Va, Qa, b, eps, delta, cert, cache)
    return Portfolio(
        values=Va[members],
        weights=Qa[members],
        policies=[policies[i] for i in members],
        n_oracle_calls=len(Q),
        eps=eps,
        delta=delta,
        method="adaptive",
        status=status,
        certificate=cert,
        info={
            "rounds": len(curve),
            "size_before_prune": size_before,
            "eta": [eta_m, eta_a],
            "batch": batch,
            "curve": curve,
            "seconds": time.perf_counter() - t0,
        },
    )


def _prune(members, V, Q, b, eps, delta, cert, cache):
    """Greedily drop members (least used at the corner weights first) while certified."""
    corners = corner_weights(V[members])
    use = np.bincount(np.argmax(corners @ V[members].T, axis=1), minlength=len(members))
    keep = list(members)
    for j in [members[i] for i in np.argsort(use, kind="stable")]:
        trial = [m for m in keep if m != j]
        if not trial:
            continue
        trial_cert = envelope_certificate(V[trial], Q, b, eps, delta, cache)[0]
        if trial_cert.certified:
            keep, cert = trial, trial_cert
    return np.array(keep), cert


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
