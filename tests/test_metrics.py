import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import palmopt
from palmopt import Portfolio
from palmopt.metrics import (
    Spread,
    expected_utility,
    hypervolume,
    max_utility_loss,
    spread,
    summary,
    usage_perplexity,
)

from .strategies import policy_values, simplex_points


def utilities(W, V):
    """``W @ V.T`` summed coordinate by coordinate in index order, as the best-value kernel does
    (so exact ties are broken the same way, lowest index first)."""
    S = np.zeros((W.shape[0], V.shape[0]))
    for t in range(W.shape[1]):
        S += W[:, t, None] * V[None, :, t]
    return S


# -- EUM, MUL --------------------------------------------------------------------------


@given(d=st.integers(1, 4), data=st.data())
def test_expected_utility_is_the_mean_of_the_best_utility(d, data):
    V = data.draw(policy_values(d, 1, 10))
    W = data.draw(simplex_points(d, 1, 20))
    expected = np.mean([max(float(w @ v) for v in V) for w in W])
    assert expected_utility(V, W) == pytest.approx(expected, abs=1e-12)


@given(d=st.integers(2, 4), data=st.data())
def test_max_utility_loss_is_the_largest_sampled_gap(d, data):
    T = data.draw(policy_values(d, 1, 10))
    U = T[: data.draw(st.integers(1, len(T)))]
    W = data.draw(simplex_points(d, 1, 20))
    expected = max(max(float(w @ t) for t in T) - max(float(w @ u) for u in U) for w in W)
    assert max_utility_loss(U, T, W) == pytest.approx(expected, abs=1e-12)
    assert max_utility_loss(U, T, W) >= -1e-12  # the portfolio lies inside the reference


@settings(max_examples=25)
@given(d=st.integers(2, 3), data=st.data())
def test_exact_gaps_bound_the_sampled_loss(d, data):
    T = data.draw(policy_values(d, 2, 8))
    U = T[: data.draw(st.integers(1, len(T)))]
    g = palmopt.certify(U, T, 0.0, 0.0)
    assert g.status == "success"
    # the witnesses attain the gaps
    w = g.delta_weight
    assert (T @ w).max() - (U @ w).max() == pytest.approx(g.delta_star, abs=1e-9)
    if g.eps_weight is not None:
        w = g.eps_weight
        assert 1 - (U @ w).max() / (T @ w).max() == pytest.approx(g.eps_star, abs=1e-9)
    # a sample never exceeds the exact worst case over the simplex
    W = palmopt.cover(d, 0.05, kind="additive").points
    assert max_utility_loss(U, T, W) <= g.delta_star + 1e-9


def test_gaps_of_the_corners():
    T = np.array([[1.0, 0.0], [0.8, 0.8], [0.0, 1.0]])
    g = palmopt.certify(Portfolio(values=T[[0, 2]], weights=[[1, 0], [0, 1]]), T)
    assert g.eps_star == pytest.approx(1 - 0.5 / 0.8)
    assert g.delta_star == pytest.approx(0.3)
    np.testing.assert_allclose(g.delta_weight, [0.5, 0.5], atol=1e-9)
    assert "eps_star=0.375" in repr(g)


# -- hypervolume ------------------------------------------------------------------------


def hv_2d(V, r):
    """Union of the boxes [r, v] in 2-D: sweep the points by decreasing first coordinate."""
    V = V[(V > r).all(axis=1)]
    total, top = 0.0, r[1]
    for x, y in sorted(map(tuple, V), reverse=True):
        if y > top:
            total += (x - r[0]) * (y - top)
            top = y
    return total


def hv_inclusion_exclusion(V, r):
    """Lebesgue measure of the union of the boxes [r, v], by inclusion-exclusion (exact)."""
    total = 0.0
    for size in range(1, len(V) + 1):
        for S in itertools.combinations(range(len(V)), size):
            side = np.clip(V[list(S)].min(axis=0) - r, 0.0, None)
            total += (-1) ** (size + 1) * float(np.prod(side))
    return total


@given(data=st.data())
def test_hypervolume_2d_matches_the_sweep(data):
    V = data.draw(policy_values(2, 1, 12))
    r = np.array(data.draw(st.lists(st.floats(0.0, 0.5), min_size=2, max_size=2)))
    assert hypervolume(V) == pytest.approx(hv_2d(V, np.zeros(2)), abs=1e-12)
    assert hypervolume(V, ref_point=r) == pytest.approx(hv_2d(V, r), abs=1e-12)


@given(d=st.integers(1, 4), data=st.data())
def test_hypervolume_matches_inclusion_exclusion(d, data):
    V = data.draw(policy_values(d, 1, 7))
    r = np.array(data.draw(st.lists(st.floats(0.0, 0.3), min_size=d, max_size=d)))
    assert hypervolume(V) == pytest.approx(hv_inclusion_exclusion(V, np.zeros(d)), abs=1e-12)
    assert hypervolume(V, r) == pytest.approx(hv_inclusion_exclusion(V, r), abs=1e-12)


def test_hypervolume_3d_small_cases():
    assert hypervolume(np.ones((1, 3))) == pytest.approx(1.0)
    # two boxes overlapping in [0, .5]^3: 0.5 + 0.5 - 0.125
    V = np.array([[1.0, 1.0, 0.5], [0.5, 1.0, 1.0]])
    assert hypervolume(V) == pytest.approx(0.75)
    assert hypervolume(V, ref_point=[0.5, 0.5, 0.5]) == pytest.approx(0.0)


