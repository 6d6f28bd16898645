"""Hypothesis strategies for small tabular MOMDPs (brute-forceable: A**S <= 81)."""

import numpy as np
from hypothesis import strategies as st

from oracles.tabular import TabularMOMDP


@st.composite
def momdp_arrays(draw, max_states=4, max_actions=3, d_min=2, d_max=4, ties=True):
    """``(P, R, gamma, mu)`` of a small MOMDP with rewards in [0, 1].

    Transitions are dense, sparse or deterministic; rewards are generic or (with ``ties``)
    snapped to a coarse grid so that actions tie; ``mu`` is spread or a single state; ``gamma``
    includes 0 and values close to 1.
    """
    S = draw(st.integers(1, max_states))
    A = draw(st.integers(1, max_actions))
    d = draw(st.integers(d_min, d_max))
    gamma = draw(st.sampled_from([0.0, 0.5, 0.9, 0.99]) | st.floats(0.0, 0.95))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["dense", "sparse", "deterministic"]))
    if kind == "dense":
        P = rng.dirichlet(np.ones(S), size=(S, A))
    elif kind == "sparse":
        P = rng.dirichlet(np.full(S, 0.2), size=(S, A))
        P = np.where(P < 0.05, 0.0, P)
        P[..., 0] += 1e-3  # keep every row non-empty
        P /= P.sum(axis=2, keepdims=True)
    else:
        P = np.eye(S)[rng.integers(0, S, size=(S, A))]
    R = rng.random((S, A, d))
    if ties and draw(st.booleans()):
        R = np.round(R * 2) / 2  # values in {0, 0.5, 1}: many exact ties
    mu = np.eye(S)[rng.integers(S)] if draw(st.booleans()) else rng.dirichlet(np.ones(S))
    return P, R, gamma, mu


@st.composite
def momdps(draw, **kwargs):
    """A :class:`TabularMOMDP` built from :func:`momdp_arrays`."""
    P, R, gamma, mu = draw(momdp_arrays(**kwargs))
    return TabularMOMDP(P, R, gamma, mu)
