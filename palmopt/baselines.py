"""Baseline portfolios, each a :class:`~palmopt.portfolio.Portfolio`: one oracle call per
given weight (the PALM paper's equal-size uniform and random weights, and the d specialists),
and Optimistic Linear Support with an additive stopping rule (the multi-objective RL standard).
"""

import numpy as np

from .oracle import checked

from . import nets
from .validation import check_count, check_simplex
from .executors import run_calls
from .portfolio import Portfolio
from .store import open_store

__all__ = ["from_weights", "uniform", "random", "specialists", "ols"]


def from_weights(oracle, W, *, method="weights", executor=None, store=None, progress=False):
    """One oracle call per row of ``W`` (rows on the simplex); duplicate value vectors are kept
    once (the first).

    Examples
    --------
    >>> import numpy as np, palmopt
    >>> from palmopt.baselines import from_weights
    >>> V = np.array([[1.0, 0.0], [0.6, 0.6], [0.0, 1.0]])
    >>> oracle = palmopt.as_oracle(lambda w: V[np.argmax(V @ w)], d=2, name="three")
    >>> from_weights(oracle, [[1, 0], [0.5, 0.5], [0.4, 0.6]]).values
    array([[1. , 0. ],
           [0.6, 0.6]])
    """
    oracle = checked(oracle)
    W = check_simplex(W, oracle.d)
    with open_store(store, oracle, {"method": method, "weights": W.tolist()}) as run_store:
        solutions, _ = run_calls(oracle, W, executor=executor, store=run_store, progress=progress, desc=method)
    V = np.array([s.values for s in solutions])
    keep = np.sort(np.unique(V, axis=0, return_index=True)[1])
    return Portfolio(
        values=V[keep],
        weights=W[keep],
        policies=[solutions[i].policy for i in keep],
        n_oracle_calls=len(W),
        method=method,
        info={"n_weights": len(W)},
    )


def uniform(oracle, k, **kwargs):
    """``k`` well-spread weights (:func:`palmopt.nets.uniform`)."""
    return from_weights(oracle, nets.uniform(oracle.d, check_count(k, "k")), method="uniform", **kwargs)


def random(oracle, k, *, rng=None, **kwargs):
    """``k`` weights drawn uniformly from the simplex (:func:`palmopt.nets.random`)."""
    return from_weights(oracle, nets.random(oracle.d, check_count(k, "k"), rng=rng), method="random", **kwargs)


def specialists(oracle, **kwargs):
    """The ``d`` extreme weights: one specialist per objective."""
    return from_weights(oracle, np.eye(oracle.d), method="specialists", **kwargs)


def ols(oracle, delta, **kwargs):
    """Optimistic Linear Support (Roijers, Whiteson & Oliehoek, 2015) with an additive stop.

    Queries the corner weight with the largest optimistic improvement until every corner is
    within ``delta`` (``eps = 0``) and keeps every policy found (no pruning): the MORL
    literature's ε-CCS.  It runs on the engine of :func:`palmopt.adaptive`, whose optimistic
    LP also uses the reward box ``[0, 1]^d``; ``bench/bench_portfolios.py`` compares it with
    morl-baselines' own ``LinearSupport``.
    """
    from .adaptive import adaptive

    p = adaptive(oracle, 0.0, delta, prune="none", progress=kwargs.pop("progress", False), **kwargs)
    return Portfolio(
        values=p.values,
        weights=p.weights,
        policies=p.policies,
        n_oracle_calls=p.n_oracle_calls,
        eps=0.0,
        delta=p.delta,
        method="ols",
        status=p.status,
        certificate=p.certificate,
        info=p.info,
    )