# -- usage perplexity --------------------------------------------------------------------


@given(d=st.integers(1, 4), data=st.data())
def test_usage_perplexity_counts_the_routing(d, data):
    V = data.draw(policy_values(d, 1, 8))
    W = data.draw(simplex_points(d, 1, 30))
    served = np.argmax(utilities(W, V), axis=1)  # first maximiser, as Portfolio.route
    counts = np.array([np.sum(served == j) for j in range(len(V))])
    p = counts[counts > 0] / len(W)
    assert usage_perplexity(V, W) == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-12)
    assert 1.0 - 1e-12 <= usage_perplexity(V, W) <= np.count_nonzero(counts) + 1e-12


def test_usage_perplexity_ignores_unused_members_and_defaults_to_a_dirichlet_sample():
    U = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.1, 0.1, 0.1]])
    assert usage_perplexity(U, np.eye(3)) == pytest.approx(3.0)
    assert usage_perplexity(U, [[1, 0, 0], [0.9, 0.1, 0]]) == pytest.approx(1.0)
    # the default sample is Dirichlet(1) from rng: the same as drawing it explicitly
    W = np.random.default_rng(7).dirichlet(np.ones(3), size=500)
    assert usage_perplexity(U, rng=7, n=500) == usage_perplexity(U, W)
    assert usage_perplexity(U, rng=7, n=500) == usage_perplexity(U, rng=np.random.default_rng(7), n=500)
    # by symmetry the three corners are used about equally
    assert usage_perplexity(U, rng=0) == pytest.approx(3.0, abs=0.01)


# -- spread ------------------------------------------------------------------------------


@given(d=st.integers(1, 4), data=st.data())
def test_spread_is_the_mean_and_largest_pairwise_distance(d, data):
    V = data.draw(policy_values(d, 1, 8))
    dists = [np.sqrt(np.sum((V[i] - V[j]) ** 2)) for i in range(len(V)) for j in range(i + 1, len(V))]
    s = spread(V)
    assert isinstance(s, Spread)
    assert s.mean_distance == pytest.approx(np.mean(dists) if dists else 0.0, abs=1e-12)
    assert s.diameter == pytest.approx(max(dists, default=0.0), abs=1e-12)


# -- summary, inputs ---------------------------------------------------------------------


def test_summary_collects_every_metric():
    T = np.array([[1.0, 0.0], [0.9, 0.5], [0.5, 0.9], [0.0, 1.0]])
    p = Portfolio(values=T[[1, 2]], weights=[[0.5, 0.5], [0.5, 0.5]])
    W = palmopt.nets.random(2, 300, rng=3)
    s = summary(p, T, W)
    assert s["size"] == 2 and s["n_users"] == 300
    assert s["expected_utility"] == expected_utility(p, W)
    assert s["max_utility_loss"] == max_utility_loss(p, T, W)
    assert s["usage_perplexity"] == usage_perplexity(p, W)
    assert s["hypervolume"] == hypervolume(p)
    assert (s["mean_distance"], s["diameter"]) == (spread(p).mean_distance, spread(p).diameter)
    g = palmopt.certify(p, T, 0.0, 0.0)
    assert (s["eps_star"], s["delta_star"], s["gap_status"]) == (g.eps_star, g.delta_star, "success")
    # without a reference the reference-based metrics are left out; the default sample is seeded
    s0 = summary(T, rng=1, n=200)
    assert not {"eps_star", "delta_star", "gap_status", "max_utility_loss"} & set(s0)
    assert s0 == summary(T, rng=1, n=200) and s0["n_users"] == 200


def test_reference_can_be_an_exact_oracle():
    from oracles.tabular.instances import many_policies

    mdp = many_policies(2, n_arms=6, rng=0)
    T = mdp.reference_front()
    W = palmopt.nets.random(2, 100, rng=0)
    assert max_utility_loss(T[:2], mdp, W) == max_utility_loss(T[:2], T, W)
    assert palmopt.certify(T[:2], mdp).delta_star == palmopt.certify(T[:2], T).delta_star


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: expected_utility("abc", [[1.0, 0.0]]), TypeError, "`portfolio`"),
        (lambda: expected_utility({"a": 1}, [[1.0, 0.0]]), TypeError, "`portfolio`"),
        (lambda: expected_utility([[1.0, np.nan]], [[1.0, 0.0]]), ValueError, "`portfolio` must be finite"),
        (lambda: expected_utility(np.eye(2), [[0.7, 0.7]]), ValueError, "`W`"),
        (lambda: expected_utility(np.eye(2), [[1.0, 0.0, 0.0]]), ValueError, "`W` must have 2 columns"),
        (lambda: max_utility_loss(np.eye(2), np.eye(3), [[1.0, 0.0]]), ValueError, "`reference` must have 2 columns"),
        (lambda: hypervolume(np.eye(2), ref_point=[0.0, 0.0, 0.0]), ValueError, "`ref_point`"),
        (lambda: hypervolume(np.eye(2), ref_point=[[0.0, 0.0], [0.1, 0.1]]), ValueError, "`ref_point`"),
        (lambda: usage_perplexity(np.eye(2), n=0), ValueError, "`n`"),
        (lambda: usage_perplexity(np.eye(2), n=2.5), TypeError, "`n`"),
        (lambda: usage_perplexity(np.eye(2), rng="seed"), TypeError, "`rng`"),
        (lambda: summary(np.eye(2), W=[[2.0, -1.0]]), ValueError, "`W`"),
    ],
)
def test_bad_inputs_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
