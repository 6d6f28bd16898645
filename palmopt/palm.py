r"""PALM: call the oracle at every point of the exact PALM net, then prune by set cover.

Budget split (the guarantee holds against the *true* optimum).  With
``1 - ε_1 = (1 - ε)^(1 - split)``, ``1 - ε_2 = (1 - ε)^split``, ``δ_1 = (1 - split) δ``,
``δ_2 = split δ``, the net is built at ``(ε_1, δ_1)`` and policy ``j`` may replace the oracle's
policy at net point ``g`` (lower corner ``l``) when ``l·V_j ≥ (1-ε_2) l·V_g - δ_2``.

Proof.  Let ``w`` be covered by ``l`` (``l ≤ w``, ``w_i < (1+γ_1) l_i`` where ``w_i ≥ τ_1``) and
let ``j`` cover ``l``.  For an exact oracle ``l·V_g = OPT(l) ≥ l·V(π_w)``, so with ``V ∈ [0,1]^d``

.. math::
    w·V_j ≥ l·V_j ≥ (1-ε_2)\, l·V(π_w) - δ_2
        ≥ (1-ε_2)(1-ε_1)\big(OPT(w) - δ_1\big) - δ_2 ≥ (1-ε)\,OPT(w) - δ,

using the rounding lemma of :func:`palmopt.cover` for the middle step.  ``prune="none"``
needs no pruning budget: the net is then built at ``(ε, δ)`` itself.

Non-linear preferences.  An oracle with a ``scalarization`` attribute (a
:class:`~palmopt.scalarizations.Scalarization`; ``Linear()`` when absent) is served for its own
``g_w``: the same argument runs on the scalarization's *rounding form* ``h``, at the budget
``(ε_h, δ_h) = scalarization.rounding_budget(ε, δ)`` -- ``h_w(v) = Σ_i w_i v_i^p`` at
``(1-(1-ε)^p, pδ)`` for ``PMean(p)``, ``0 < p ≤ 1``; Tchebycheff's ``min_{w_i>0} w_i v_i``
itself at ``(ε, δ)``, where a coordinate rounded to 0 forces ``OPT(w) ≤ τ_1 ≤ δ``; ``PMean(p)``
with ``p ≤ 0`` is refused (``docs/design.md`` §6).
"""

import time

import numpy as np

from .oracle import checked

from .validation import check_choice, check_count, check_fraction, check_tolerances
from .executors import run_calls
from .bounds import _edges, fmt_int, net_size, upper_bound
from .nets import cover
from .portfolio import Portfolio
from .prune import METHODS, _pack, covering_matrix, set_cover
from .scalarizations import Linear, scalarization_of
from .store import open_store
from .status import Status
from .tolerances import VERTEX_MARGIN
from .uncertainty import NoiseBudget, policy_key, pool

__all__ = ["palm", "budget_split"]


def budget_split(eps, delta=None, split=0.5):
    """``(eps1, delta1, eps2, delta2)``: the net's and the pruning rule's share of (eps, delta);
    ``delta=None`` means ``delta = eps``.

    Examples
    --------
    >>> from palmopt.palm import budget_split
    >>> [round(x, 4) for x in budget_split(0.1, 0.1)]
    [0.0513, 0.05, 0.0513, 0.05]
    """
    eps, delta = check_tolerances(eps, delta)
    split = check_fraction(split, "split")
    eps1 = 1.0 - (1.0 - eps) ** (1.0 - split)
    eps2 = 1.0 - (1.0 - eps) ** split
    return eps1, (1.0 - split) * delta, eps2, split * delta


