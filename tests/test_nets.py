import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import palmopt
from palmopt import bounds, lattice
from palmopt.nets import random, uniform

from .strategies import policy_values, simplex_points, tolerances

REFERENCE_SIZES = [((2, 0.05, 0.05), 145), ((3, 0.05, 0.05), 17776), ((3, 0.02, 0.01), 228793), ((4, 0.1, 0.1), 132959)]


def worst_served_value(net, V, W):
    """For each w, the worst value w·V[j] over the policies j optimal at the covering net point."""
    G = net.points[net.locate(W)]
    at_net = G @ V.T
    optimal = at_net >= at_net.max(axis=1, keepdims=True) - 1e-12  # any maximiser may be returned
    return np.where(optimal, W @ V.T, np.inf).min(axis=1)


def buildable(d):
    """Tolerances whose nets are small enough to build in a test (a few 10^5 points)."""
    return st.floats({2: 0.02, 3: 0.02, 4: 0.06, 5: 0.15}[d], 0.5)


@given(d=st.integers(2, 5), data=st.data())
def test_palm_guarantee(d, data):
    eps, delta = data.draw(buildable(d)), data.draw(buildable(d))
    net = palmopt.cover(d, eps, delta)
    V = data.draw(policy_values(d))
    W = data.draw(simplex_points(d))
    opt = (W @ V.T).max(axis=1)
    assert np.all(worst_served_value(net, V, W) >= (1 - eps) * opt - delta - 1e-12)


@given(d=st.integers(2, 5), delta=tolerances, data=st.data())
def test_additive_guarantee(d, delta, data):
    net = palmopt.cover(d, 0.5, delta, kind="additive")
    assert net.eps == 0.0 and net.delta == delta
    V = data.draw(policy_values(d))
    W = data.draw(simplex_points(d))
    opt = (W @ V.T).max(axis=1)
    assert np.all(worst_served_value(net, V, W) >= opt - delta - 1e-12)
    # the L1 move is the quantity the proof bounds
    assert np.abs(net.points[net.locate(W)] - W).sum(axis=1).max() <= delta + 1e-12


@given(d=st.integers(2, 5), data=st.data())
def test_palm_rounding_is_the_lemma_rounding(d, data):
    """The located cell's lower corner is w rounded down to the levels (DESIGN.md §2)."""
    eps, delta = data.draw(buildable(d)), data.draw(buildable(d))
    net = palmopt.cover(d, eps, delta)
    W = data.draw(simplex_points(d))
    L = net.lower[net.locate(W)]
    tau, q = delta / d, 1 + eps / (1 - eps)
    first = bounds.levels(d, eps, delta)[1]
    assert tau - 2.0**-52 <= first <= tau  # tau rounded down to the dyadic grid
    small = W < first
    assert np.all(L[small] == 0)
    assert np.all((L[~small] <= W[~small]) & (W[~small] < L[~small] * q))


@pytest.mark.parametrize("args,size", REFERENCE_SIZES)
def test_reference_sizes(args, size):
    assert bounds.net_size(*args) == size
    assert len(palmopt.cover(*args)) == size


@pytest.mark.parametrize("d", [1, 2, 3, 4])
@pytest.mark.parametrize("eps,delta", [(0.5, 0.5), (0.3, 0.3), (0.1, 0.2), (0.05, 0.1), (0.2, 0.02)])
def test_every_point_is_reached(d, eps, delta):
    """Minimality: each net point's cell meets the simplex; the witness locates back to it."""
    net = palmopt.cover(d, eps, delta)
    levels = bounds.levels(d, eps, delta)
    edges = np.concatenate((levels, [levels[-1] * (1 + eps / (1 - eps))]))
    lo = net.lower
    hi = edges[np.searchsorted(edges, lo, side="right")]
    t = (1.0 - lo.sum(axis=1)) / (hi.sum(axis=1) - lo.sum(axis=1))
    assert np.all((0 <= t) & (t < 1))
    witness = lo + t[:, None] * (hi - lo)  # in the half-open box, on the simplex
    np.testing.assert_array_equal(net.locate(witness), np.arange(len(net)))


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("eps,delta", [(0.5, 0.5), (0.5, 0.25), (0.4, 0.4), (0.25, 0.1), (0.1, 0.3), (0.15, 0.15), (0.07, 0.5)])
def test_count_equals_enumeration(d, eps, delta):
    net = palmopt.cover(d, eps, delta, max_points=2_000_000)
    assert len(net) == bounds.net_size(d, eps, delta) <= net.bound
    assert len(np.unique(net.lower, axis=0)) == len(net)
    assert np.allclose(net.points.sum(axis=1), 1.0) and net.points.min() >= 0


