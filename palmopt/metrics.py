r"""Metrics of a portfolio: exact worst-case gaps, the MORL literature's utility metrics,
hypervolume, how evenly the members are used, and how far apart they are.

Every function takes a :class:`~palmopt.portfolio.Portfolio` (or anything with a ``values``
array, e.g. a :class:`~palmopt.minimum.MinimumPortfolio`) or a plain ``(k, d)`` array of the
members' value vectors.  With ``LB(w) = max_j w·u_j`` the portfolio's lower envelope and
``OPT(w) = max_t w·t`` the reference front's upper envelope:

* the exact worst-case gaps ``eps* = max_w 1 - LB(w)/OPT(w)`` and ``delta* = max_w OPT(w) - LB(w)``
  over the whole simplex are :func:`palmopt.certify`'s ``eps_star`` and ``delta_star``;
* :func:`expected_utility` (EUM) and :func:`max_utility_loss` (MUL) -- the mean of ``LB`` and the
  largest ``OPT - LB`` over a sample of user weights (Zintgraf et al. 2015; Hayes et al. 2022);
* :func:`hypervolume` -- the volume dominated by the members above a reference point;
* :func:`usage_perplexity` -- ``exp`` of the entropy of which member serves a random user;
* :func:`spread` -- mean pairwise and largest Euclidean distance between members;
* :func:`summary` -- all of the above in one flat dict.
"""

from dataclasses import dataclass

import numpy as np

from . import _kernels
from .validation import as_matrix, as_values, check_count, check_simplex
from .certify import certify, reference_vectors
from .nets import random as random_weights

__all__ = [
    "Spread",
    "expected_utility",
    "hypervolume",
    "max_utility_loss",
    "spread",
    "summary",
    "usage_perplexity",
]

#: Default size of the Dirichlet(1) user sample of :func:`usage_perplexity` and :func:`summary`.
DEFAULT_N_USERS = 10_000


def _best(V, W):
    """``max_j w·V_j`` and the first maximiser, for each row of ``W`` (validated)."""
    return _kernels.best_value(W, np.ascontiguousarray(V.T))


def expected_utility(portfolio, W):
    r"""Expected utility (EUM): the mean over user weights of the best member's utility.

    Parameters
    ----------
    portfolio : Portfolio or array_like, shape (k, d)
        The members' value vectors.
    W : array_like, shape (m, d)
        A sample of user weights, rows on the simplex (e.g. :func:`palmopt.nets.random`).

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        Non-numeric inputs, mismatched columns, or rows of ``W`` off the simplex.

    Notes
    -----
    .. math:: \mathrm{EUM} = \frac{1}{m} \sum_{i=1}^m \max_j w_i·u_j

    the expected utility metric of Zintgraf et al. (2015), "Quality assessment of MORL
    policies", with the linear utility of Hayes et al. (2022), "A practical guide to
    multi-objective reinforcement learning and planning", §8.  Larger is better.

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.metrics import expected_utility
    >>> U = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> expected_utility(U, [[1, 0], [0.5, 0.5], [0.25, 0.75]])
    0.75
    """
    V = as_values(portfolio)
    W = check_simplex(W, V.shape[1])
    return float(_best(V, W)[0].mean())


def max_utility_loss(portfolio, reference, W):
    r"""Maximum utility loss (MUL): the largest ``OPT(w) - LB(w)`` over a sample of weights.

    Parameters
    ----------
    portfolio : Portfolio or array_like, shape (k, d)
        The members' value vectors.
    reference : array_like (n, d), or an object with ``reference_front()`` or ``values``
        Achievable vectors whose upper envelope is ``OPT`` (the true or best-known front).
    W : array_like, shape (m, d)
        A sample of user weights, rows on the simplex.

    Returns
    -------
    float
        Non-negative when the reference contains the portfolio's members (a negative value
        means the portfolio beats the reference somewhere in the sample).

    Raises
    ------
    TypeError, ValueError
        Non-numeric inputs, mismatched columns, or rows of ``W`` off the simplex.

    Notes
    -----
    .. math:: \mathrm{MUL} = \max_{i} \Big( \max_t w_i·t - \max_j w_i·u_j \Big)

    (Hayes et al. 2022, "A practical guide to multi-objective reinforcement learning and
    planning", §8; Zintgraf et al. 2015).  Smaller is better.  It is a sample estimate of
    ``delta*``, never above it; :func:`gaps` gives the exact maximum over the whole simplex.

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.metrics import max_utility_loss
    >>> T = np.array([[1.0, 0.0], [0.8, 0.8], [0.0, 1.0]])
    >>> round(max_utility_loss(T[[0, 2]], T, [[1, 0], [0.5, 0.5], [0.25, 0.75]]), 3)
    0.3
    """
    V = as_values(portfolio)
    T = reference_vectors(reference, V.shape[1])
    W = check_simplex(W, V.shape[1])
    return float((_best(T, W)[0] - _best(V, W)[0]).max())