def palm(
    oracle,
    eps,
    delta=None,
    *,
    prune="greedy",
    split=0.5,
    executor=None,
    store=None,
    progress=True,
    max_points=1_000_000,
    lazy=False,
    confidence=0.95,
    tails="normal",
    max_calls=None,
):
    r"""The PALM portfolio: oracle calls on the exact net, then set-cover pruning.

    Parameters
    ----------
    oracle : AlignmentOracle
        ``oracle.d`` objectives; ``oracle(w)`` returns a :class:`~palmopt.oracle.Solution` with
        values in [0, 1]^d (checked).
    eps, delta : float in (0, 1)
        Target guarantee ``w·V ≥ (1-eps) OPT(w) - delta`` for every ``w``; ``delta=None``
        means ``delta = eps``.
    prune : {"greedy", "exact", "none"}
        Greedy set cover, minimum set cover (integer programme), or keep every distinct policy.
        The guarantee holds for any cover, so the portfolio's status is success either way;
        ``info["cover_optimal"]`` says whether the cover is a proven minimum and
        ``info["cover_status"]`` why not (for ``"exact"``, the greedy cover is then kept).
    split : float in (0, 1)
        Share of the budget given to pruning (see the module docstring); ignored for
        ``prune="none"``.
    executor : None, "serial", "thread", "process" or an executor object
    store : None, a run directory, or a :class:`~palmopt.store.RunStore`
        Persist every result as it arrives; a rerun resumes without repeating calls.
    progress : bool
        Show a progress bar.
    max_points : int
        Refuse nets with more points than this.  Without ``lazy`` the net is built in memory
        and the oracle called at every point; lazy PALM streams the net in chunks (memory does
        not grow with it), so there ``max_points`` bounds the time of the walk.
    lazy : bool
        Walk the net but call the oracle only where the optimistic bound ``UB ≥ OPT`` (see
        :mod:`palmopt.adaptive`) cannot already vouch for the point: a net point ``l`` is skipped
        when some member has ``l·u ≥ (1-ε_2) UB(l) - δ_2``, which is all the proof needs; the
        pruning then uses the bound recorded for each skipped point.  Same guarantee, far fewer
        calls.  Needs a rounding form linear in ``w`` (``Linear()``, ``PMean(p)``), not
        ``Tchebycheff()``; noisy values vouch and cover through their confidence boxes.
    confidence : float in (0, 1), default 0.95
        Noisy values (solutions with ``stderr``): the rounding lemma needs only an exactly
        *optimizing* oracle, but pruning compares values, so a member covers a net point when
        the bottom of its confidence box does against the top of the point's own box (see
        :mod:`palmopt.uncertainty`; one pooled estimate per distinct policy).  The guarantee
        then holds with probability ``≥ confidence``; ``info["confidence"]`` says so (1.0 when
        every value was exact).  Needs a rounding form linear in ``w``.
    tails : {"normal", "chebyshev"}
        As in :func:`palmopt.adaptive`.
    max_calls : int, optional
        Lazy PALM only: a budget of oracle calls.  When it runs out the walk calls no more; net
        points that no member covers are left out of the cover, counted in
        ``info["uncovered_points"]``, and the portfolio's status is ``BUDGET_EXHAUSTED`` (no
        guarantee is claimed).

    Returns
    -------
    Portfolio
        ``info`` records the net size, the budget split, the sizes before and after pruning and
        the oracle's ``scalarization`` (its repr) with the budget it was rounded at
        (``eps_rounding``, ``delta_rounding``).

    Raises
    ------
    ValueError, TypeError
        Invalid arguments, before the first oracle call; also a scalarization for which the
        rounding lemma does not hold (``PMean(p)`` with ``p <= 0``) and ``lazy=True`` with
        ``Tchebycheff()``.
    OracleError
        An oracle call failed; every result obtained before it is in the store.

    Examples
    --------
    >>> import numpy as np
    >>> import palmopt
    >>> V = np.array([[1.0, 0.0], [0.9, 0.5], [0.5, 0.9], [0.0, 1.0]])
    >>> oracle = palmopt.as_oracle(lambda w: V[np.argmax(V @ w)], d=2, name="four-points")
    >>> p = palmopt.palm(oracle, 0.1, progress=False)
    >>> len(p), p.n_oracle_calls
    (2, 141)
    >>> palmopt.certify(p, V, eps=0.1, delta=0.1).holds
    True
    """
    eps, delta = check_tolerances(eps, delta)
    budget = NoiseBudget(confidence, tails)
    max_calls = None if max_calls is None else check_count(max_calls, "max_calls")
    if max_calls is not None and not lazy:
        raise ValueError("`max_calls` bounds lazy PALM's walk; without lazy=True PALM calls every net point.")
    prune = check_choice(prune, "prune", METHODS)
    split = check_fraction(split, "split")
    max_points = check_count(max_points, "max_points")
    oracle = checked(oracle)
    scal = scalarization_of(oracle)
    eps_h, delta_h = scal.rounding_budget(eps, delta)  # refuses a scalarization the lemma does not cover
    if not scal.linear and oracle.value_range[0] < 0:
        raise ValueError(
            f"{scal!r} is defined for non-negative values; the oracle declares value_range={oracle.value_range}."
        )

    def transform(V):  # values -> u with h_w(v) = w·u, or None (Tchebycheff)
        return scal.linearize(V if scal.linear else np.clip(V, 0.0, None))

    if lazy and transform(np.zeros((1, oracle.d))) is None:
        raise ValueError(
            f"lazy PALM bounds OPT by the optimistic bound of the weighted sum, which needs a rounding form "
            f"linear in w; {scal!r} has none (its minimum is not linear in w). Use lazy=False."
        )
    if prune == "none":
        eps1, delta1, eps2, delta2 = eps_h, delta_h, 0.0, 0.0
    else:
        eps1, delta1, eps2, delta2 = budget_split(eps_h, delta_h, split)
    _check_net_size(oracle.d, eps, delta, eps1, delta1, max_points, lazy, scal)
    params = {"method": "palm", "eps": eps, "delta": delta, "prune": prune, "split": split, "lazy": bool(lazy)}
    if scal != Linear():
        params["scalarization"] = repr(scal)
    t0 = time.perf_counter()
    if lazy:
        with open_store(store, oracle, params) as run_store:
            walk = _lazy_walk(
                oracle, oracle.d, eps1, delta1, eps2, delta2, executor, run_store, progress, transform, budget,
                max_calls=max_calls,
            )
        points, solutions, n_new, first, C, n_net = walk
        noisy = budget.used > 0
        t_oracle = time.perf_counter() - t0
        V_called = np.array([s.values for s in solutions])
        n_calls = len(np.unique(points, axis=0))
        weights_of = points
    else:
        net = cover(oracle.d, eps1, delta1, max_points=max_points)
        with open_store(store, oracle, params) as run_store:
            solutions, n_new = run_calls(
                oracle, net.points, executor=executor, store=run_store, progress=progress, desc="PALM"
            )
        t_oracle = time.perf_counter() - t0
        n_net = len(net)
        V_called = np.array([s.values for s in solutions])
        noisy = any(sol.stderr is not None and np.any(sol.stderr > 0) for sol in solutions)
        if noisy:  # one pooled estimate per distinct policy, and its confidence box
            V_called, first, own, low, high = _pooled_boxes(solutions, budget, oracle.value_range)
        else:  # distinct value vectors are interchangeable members: keep the first policy of each
            _, first, inverse = np.unique(V_called, axis=0, return_index=True, return_inverse=True)
            own = inverse.ravel()
        U = transform(V_called[first])
        if noisy and U is None:
            raise ValueError(
                f"noise-aware pruning needs a rounding form linear in w; {scal!r} has none. Use exact values, or "
                f"prune='none' (the rounding lemma needs no values); the calls made are in the store."
            )
        if noisy:
            C = covering_matrix(net.lower, own, transform(low), eps2, delta2, V_own=transform(high))
        elif U is not None:  # the rounding form is linear in w over u = transform(v)
            C = covering_matrix(net.lower, own, U, eps2, delta2)
        else:
            C = covering_matrix(
                net.lower, own, np.clip(V_called[first], 0.0, None), eps2, delta2, score=scal.rounding_score
            )
        n_calls = len(np.unique(net.points, axis=0))  # distinct weights: one call each
        weights_of = net.points
    uncovered = 0
    if lazy and max_calls is not None and n_new >= max_calls:  # the budget ran out: drop what nothing covers
        coverable = C.any(axis=1)
        uncovered, C = int((~coverable).sum()), C[coverable]
    cover_ = set_cover(C, prune)
    chosen = cover_.columns
    greedy_size = len(set_cover(C, "greedy")) if prune == "exact" else None
    keep = first[chosen]
    info = {
        "net_size": n_net,
        "n_new_calls": n_new,
        "n_distinct": len(first),
        "size_after_prune": len(chosen),
        "greedy_size": greedy_size if greedy_size is not None else (len(chosen) if prune == "greedy" else None),
        "eps_net": eps1,
        "delta_net": delta1,
        "eps_prune": eps2,
        "delta_prune": delta2,
        "scalarization": repr(scal),
        "eps_rounding": eps_h,
        "delta_rounding": delta_h,
        "confidence": budget.confidence if noisy else 1.0,
        **({"noise": budget.describe()} if noisy else {}),
        "cover_optimal": cover_.optimal,
        "cover_status": str(cover_.status),
        "seconds_oracle": t_oracle,
        "seconds_total": time.perf_counter() - t0,
    }
    exhausted = lazy and max_calls is not None and n_new >= max_calls and uncovered > 0
    info["uncovered_points"] = uncovered
    return Portfolio(
        values=V_called[keep],
        weights=weights_of[keep],
        policies=[solutions[i].policy for i in keep],
        n_oracle_calls=n_calls,
        eps=eps,
        delta=delta,
        method="palm",
        status=Status.BUDGET_EXHAUSTED if exhausted else Status.SUCCESS,
        info=info,
    )


