"""Hypothesis strategies for small tabular MOMDPs (brute-forceable: A**S <= 81).

Every array is drawn from primitives (lists of numbers), never from a NumPy generator
seeded by a drawn integer, so a failing MDP shrinks to a small, readable one.
"""

import numpy as np
from hypothesis import strategies as st

from oracles.tabular import TabularMOMDP

unit = st.floats(0.0, 1.0, allow_subnormal=False)


@st.composite
def arrays(draw, shape, elements):
    """An array of the given shape, its entries drawn one by one from ``elements``."""
    n = int(np.prod(shape))
    return np.array(draw(st.lists(elements, min_size=n, max_size=n)), dtype=float).reshape(shape)


@st.composite
def distributions(draw, shape, kind):
    """Rows (last axis) on the probability simplex: dense, sparse or one-hot."""
    n = shape[-1]
    if kind == "deterministic":
        targets = draw(arrays(shape[:-1], st.integers(0, n - 1))).astype(np.int64)
        return np.eye(n)[targets]
    elements = st.one_of(st.just(0.0), unit) if kind == "sparse" else st.floats(0.05, 1.0)
    X = draw(arrays(shape, elements))
    X[..., 0] += 1e-3  # keep every row non-empty
    return X / X.sum(axis=-1, keepdims=True)


@st.composite
def momdp_arrays(draw, max_states=4, max_actions=3, d_min=2, d_max=4, ties=True):
    """``(P, R, gamma, mu)`` of a small MOMDP with rewards in [0, 1].

    Transitions are dense, sparse or deterministic; rewards are drawn freely or (with ``ties``,
    sometimes) on the coarse grid {0, 0.5, 1} so that actions tie; without ``ties`` distinct
    irrational offsets are blended in, so that no two policies tie; ``mu`` is spread or a single state;
    ``gamma`` includes 0 and values close to 1.
    """
    S = draw(st.integers(1, max_states))
    A = draw(st.integers(1, max_actions))
    d = draw(st.integers(d_min, d_max))
    gamma = draw(st.sampled_from([0.0, 0.5, 0.9, 0.99]) | st.floats(0.0, 0.95))
    P = draw(distributions((S, A, S), draw(st.sampled_from(["dense", "sparse", "deterministic"]))))
    if ties and draw(st.booleans()):
        R = draw(arrays((S, A, d), st.sampled_from([0.0, 0.5, 1.0])))  # many exact ties
    else:
        R = draw(arrays((S, A, d), unit))
        R = np.where(R < 1e-9, 0.0, R)  # no sub-nanoscale rewards (an LP cannot resolve them)
    if not ties:  # generic rewards: blend in distinct irrational offsets (a Weyl sequence)
        R = 0.5 * R + 0.5 * np.modf(np.arange(1, R.size + 1) * 0.6180339887498949)[0].reshape(R.shape)
    mu = draw(distributions((S,), draw(st.sampled_from(["deterministic", "dense"]))))
    return P, R, gamma, mu


@st.composite
def momdps(draw, **kwargs):
    """A :class:`TabularMOMDP` built from :func:`momdp_arrays`."""
    P, R, gamma, mu = draw(momdp_arrays(**kwargs))
    return TabularMOMDP(P, R, gamma, mu)