def hypervolume(portfolio, ref_point=None):
    r"""Hypervolume dominated by the members (maximisation) above a reference point.

    Computed with ``moocore`` (an optional dependency: ``pip install palmopt[bench]`` or
    ``pip install moocore``), which minimises: it receives ``-values`` and ``-ref_point``.

    Parameters
    ----------
    portfolio : Portfolio or array_like, shape (k, d)
        The members' value vectors.
    ref_point : array_like, shape (d,), optional
        The reference point; default the origin (values in [0, 1]^d are maximised).
        Members that do not strictly exceed it in every coordinate add nothing.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        Non-numeric or non-finite inputs, or a reference point of the wrong length.
    ImportError
        When ``moocore`` is not installed.

    Notes
    -----
    .. math:: HV = λ\Big(\bigcup_j \{x : r ≤ x ≤ u_j\}\Big)

    (Lebesgue measure λ; Zitzler & Thiele 1999).  Unlike the gap and utility metrics it
    rewards members anywhere on the front, supported or not.

    Examples
    --------
    >>> from palmopt.metrics import hypervolume
    >>> round(hypervolume([[1.0, 0.2], [0.5, 0.5], [0.2, 1.0]]), 6)
    0.45
    >>> round(hypervolume([[1.0, 0.2], [0.5, 0.5]], ref_point=[0.4, 0.1]), 6)
    0.09
    """
    V = as_values(portfolio)
    d = V.shape[1]
    r = np.zeros((1, d)) if ref_point is None else as_matrix(ref_point, "ref_point", d)
    if r.shape[0] != 1:
        raise ValueError(f"`ref_point` must be one point of length {d}; got shape {np.shape(ref_point)}.")
    try:
        import moocore
    except ImportError as exc:  # pragma: no cover - moocore is in the test extras
        raise ImportError(
            "palmopt.metrics.hypervolume needs the `moocore` package: pip install moocore "
            "(or palmopt[bench])."
        ) from exc
    return float(moocore.hypervolume(-V, ref=-r[0]))


def usage_perplexity(portfolio, W=None, *, rng=None, n=DEFAULT_N_USERS):
    r"""How many members are effectively used: ``exp`` of the entropy of the routing.

    Parameters
    ----------
    portfolio : Portfolio or array_like, shape (k, d)
        The members' value vectors.
    W : array_like, shape (m, d), optional
        User weights, rows on the simplex.  Default: ``n`` weights drawn uniformly from the
        simplex (Dirichlet(1, ..., 1), :func:`palmopt.nets.random`) with ``rng``.
    rng : None, int or numpy.random.Generator
        Randomness for the default sample (ignored when ``W`` is given).
    n : int, default 10_000
        Size of the default sample.

    Returns
    -------
    float
        In ``[1, k]``: 1 when one member serves everyone, ``k`` when all are used equally.

    Raises
    ------
    TypeError, ValueError
        Invalid ``portfolio``, ``W``, ``rng`` or ``n``.

    Notes
    -----
    Each user ``w`` is served by ``route(w) = argmax_j w·u_j`` (lowest index on ties, as
    :meth:`Portfolio.route`).  With ``p_j`` the share of users served by member ``j``,

    .. math:: \mathrm{perplexity} = \exp\Big(-\sum_{j: p_j > 0} p_j \ln p_j\Big),

    members never used contribute 0.  A portfolio whose perplexity is well below ``k`` has
    members that serve few users (candidates for pruning).

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.metrics import usage_perplexity
    >>> U = np.array([[1.0, 0.0], [0.0, 1.0], [0.1, 0.1]])    # the third member is never used
    >>> usage_perplexity(U, [[1, 0], [0.2, 0.8], [0, 1], [0.9, 0.1]])
    2.0
    >>> round(usage_perplexity(U, rng=0), 2)
    2.0
    """
    V = as_values(portfolio)
    k, d = V.shape
    if W is None:
        W = random_weights(d, check_count(n, "n"), rng=rng)
    W = check_simplex(W, d)
    counts = np.bincount(_best(V, W)[1], minlength=k)
    p = counts[counts > 0] / W.shape[0]
    return float(np.exp(-(p * np.log(p)).sum()))