def _pooled_boxes(solutions, budget, value_range):
    """Noisy calls grouped by policy: pooled values of every call (``V``), the first call of
    each group (``first``), each call's group (``own``) and each group's box (``low``, ``high``,
    indexed like ``first``), one estimate spent from ``budget`` per group."""
    groups, own = {}, np.empty(len(solutions), dtype=np.int64)
    for i, sol in enumerate(solutions):
        own[i] = groups.setdefault(policy_key(sol.policy, ("call", i)), len(groups))
    d = len(solutions[0].values)
    first = np.array([np.flatnonzero(own == g)[0] for g in range(len(groups))], dtype=np.int64)
    V, low, high = np.empty((len(solutions), d)), np.empty((len(first), d)), np.empty((len(first), d))
    for g in range(len(first)):
        rows = np.flatnonzero(own == g)
        se = [np.zeros(d) if solutions[r].stderr is None else solutions[r].stderr for r in rows]
        v, s = pool([solutions[r].values for r in rows], se)
        z = budget.next(d) if np.any(s > 0) else 0.0
        V[rows] = np.clip(v, *value_range)  # the point estimate, within the known range
        low[g], high[g] = np.clip(v - z * s, *value_range), np.clip(v + z * s, *value_range)
    return V, first, own, low, high


def _check_net_size(d, eps, delta, eps1, delta1, max_points, lazy, scal):
    """Refuse, before any call, a net with more than ``max_points`` points, saying what to do."""
    try:
        if upper_bound(d, eps1, delta1) <= max_points:
            return
        size = net_size(d, eps1, delta1)
    except ValueError as exc:  # astronomically large: not even countable
        if "digits" not in str(exc):
            raise
        size = None
    if size is not None and size <= max_points:
        return
    size_text = "too many to count" if size is None else fmt_int(size)
    how = f"the net is built at eps={eps1:.4g}, delta={delta1:.4g} (after "
    how += "the budget split)" if scal.linear else f"the rounding budget of {scal!r} and the budget split)"
    if lazy:
        advice = (
            "Lazy PALM streams the net, so memory does not grow with it, but it visits every point: raise "
            "`max_points` to accept the time"
            + (", or use palmopt.adaptive, which visits only corner weights." if scal.linear else ".")
        )
    else:
        gib = "far too many" if size is None else f"about {size * (3 * d + 1) * 8 / 2**30:.3g}"
        lazy_ok = scal.linearize(np.zeros((1, d))) is not None
        options = ["raise `max_points`"]
        if lazy_ok:
            options.append("use lazy=True (streams the net, calls the oracle only where the optimistic bound "
                           "cannot vouch for a point)")
        if scal.linear:
            options.append("use palmopt.adaptive")
        advice = f"Building it would need {gib} GiB and one oracle call per point: " + ", or ".join(options) + "."
    raise ValueError(
        f"PALM for eps={eps:g}, delta={delta:g} walks a net of {size_text} points, more than "
        f"max_points={max_points}; {how}. {advice}"
    )


