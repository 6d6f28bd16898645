r"""The exact convex coverage set of a finite set of value vectors.

:func:`convex_coverage_set` keeps the rows ``v`` of ``V`` that maximise ``w·v`` within ``tol``
for some weight ``w`` on the simplex, i.e. those with ``max_w min_u w·(v - u) >= -tol``.  That
margin is the shortfall LP of :func:`palmopt.certify.max_shortfall`; cheap exact shortcuts
settle most rows before any LP is solved (see :func:`convex_coverage_set`).
"""

import itertools

import numpy as np

from palmopt.tolerances import SHORTFALL

__all__ = ["convex_coverage_set"]

#: Smallest margin by which a row must lie inside the pushed-down hull to be discarded without an
#: LP (Qhull's facet equations are accurate to ~1e-14 on values in [0, 1]).
HULL_MARGIN = 1e-9
#: Seed of the random probe weights (fixed: the witnesses are reproducible).
PROBE_SEED = 20240601


def convex_coverage_set(V, tol=1e-12):
    """Rows of ``V`` that maximise ``w·v`` within ``tol`` for some ``w`` on the simplex.

    Parameters
    ----------
    V : ndarray, shape (n, d)
        Distinct value vectors.
    tol : float, default 1e-12
        A row is kept iff ``max_{w in simplex} min_u w·(v - u) >= -tol`` over the rows ``u``.

    Returns
    -------
    front : ndarray, shape (m, d)
        The kept rows, in their order in ``V``.
    W : ndarray, shape (m, d)
        ``W[k]`` is a weight at which ``front[k]`` is such a maximiser.

    Notes
    -----
    1. Rows beaten by more than ``tol`` in every coordinate by another row are out.
    2. Rows that win at one of ~2,000 probe weights (vertices, edge midpoints, the centre,
       seeded random weights) are in, with that weight as the witness.
    3. Rows deep inside the hull of the winners pushed down (Qhull, margin ``HULL_MARGIN``)
       are beaten at every weight: out.
    4. The rest: the shortfall LP against the winners, with constraint generation.  A row is
       out when the LP's verified upper bound is below ``-tol``, in when the margin at the LP's
       weight, recomputed with NumPy against every row, is at least ``-tol``; otherwise the
       most violated row joins the LP.  When that row is already in it, the LP cannot be
       sharpened and the recomputed margin decides, with the LP accuracy ``SHORTFALL``.

    Examples
    --------
    >>> import numpy as np
    >>> V = np.array([[1.0, 0.0], [0.0, 1.0], [0.1, 0.1], [0.5, 0.5]])
    >>> front, W = convex_coverage_set(V)
    >>> front.tolist()                   # (0.1, 0.1) is dominated; (0.5, 0.5) ties at w = (½, ½)
    [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]
    """
    d = V.shape[1]
    C = V[_strictly_undominated(V, tol)]  # 1. strictly dominated rows are out
    k = C.shape[0]
    witness = np.full((k, d), np.nan)
    # 2. Points that win at a probe weight are in, without an LP.
    for Wb in np.array_split(_probe_weights(d), max(1, (k * 2048) // (1 << 22))):
        scores = C @ Wb.T  # (k, b)
        win = scores >= scores.max(axis=0) - tol
        new = win.any(axis=1) & np.isnan(witness[:, 0])
        witness[new] = Wb[np.argmax(win[new], axis=1)]
    confirmed = ~np.isnan(witness[:, 0])
    base = np.flatnonzero(confirmed)
    # 3. Points deep inside the hull of the confirmed points pushed down (a subset of the region
    #    {x <= some convex combination of them}) are beaten at every w: out, without an LP.
    undecided = np.flatnonzero(~confirmed)
    if d >= 2 and undecided.size > 8:
        undecided = undecided[~_inside_lower_hull(C[base], C[undecided], C.min(axis=0) - 1.0, tol)]
    # 4. The others: the shortfall LP with constraint generation against all candidates.
    for i in undecided:
        w = _margin_witness(C, i, base, tol)
        if w is not None:
            witness[i] = w
    keep = ~np.isnan(witness[:, 0])
    return C[keep], witness[keep]


def _margin_witness(C, i, base, tol):
    """A weight at which ``C[i]`` is a maximiser within ``tol``, or None (step 4 of the notes above)."""
    from palmopt.certify import max_shortfall  # SciPy's LP solver, imported only when an LP is needed

    v = C[i]
    active = list(base)
    while True:
        _, w, bound = max_shortfall(C[active], v)  # margin of v against the active rows
        if w is None:  # pragma: no cover - the LP is feasible and bounded by construction
            raise RuntimeError("the margin LP of the convex coverage set failed")
        if bound < -tol:  # verified: the active rows beat v by more than tol at every w
            return None
        gaps = C @ w
        j = int(np.argmax(gaps))
        margin = w @ v - gaps[j]  # recomputed with NumPy, against every row
        if margin >= -tol:
            return w
        if j in active:  # solver precision reached: decide on the recomputed margin
            return w if margin >= -SHORTFALL else None
        active.append(j)


def _dominated_by(X, K, tol):
    """Mask of the rows of ``X`` that some row of ``K`` beats by more than ``tol`` in every coordinate."""
    out = np.zeros(X.shape[0], dtype=bool)
    if K.shape[0] == 0:
        return out
    step = max(1, (1 << 22) // max(1, K.shape[0]))
    for i0 in range(0, X.shape[0], step):
        Xb = X[i0 : i0 + step] + tol
        M = K[None, :, 0] > Xb[:, None, 0]
        for j in range(1, X.shape[1]):
            M &= K[None, :, j] > Xb[:, None, j]
        out[i0 : i0 + step] = M.any(axis=1)
    return out


def _strictly_undominated(V, tol):
    """Indices of the rows of ``V`` that no row beats by more than ``tol`` in every coordinate."""
    n, d = V.shape
    # Stage A: a cheap pass against an elite (the best few rows for some probe weights).  Strict
    # dominance is transitive, so a row dominated by anything is dominated by an undominated row.
    probe = _probe_weights(d)[: 8 * d + 32]
    top = min(n, 8)
    scores = V @ probe.T
    elite = np.unique(np.argpartition(-scores, top - 1, axis=0)[:top].ravel())
    idx = np.flatnonzero(~_dominated_by(V, V[elite], tol))
    # Stage B: exact, in order of decreasing coordinate sum (a dominator has a larger sum).
    idx = idx[np.argsort(-V[idx].sum(axis=1), kind="stable")]
    kept = np.empty((0, d))
    kept_idx = []
    chunk = 256
    for start in range(0, idx.size, chunk):
        ids = idx[start : start + chunk]
        X = V[ids]
        dom = _dominated_by(X, kept, tol) | _dominated_by(X, X, tol)
        kept = np.vstack([kept, X[~dom]])
        kept_idx.extend(ids[~dom].tolist())
    return np.sort(np.array(kept_idx, dtype=np.int64))


def _probe_weights(d):
    """Vertices, edge midpoints, the centre and seeded random weights (some near faces)."""
    rows = [np.eye(d), np.full((1, d), 1.0 / d)]
    if d >= 2:
        rows.append(np.array([(np.eye(d)[i] + np.eye(d)[j]) / 2 for i, j in itertools.combinations(range(d), 2)]))
        rng = np.random.default_rng(PROBE_SEED)
        rows += [rng.dirichlet(np.ones(d), 1024), rng.dirichlet(np.full(d, 0.2), 1024)]
    W = np.vstack(rows)
    return W / W.sum(axis=1, keepdims=True)


def _inside_lower_hull(B, X, floor, tol):
    """Mask of the rows of ``X`` strictly inside ``conv(B pushed down to floor)`` by a margin.

    A row inside with a ball of radius ``r > tol·sqrt(d)`` around it satisfies
    ``w·x <= max_b w·b - r·|w|_2 < max_b w·b - tol`` for every ``w`` on the simplex, so it is no
    maximiser.  Falls back to "nothing inside" if Qhull fails (degenerate input).
    """
    from scipy.spatial import ConvexHull, QhullError

    d = B.shape[1]
    masks = np.array(list(itertools.product((False, True), repeat=d)), dtype=bool)
    if d > 6:  # 2**d shadows per point would be too many: push down one coordinate at a time
        masks = np.vstack([np.zeros((1, d), dtype=bool), np.eye(d, dtype=bool)])
    pts = np.where(masks[None, :, :], floor, B[:, None, :]).reshape(-1, d)
    try:
        hull = ConvexHull(np.unique(pts, axis=0))
    except (QhullError, ValueError):
        return np.zeros(X.shape[0], dtype=bool)
    margin = max(HULL_MARGIN, 2.0 * tol * np.sqrt(d))
    dist = X @ hull.equations[:, :-1].T + hull.equations[:, -1]
    return dist.max(axis=1) < -margin
