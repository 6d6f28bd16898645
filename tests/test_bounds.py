import math

import numpy as np
import pytest

import palmopt
from palmopt import bounds, lattice


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("eps,delta", [(0.5, 0.5), (0.2, 0.05), (0.05, 0.2), (0.1, 0.1)])
def test_upper_bound_dominates_count(d, eps, delta):
    assert bounds.net_size(d, eps, delta) <= bounds.upper_bound(d, eps, delta)
    K = len(bounds.levels(d, eps, delta)) - 2
    assert bounds.upper_bound(d, eps, delta) <= (K + 2) ** d  # DESIGN.md's bound


@pytest.mark.parametrize("eps,delta", [(0.05, 0.05), (0.3, 0.01), (0.01, 0.3)])
def test_upper_bound_is_exact_in_two_dimensions(eps, delta):
    assert bounds.upper_bound(2, eps, delta) == bounds.net_size(2, eps, delta)


def test_levels_follow_the_construction():
    L = bounds.levels(3, 0.1, 0.09)
    tau, q = 0.03, 1 + 0.1 / 0.9
    assert L[0] == 0 and np.isclose(L[1], tau) and L[1] <= tau
    assert np.all(L[2:] <= L[1:-1] * q) and np.allclose(L[2:] / L[1:-1], q)
    assert L[-1] <= 1 < L[-1] * q * (1 + 1e-12)


@pytest.mark.parametrize("eps", [0.01, 0.05, 0.2])
def test_lower_bound_closed_form_in_two_dimensions(eps):
    # d = 2: k >= pi / (4 theta), cos theta = 1 - eps - delta sqrt(2)
    delta = 0.001
    theta = math.acos(1 - eps - delta * math.sqrt(2))
    assert bounds.lower_bound(2, eps, delta) == math.ceil(math.pi / (4 * theta) - 1e-9)


def test_lower_bound_on_the_arc_is_met_by_a_cover():
    """d = 2: members evenly spaced on the arc at angular pitch 2*theta form a cover whose
    size is the bound (rounded up), so the bound is attained up to the ceiling."""
    eps = 0.05
    theta = math.acos(1 - eps)
    k = bounds.lower_bound(2, eps, 1e-12)
    angles = (np.arange(k) + 0.5) * (math.pi / 2) / k
    U = np.c_[np.cos(angles), np.sin(angles)]
    w = np.linspace(0, 1, 20001)
    W = np.c_[w, 1 - w]
    served = (W @ U.T).max(axis=1) >= (1 - eps) * np.linalg.norm(W, axis=1) - 1e-12
    assert served.all()
    # and k - 1 equally spaced members do not suffice
    angles = (np.arange(k - 1) + 0.5) * (math.pi / 2) / (k - 1)
    U = np.c_[np.cos(angles), np.sin(angles)]
    assert not ((W @ U.T).max(axis=1) >= (1 - eps) * np.linalg.norm(W, axis=1)).all()
    assert theta > 0


def test_lower_bound_grows_as_tolerances_shrink():
    values = [bounds.lower_bound(3, e, e / 10) for e in (0.2, 0.1, 0.05, 0.02)]
    assert values == sorted(values) and values[-1] > values[0]
    assert bounds.lower_bound(3, 0.9, 0.5) == 1


def test_sphere_front_lies_on_the_orthant_sphere():
    V = bounds.sphere_front(3, 6)
    assert V.shape == (28, 3)
    assert np.allclose(np.linalg.norm(V, axis=1), 1) and V.min() >= 0 and V.max() <= 1


def test_lattice_resolution_is_the_smallest_grid_with_radius_delta():
    for d in range(2, 9):
        r = d // 2
        for delta in (0.3, 0.1, 0.05, 0.013):
            N = lattice.resolution(d, delta)
            assert 2 * r * (d - r) / (d * N) <= delta + 1e-15
            assert N == 1 or 2 * r * (d - r) / (d * (N - 1)) > delta


@pytest.mark.parametrize("d", [2, 3, 4, 5])
def test_lattice_covering_radius_is_attained(d):
    """The worst case of largest-remainder rounding (r = floor(d/2) coordinates rounded up,
    all fractional parts r/d) moves w by exactly 2 r (d - r) / (d N) in L1."""
    N = 2 * d  # grid points k/N; choose w = (k + r/d) / N with sum 1
    r = d // 2
    k = np.full(d, 1)
    k[0] += N - d - r  # sum k = N - r, so sum (k + r/d) = N
    w = (k + r / d) / N
    net = palmopt.cover(d, 0.5, 2 * r * (d - r) / (d * N), kind="additive")
    assert lattice.resolution(d, net.delta) == N
    moved = np.abs(net.points[net.locate(w)] - w).sum()
    assert moved == pytest.approx(2 * r * (d - r) / (d * N), rel=1e-12)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: bounds.net_size(3, 0.1, kind="other"), "`kind` must be"),
        (lambda: bounds.net_size(12, 0.001), "use palmopt.bounds.upper_bound"),
        (lambda: bounds.upper_bound(-1, 0.1), "`d` must be >= 1"),
        (lambda: bounds.lower_bound(3, 1.0), "`eps` must be in"),
        (lambda: bounds.sphere_front(3, 0), "`resolution` must be >= 1"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