def _net_chunks(d, eps, delta, chunk=1 << 16, rng=None):
    """The PALM net at ``(eps, delta)`` as blocks of level indices (rows ``k`` with lower corner
    ``levels[k]``), without building it: exactly the level vectors with ``Σ lo ≤ 1 < Σ hi``.

    The first coordinate is looped over; the middle ones are expanded breadth-first with the
    prefixes that can still be completed (``Σ lo ≤ 1``); the last coordinate's admissible levels
    form a contiguous range, found by binary search.  Every sum is exact (dyadic levels), so the
    blocks are, as a set, the net of :func:`palmopt.cover` (tested).  With ``rng`` the first
    coordinate's levels are visited in a random order and each block is shuffled.
    """
    E = _edges(d, eps, delta)
    lo, hi = E[:-1], E[1:]
    n = len(lo)
    order = np.arange(n) if rng is None else rng.permutation(n)
    firsts = [np.zeros((1, 0), dtype=np.int64)] if d == 1 else [np.array([[a]]) for a in order]
    for pre in firsts:
        slo, shi = lo[pre].sum(axis=1), hi[pre].sum(axis=1)
        for _ in range(max(0, d - 2)):  # middle coordinates
            keep = slo <= 1.0
            pre, slo, shi = pre[keep], slo[keep], shi[keep]
            k = np.arange(n)
            ok = slo[:, None] + lo[None, :] <= 1.0
            r, c = np.nonzero(ok)
            pre = np.c_[pre[r], k[c]]
            slo, shi = slo[r] + lo[c], shi[r] + hi[c]
        # last coordinate: lo_b <= 1 - Σlo and hi_b > 1 - Σhi, a contiguous range of b
        b_max = np.searchsorted(lo, 1.0 - slo, side="right") - 1
        b_min = np.searchsorted(hi, 1.0 - shi, side="right")
        counts = np.maximum(b_max - b_min + 1, 0)
        if not counts.any():
            continue
        rows = np.repeat(np.arange(len(pre)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        block = np.c_[pre[rows], (np.repeat(b_min, counts) + offsets)[:, None]]
        if rng is not None:
            block = block[rng.permutation(len(block))]
        for s in range(0, len(block), chunk):
            yield block[s : s + chunk], lo


def _bound_vertices(Q, b):
    """Vertices of ``{v : Q v ≤ b, 0 ≤ v ≤ 1}``, so that ``UB(l) = max_vertex l·v``; ``None`` when
    the polytope is flat (some ``b_q = 0``) or Qhull fails (callers then use the LP)."""
    from scipy.spatial import HalfspaceIntersection, QhullError

    d = Q.shape[1]
    H = np.r_[np.c_[Q, -b], np.c_[-np.eye(d), np.zeros(d)], np.c_[np.eye(d), -np.ones(d)]]
    inner = np.full(d, min(0.5, 0.5 * float(b.min()) / max(float(Q.sum(axis=1).max()), 1e-300)))
    if not np.all(H[:, :-1] @ inner + H[:, -1] < 0):
        return None
    try:
        return HalfspaceIntersection(H, inner).intersections
    except QhullError:
        return None


def _lazy_walk(
    oracle, d, eps1, delta1, eps2, delta2, executor, store, progress, transform, budget, block=4096, shuffle=1 << 17,
    max_calls=None,
):
    """Call the oracle only at net points the optimistic bound cannot vouch for, streaming the net.

    ``UB`` is the support function of ``{u : Q u ≤ b, 0 ≤ u ≤ 1}`` (``u = transform(v)``, the
    rounding form's coordinates): with its vertices enumerated (Qhull) it is one matrix product per
    block of points.  The vertices come first, then the net in a seeded random order, globally
    within a shuffle buffer of ``shuffle`` points (the whole net when it is smaller); points are vouched for in blocks, the rest one by one with the bound
    updated after each oracle call.  A second pass over the stream builds the covering matrix --
    with the final bound, still ``≥ OPT`` and no larger than the one each point was vouched with --
    keeping its distinct rows only, so memory does not grow with the net.

    Noisy values: each call's estimate gets a confidence box from ``budget``; members vouch and
    cover with the bottoms of their boxes, the bound uses the tops, and every call is its own
    member (its own point is covered by it whatever the noise).

    Returns ``(points, solutions, n_new, first, C, n_net)``: the called weights and their
    solutions in call order, the number of calls, the first solution of each distinct value
    vector (every call when noisy), the distinct rows of the covering matrix over those, and the
    net's size.
    """
    from tqdm.auto import tqdm

    from .certify import upper_bound_opt

    Q, U, U_top, called_lower, solutions = [], [], [], [], []
    state = {}  # the polytope's arrays and vertices, rebuilt only after a new call
    value_range = oracle.value_range

    def bound_of(L):
        if state.get("n") != len(Q):
            Qa, Ua = np.array(Q), np.array(U)
            b = np.einsum("ij,ij->i", Qa, np.array(U_top))
            state.update(n=len(Q), Q=Qa, U=Ua, b=b, verts=_bound_vertices(Qa, b))
        if state["verts"] is None:
            return upper_bound_opt(L, state["Q"], state["b"])[0]  # dual-verified LP bound, one LP per point
        return (L @ state["verts"].T).max(axis=1) + VERTEX_MARGIN

    def vouched(L):
        bound = bound_of(L)  # refreshes the state after a new call
        return (L @ state["U"].T).max(axis=1) >= (1.0 - eps2) * bound - delta2

    def call(l):
        if max_calls is not None and len(Q) >= max_calls:
            return  # the budget is spent: the point stays unvouched (and may stay uncovered)
        w = l / l.sum()
        sol, _ = run_calls(oracle, w[None, :], executor=executor, store=store, progress=False)
        v, se = sol[0].values, sol[0].stderr
        z = budget.next(d) if se is not None and np.any(se > 0) else 0.0
        low, top = (v, v) if z == 0 else (np.clip(v - z * se, *value_range), np.clip(v + z * se, *value_range))
        Q.append(w)
        U.append(low if transform is None else transform(low[None, :])[0])
        U_top.append(top if transform is None else transform(top[None, :])[0])
        called_lower.append(l)
        solutions.append(sol[0])

    rng = np.random.default_rng(0)
    E = _edges(d, eps1, delta1)
    top = E[-2] * np.eye(d)  # the vertices are net points (the top level alone)
    bar = tqdm(total=net_size(d, eps1, delta1), desc="lazy PALM", disable=not progress, leave=False)
    for l in top:
        if not Q or not vouched(l[None, :])[0]:
            call(l)
    n_net, buffer, chunks = 0, [], _net_chunks(d, eps1, delta1, rng=rng)
    while True:  # a shuffle buffer of up to `shuffle` points: a global random order for smaller nets
        idx_lo = next(chunks, None)
        if idx_lo is not None:
            L = idx_lo[1][idx_lo[0]]
            buffer.append(L[~(((L > 0).sum(axis=1) == 1) & (L.max(axis=1) == E[-2]))])  # vertices: done
            n_net += len(L)
            if sum(map(len, buffer)) < shuffle:
                continue
        if not buffer:
            break
        L = np.vstack(buffer)
        L, buffer = L[rng.permutation(len(L))], []
        for s in range(0, len(L), block):
            Lb = L[s : s + block]
            for l in Lb[~vouched(Lb)]:
                if not vouched(l[None, :])[0]:
                    call(l)
        bar.update(len(L))
        if idx_lo is None:
            break
    bar.close()

    # the covering matrix, streamed: distinct rows only
    V_called = np.array([s.values for s in solutions])
    noisy = budget.used > 0
    if noisy:  # every call is its own member
        first = inverse = np.arange(len(solutions))
    else:
        _, first, inverse = np.unique(V_called, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
    U_first = np.array(U)[first]
    U_own = np.array(U_top) if noisy else None
    called_lower = np.array(called_lower)
    kv = _void(called_lower)
    order = np.argsort(kv)
    kv = kv[order]
    rows = []
    for idx, lo in _net_chunks(d, eps1, delta1):
        L = lo[idx]
        # own[g]: the distinct value of the call at this point, -1 if it was vouched for
        lv = _void(L)
        pos = np.minimum(np.searchsorted(kv, lv), len(kv) - 1)
        hit = kv[pos] == lv
        own = np.where(hit, inverse[order[pos]], -1)
        opt_bound = np.full(len(L), np.nan)
        if (~hit).any():
            opt_bound[~hit] = bound_of(L[~hit])
        C = covering_matrix(L, own, U_first, eps2, delta2, opt_bound, V_own=U_own)
        P = _pack(C)
        _, uniq = np.unique(P, axis=0, return_index=True)
        rows.append(C[uniq])
        if len(rows) > 64:
            rows = [_distinct_rows(np.vstack(rows))]
    C = _distinct_rows(np.vstack(rows))
    points = called_lower / called_lower.sum(axis=1, keepdims=True)
    return points, solutions, len(solutions), first, C, n_net


def _distinct_rows(C):
    _, uniq = np.unique(_pack(C), axis=0, return_index=True)
    return C[np.sort(uniq)]


def _void(A):
    """Rows of a float array as opaque byte strings (sortable, comparable for equality)."""
    A = np.ascontiguousarray(A, dtype=np.float64)
    return A.view(np.dtype((np.void, 8 * A.shape[1]))).ravel()
