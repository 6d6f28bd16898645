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
"""

import time

import numpy as np

from .oracle import checked

from .validation import check_choice, check_count, check_fraction, check_tolerances
from .executors import run_calls
from .nets import cover
from .portfolio import Portfolio
from .prune import METHODS, covering_matrix, set_cover
from .store import open_store
from .tolerances import VERTEX_MARGIN

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
        Refuse nets with more points (oracle calls) than this.
    lazy : bool
        Walk the net but call the oracle only where the optimistic bound ``UB ≥ OPT`` (see
        :mod:`palmopt.adaptive`) cannot already vouch for the point: a net point ``l`` is skipped
        when some member has ``l·u ≥ (1-ε_2) UB(l) - δ_2``, which is all the proof needs; the
        pruning then uses the bound recorded for each skipped point.  Same guarantee, far fewer
        calls.

    Returns
    -------
    Portfolio
        ``info`` records the net size, the budget split, and the sizes before and after pruning.

    Raises
    ------
    ValueError, TypeError
        Invalid arguments, before the first oracle call.
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
    prune = check_choice(prune, "prune", METHODS)
    split = check_fraction(split, "split")
    max_points = check_count(max_points, "max_points")
    oracle = checked(oracle)
    if prune == "none":
        eps1, delta1, eps2, delta2 = eps, delta, 0.0, 0.0
    else:
        eps1, delta1, eps2, delta2 = budget_split(eps, delta, split)
    net = cover(oracle.d, eps1, delta1, max_points=max_points)
    params = {"method": "palm", "eps": eps, "delta": delta, "prune": prune, "split": split, "lazy": bool(lazy)}
    t0 = time.perf_counter()
    with open_store(store, oracle, params) as run_store:
        if lazy:
            called, solutions, opt_bound, n_new = _lazy_walk(oracle, net, eps2, delta2, executor, run_store, progress)
        else:
            solutions, n_new = run_calls(
                oracle, net.points, executor=executor, store=run_store, progress=progress, desc="PALM"
            )
            called, opt_bound = np.arange(len(net)), None
    t_oracle = time.perf_counter() - t0
    V_called = np.array([s.values for s in solutions])

    # distinct value vectors are interchangeable members: keep the first policy of each
    _, first, inverse = np.unique(V_called, axis=0, return_index=True, return_inverse=True)
    own = np.full(len(net), -1)
    own[called] = inverse.ravel()
    C = covering_matrix(net.lower, own, V_called[first], eps2, delta2, opt_bound)
    cover_ = set_cover(C, prune)
    chosen = cover_.columns
    greedy_size = len(set_cover(C, "greedy")) if prune == "exact" else None
    keep = first[chosen]
    n_calls = len(np.unique(net.points[called], axis=0))  # distinct weights: one call each
    info = {
        "net_size": len(net),
        "n_new_calls": n_new,
        "n_distinct": len(first),
        "size_after_prune": len(chosen),
        "greedy_size": greedy_size if greedy_size is not None else (len(chosen) if prune == "greedy" else None),
        "eps_net": eps1,
        "delta_net": delta1,
        "eps_prune": eps2,
        "delta_prune": delta2,
        "cover_optimal": cover_.optimal,
        "cover_status": str(cover_.status),
        "seconds_oracle": t_oracle,
        "seconds_total": time.perf_counter() - t0,
    }
    return Portfolio(
        values=V_called[keep],
        weights=net.points[called[keep]],
        policies=[solutions[i].policy for i in keep],
        n_oracle_calls=n_calls,
        eps=eps,
        delta=delta,
        method="palm",
        info=info,
    )


def _walk_order(points):
    """Lazy walk order: the net points nearest to the vertices first, then a seeded shuffle."""
    d = points.shape[1]
    first = [int(np.argmax(points[:, i])) for i in range(d)]
    rest = np.random.default_rng(0).permutation(len(points))
    seen = set(first)
    return np.array(first + [i for i in rest if i not in seen])


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


def _lazy_walk(oracle, net, eps2, delta2, executor, store, progress, block=4096):
    """Call the oracle only at net points the optimistic bound cannot vouch for.

    ``UB`` is the support function of ``{v : Q v ≤ b, 0 ≤ v ≤ 1}``: with its vertices enumerated
    (Qhull) it is one matrix product per block of points.  Points are vouched for in blocks;
    the rest, one by one in walk order, with the bound updated after each oracle call.
    """
    from tqdm.auto import tqdm

    from .certify import upper_bound_opt

    L = net.lower
    opt_bound = np.full(len(net), np.nan)
    called, solutions, Q, V = [], [], [], []

    bound_state = {}  # the polytope's arrays and vertices, rebuilt only after a new call

    def vouch(idx):
        """Bounds on OPT at the points ``idx`` and whether some member meets them."""
        if bound_state.get("n") != len(Q):
            Qa, Va = np.array(Q), np.array(V)
            b = np.einsum("ij,ij->i", Qa, Va)
            bound_state.update(n=len(Q), Q=Qa, V=Va, b=b, verts=_bound_vertices(Qa, b))
        Qa, Va, b, verts = (bound_state[k] for k in ("Q", "V", "b", "verts"))
        have = (L[idx] @ Va.T).max(axis=1)
        if verts is None:
            bound = upper_bound_opt(L[idx], Qa, b)[0]  # dual-verified LP bound, one LP per point
        else:
            bound = (L[idx] @ verts.T).max(axis=1) + VERTEX_MARGIN
        return bound, have >= (1.0 - eps2) * bound - delta2

    order = _walk_order(net.points)
    bar = tqdm(total=len(order), desc="lazy PALM", disable=not progress, leave=False)
    for start in range(0, len(order), block):
        chunk = order[start : start + block]
        todo = chunk
        if Q:
            bound, ok = vouch(chunk)
            opt_bound[chunk[ok]] = bound[ok]
            todo = chunk[~ok]
        for g in todo:
            if Q:
                bound, ok = vouch(np.array([g]))
                if ok[0]:
                    opt_bound[g] = bound[0]
                    continue
            sol, _ = run_calls(oracle, net.points[g][None, :], executor=executor, store=store, progress=False)
            called.append(g)
            solutions.append(sol[0])
            Q.append(net.points[g])
            V.append(sol[0].values)
        bar.update(len(chunk))
    bar.close()
    return np.array(called), solutions, opt_bound, len(called)
