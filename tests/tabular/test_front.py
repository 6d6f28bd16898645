"""TabularMOMDP.reference_front: the exact convex coverage set by enumeration."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial import ConvexHull

from oracles.tabular import TabularMOMDP
from oracles.tabular.instances import random_momdp

from ..strategies_tabular import momdp_arrays, momdps
from .twins import TOL, brute_force_values, full_lp_margin, one_state, weights_for


@given(mdp=momdps(), data=st.data())
def test_reference_front_is_exactly_the_supported_set(mdp, data):
    front, W = mdp.reference_front(return_weights=True)
    _, V = brute_force_values(mdp)
    assert front.ndim == 2 and front.shape[1] == mdp.d and len(front) >= 1
    assert np.array_equal(front, front[np.lexsort(front.T[::-1])])  # sorted lexicographically
    # every point is achievable, and optimal at its witness weight (brute force and oracle)
    assert np.abs(front[:, None, :] - V[None, :, :]).max(axis=2).min(axis=1).max() <= 1e-9
    assert np.allclose(W.sum(axis=1), 1) and W.min() >= 0
    assert np.all((front * W).sum(axis=1) >= (V @ W.T).max(axis=0) - TOL)
    assert np.all([w @ v >= w @ mdp(w).values - TOL for v, w in zip(front, W)])
    # the front serves every weight optimally, and contains what the oracle returns
    Ws = np.vstack([np.eye(mdp.d), data.draw(weights_for(mdp.d))])
    assert np.all((front @ Ws.T).max(axis=0) >= (V @ Ws.T).max(axis=0) - TOL)
    for w in Ws:
        assert (front @ w).max() >= w @ mdp(w).values - TOL


@given(arrays=momdp_arrays(ties=False))
def test_reference_front_matches_one_full_lp_per_point(arrays):
    mdp = TabularMOMDP(*arrays)
    front = mdp.reference_front()
    _, V = brute_force_values(mdp)
    _, first = np.unique(np.round(V, 10), axis=0, return_index=True)
    V = V[np.sort(first)]
    for i, v in enumerate(V):
        m = full_lp_margin(v, np.delete(V, i, axis=0))
        listed = np.abs(front - v).max(axis=1).min() <= 1e-10
        if m >= 1e-9:
            assert listed, (v, m)
        elif m < -1e-9:
            assert not listed, (v, m)


def test_unsupported_hull_vertex_is_excluded():
    pts = np.array([[1.0, 0.0], [0.0, 1.0], [0.1, 0.1]])
    assert 2 in ConvexHull(pts).vertices  # a hull vertex ...
    front = one_state(pts).reference_front()  # ... that no w >= 0 prefers
    assert front.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    pts3 = np.vstack([np.eye(3), [0.3, 0.3, 0.3]])  # the same in 3-D (sum 0.9 < 1)
    assert 3 in ConvexHull(pts3).vertices
    assert len(one_state(pts3).reference_front()) == 3


def test_reference_front_keeps_ties_and_drops_strictly_dominated():
    front = one_state([[1.0, 0.0], [1.0, 0.5], [0.0, 1.0], [0.4, 0.4], [0.5, 0.75]]).reference_front()
    # (1, 0) ties with (1, 0.5) at w = (1, 0): it is a maximiser there; (0.4, 0.4) is dominated;
    # (0.5, 0.75) lies on the segment from (1, 0.5) to (0, 1): a maximiser at its normal.
    assert front.tolist() == [[0.0, 1.0], [0.5, 0.75], [1.0, 0.0], [1.0, 0.5]]


def test_reference_front_merges_duplicates():
    front = one_state([[0.2, 0.8], [0.2, 0.8 + 1e-13], [0.9, 0.1], [0.2, 0.8]]).reference_front()
    assert len(front) == 2


def test_reference_front_on_a_random_mdp_against_dense_weights():
    mdp = random_momdp(4, 3, 2, rng=3)
    front = mdp.reference_front()
    _, V = brute_force_values(mdp)
    t = np.linspace(0, 1, 2001)
    W = np.column_stack([t, 1 - t])
    best = (V @ W.T).max(axis=0)
    assert np.all((front @ W.T).max(axis=0) >= best - TOL)
    winners = np.unique(np.argmax(front @ W.T, axis=0))
    assert len(winners) >= len(front) - 1  # in 2-D nearly every supported point wins on a fine grid


def test_reference_front_refuses_large_instances():
    P = np.zeros((21, 2, 21))
    P[:, :, 0] = 1.0
    mdp = TabularMOMDP(P, np.zeros((21, 2, 2)), 0.5, np.eye(21)[0])
    with pytest.raises(ValueError, match=r"A\*\*S.*1,000,000"):
        mdp.reference_front()