@dataclass(frozen=True, eq=False)
class Spread:
    """Spread of the members' value vectors (Euclidean distances in objective space).

    Attributes
    ----------
    mean_distance : float
        Mean of ``||u_i - u_j||_2`` over the ``k (k-1) / 2`` pairs ``i < j`` (0 when ``k = 1``).
    diameter : float
        ``max_{i<j} ||u_i - u_j||_2`` (0 when ``k = 1``).
    """

    mean_distance: float
    diameter: float

    def __repr__(self):
        return f"Spread(mean_distance={self.mean_distance:.4g}, diameter={self.diameter:.4g})"


def spread(portfolio):
    r"""Mean pairwise and largest Euclidean distance between the members' value vectors.

    Parameters
    ----------
    portfolio : Portfolio or array_like, shape (k, d)
        The members' value vectors (duplicates count as pairs at distance 0).

    Returns
    -------
    Spread

    Notes
    -----
    .. math:: \bar D = \binom{k}{2}^{-1} \sum_{i<j} \|u_i - u_j\|_2, \qquad
              D_{max} = \max_{i<j} \|u_i - u_j\|_2 .

    Examples
    --------
    >>> from palmopt.metrics import spread
    >>> s = spread([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> round(s.mean_distance, 4), round(s.diameter, 4)
    (1.1381, 1.4142)
    """
    V = as_values(portfolio)
    if V.shape[0] < 2:
        return Spread(0.0, 0.0)
    i, j = np.triu_indices(V.shape[0], 1)
    D = np.linalg.norm(V[i] - V[j], axis=1)
    return Spread(float(D.mean()), float(D.max()))


def summary(portfolio, reference=None, W=None, *, rng=None, n=DEFAULT_N_USERS):
    """All the metrics of a portfolio in one flat, JSON-friendly dict.

    Parameters
    ----------
    portfolio : Portfolio or array_like, shape (k, d)
        The members' value vectors.
    reference : array_like (n, d), or an object with ``reference_front()`` or ``values``, optional
        An exact front; without one the reference-based metrics (``eps_star``,
        ``delta_star``, ``gap_status``, ``max_utility_loss``) are left out.
    W : array_like, shape (m, d), optional
        User weights for the sampled metrics; default ``n`` Dirichlet(1) weights from ``rng``.
    rng : None, int or numpy.random.Generator
    n : int, default 10_000

    Returns
    -------
    dict
        ``size``, ``expected_utility``, ``usage_perplexity``, ``hypervolume`` (reference point
        the origin), ``mean_distance``, ``diameter``, ``n_users``; with a reference also
        ``max_utility_loss``, ``eps_star``, ``delta_star`` and ``gap_status``.

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.metrics import summary
    >>> T = np.array([[1.0, 0.0], [0.8, 0.8], [0.0, 1.0]])
    >>> s = summary(T[[0, 2]], T, rng=0)
    >>> s["size"], round(s["delta_star"], 3), round(s["expected_utility"], 2)
    (2, 0.3, 0.75)
    """
    V = as_values(portfolio)
    d = V.shape[1]
    if W is None:
        W = random_weights(d, check_count(n, "n"), rng=rng)
    W = check_simplex(W, d)
    sp = spread(V)
    out = {
        "size": int(V.shape[0]),
        "n_users": int(W.shape[0]),
        "expected_utility": expected_utility(V, W),
        "usage_perplexity": usage_perplexity(V, W),
        "hypervolume": hypervolume(V),
        "mean_distance": sp.mean_distance,
        "diameter": sp.diameter,
    }
    if reference is not None:
        cert = certify(V, reference, 0.0, 0.0)
        out.update(
            max_utility_loss=max_utility_loss(V, reference, W),
            eps_star=cert.eps_star,
            delta_star=cert.delta_star,
            gap_status=str(cert.status),
        )
    return out
