"""Each Numba kernel equals its NumPy twin in palmopt._reference."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import palmopt
from palmopt import _kernels, _reference
from palmopt.bounds import _edges

from .strategies import simplex_points


def _idx(rows, d):
    return np.empty((rows, d), dtype=np.int64)


@given(d=st.integers(1, 4), eps=st.floats(0.2, 0.6), delta=st.floats(0.2, 0.9))
def test_palm_net_walk(d, eps, delta):
    edges = _edges(d, eps, delta)
    n = _reference.palm_net_walk(edges, d, _idx(0, d))
    assert _kernels.palm_net_walk(edges, d, _idx(0, d)) == n
    a, b = _idx(n, d), _idx(n, d)
    _kernels.palm_net_walk(edges, d, a)
    _reference.palm_net_walk(edges, d, b)
    np.testing.assert_array_equal(a, b)
    short = _idx(max(n - 1, 0), d)  # a short buffer is filled, never overrun
    assert _kernels.palm_net_walk(edges, d, short) == n


@given(
    # dyadic values, as the PALM levels are: every partial sum is exact, in any order
    B=hnp.arrays(np.float64, st.integers(1, 7), elements=st.sampled_from([0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 1.0])),
    j=st.integers(0, 6),
    c=st.sampled_from([0.0, 0.5, 1.0, 1.375]),
)
def test_count_tuples_at_most(B, j, c):
    B = np.sort(B)
    assert _kernels.count_tuples_at_most(B, j, c) == _reference.count_tuples_at_most(B, j, c)


@given(d=st.integers(1, 4), N=st.integers(1, 7))
def test_lattice_walk(d, N):
    n = _reference.lattice_walk(d, N, _idx(0, d))
    a, b = _idx(n, d), _idx(n, d)
    assert _kernels.lattice_walk(d, N, a) == n
    _reference.lattice_walk(d, N, b)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["palm", "additive"])
@given(d=st.integers(2, 4), tol=st.floats(0.1, 0.5), data=st.data())
def test_locate(kind, d, tol, data):
    net = palmopt.cover(d, tol, tol / 2, kind=kind)
    W = np.ascontiguousarray(data.draw(simplex_points(d, 1, 30)))
    W = W / W.sum(axis=1, keepdims=True)
    if kind == "palm":
        got = _kernels.locate_palm(W, net._grid, net._codes)
        want = _reference.locate_palm(W, net._grid, net._codes)
    else:
        got = _kernels.locate_lattice(W, net._grid, net._codes)
        want = _reference.locate_lattice(W, net._grid, net._codes)
    np.testing.assert_array_equal(got, want)
    assert np.all(got >= 0)


@given(
    d=st.integers(1, 5),
    k=st.integers(1, 40),
    data=st.data(),
)
def test_best_value(d, k, data):
    W = np.ascontiguousarray(data.draw(simplex_points(d, 1, 50)))
    V = data.draw(hnp.arrays(np.float64, (k, d), elements=st.floats(0, 1)))
    if data.draw(st.booleans()):
        V = np.round(V, 1)  # ties between members
    VT = np.ascontiguousarray(V.T)
    best, arg = _kernels.best_value(W, VT)
    best_ref, arg_ref = _reference.best_value(W, VT)
    np.testing.assert_allclose(best, best_ref, rtol=0, atol=1e-12)
    # the chosen member attains the maximum; exact ties go to the lowest index in both
    np.testing.assert_allclose((W * V[arg]).sum(axis=1), best_ref, rtol=0, atol=1e-12)
    exact = np.abs(np.sort(W @ V.T, axis=1)[:, -1] - np.sort(W @ V.T, axis=1)[:, -2 if k > 1 else -1]) > 1e-9
    if k > 1:
        np.testing.assert_array_equal(arg[exact], arg_ref[exact])