@pytest.mark.parametrize("d,delta", [(2, 0.1), (3, 0.1), (4, 0.2), (5, 0.3)])
def test_additive_net_is_the_lattice(d, delta):
    net = palmopt.cover(d, 0.1, delta, kind="additive")
    N = lattice.resolution(d, delta)
    assert len(net) == math.comb(N + d - 1, d - 1) == bounds.net_size(d, 0.1, delta, kind="additive")
    assert np.allclose(net.points * N, np.round(net.points * N))
    np.testing.assert_array_equal(net.locate(net.points), np.arange(len(net)))


def test_net_is_immutable_and_has_a_repr():
    net = palmopt.cover(3, 0.05)
    assert repr(net) == f"Net(kind='palm', d=3, eps=0.05, delta=0.05, n=17776, bound={net.bound})"
    with pytest.raises(ValueError):
        net.points[0, 0] = 1.0
    with pytest.raises(AttributeError):
        net.eps = 0.1


def test_refuses_large_nets_with_size_and_memory():
    with pytest.raises(ValueError, match=r"17,776 points.*max_points=1000.*GiB"):
        palmopt.cover(3, 0.05, max_points=1000)
    with pytest.raises(ValueError, match="max_points"):
        palmopt.cover(6, 0.01)


def test_net_size_is_instant_for_huge_nets():
    assert bounds.net_size(6, 0.01) > 10**14


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: palmopt.cover(0, 0.1), ValueError, "`d` must be >= 1"),
        (lambda: palmopt.cover(2.5, 0.1), TypeError, "`d` must be an integer"),
        (lambda: palmopt.cover(True, 0.1), TypeError, "`d` must be an integer"),
        (lambda: palmopt.cover(3, 0.0), ValueError, r"`eps` must be in \(0, 1\); got 0.0"),
        (lambda: palmopt.cover(3, 1.5), ValueError, r"`eps` must be in \(0, 1\); got 1.5"),
        (lambda: palmopt.cover(3, float("nan")), ValueError, "`eps` must be in"),
        (lambda: palmopt.cover(3, 0.1, -0.1), ValueError, "`delta` must be in"),
        (lambda: palmopt.cover(3, "0.1"), TypeError, "`eps` must be a real number"),
        (lambda: palmopt.cover(3, 0.1, kind="grid"), ValueError, "`kind` must be one of"),
        (lambda: palmopt.cover(3, 0.1).locate([[0.5, 0.5]]), ValueError, "`W` must have 3 columns"),
        (lambda: palmopt.cover(3, 0.1).locate([[0.5, 0.6, 0.1]]), ValueError, "simplex"),
        (lambda: palmopt.cover(3, 0.1).locate([[-0.5, 1.0, 0.5]]), ValueError, "simplex"),
        (lambda: palmopt.cover(3, 0.1).locate([[np.nan, 0.5, 0.5]]), ValueError, "`W` must be finite"),
        (lambda: palmopt.cover(3, 0.1).locate(np.ones((2, 2, 3))), ValueError, "shape"),
        (lambda: uniform(3, 0), ValueError, "`n` must be >= 1"),
        (lambda: random(3, 2, rng="seed"), TypeError, "`rng`"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("d,n", [(2, 5), (3, 10), (3, 7), (4, 12), (5, 3), (3, 1)])
def test_uniform_weights(d, n):
    W = uniform(d, n)
    assert W.shape == (n, d)
    assert np.allclose(W.sum(axis=1), 1) and W.min() >= 0
    assert len(np.unique(W.round(12), axis=0)) == n
    if n >= d and n > 1:  # the vertices come first: the extreme preferences are served
        assert np.allclose(np.sort(W.max(axis=1))[-d:], 1.0)


def test_uniform_spreads_better_than_random():
    def coverage_radius(W, probe):
        return np.linalg.norm(probe[:, None, :] - W[None], axis=2).min(axis=1).max()

    probe = palmopt.cover(3, 0.1, 0.05, kind="additive").points
    assert coverage_radius(uniform(3, 15), probe) < coverage_radius(random(3, 15, rng=0), probe)


def test_random_weights_are_seeded_dirichlet():
    W = random(4, 2000, rng=1)
    assert np.allclose(W.sum(axis=1), 1) and W.min() >= 0
    np.testing.assert_array_equal(W, random(4, 2000, rng=np.random.default_rng(1)))
    assert np.allclose(W.mean(axis=0), 0.25, atol=0.02)
