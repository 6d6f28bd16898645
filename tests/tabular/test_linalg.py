"""The dense and sparse solvers of policy evaluation, and the enumeration of all policies."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oracles.tabular import TabularMOMDP
from oracles.tabular.instances import random_momdp
from oracles.tabular.linalg import deterministic_values

from ..strategies_tabular import momdp_arrays, momdps
from .twins import brute_force_values, valid_arrays, weights_for


@given(arrays=momdp_arrays(ties=False), data=st.data())
def test_sparse_and_dense_solvers_agree(arrays, data):
    dense, sparse = TabularMOMDP(*arrays, method="dense"), TabularMOMDP(*arrays, method="sparse")
    assert (dense.method, sparse.method) == ("dense", "sparse")
    assert dense.fingerprint() == sparse.fingerprint()
    for w in data.draw(weights_for(dense.d)):
        a, b = dense(w), sparse(w)
        assert abs(w @ a.values - w @ b.values) <= 1e-12
        if np.array_equal(a.policy, b.policy):
            assert np.allclose(a.values, b.values, atol=1e-12)
        assert np.allclose(sparse.value_function(a.policy), dense.value_function(a.policy), atol=1e-10)


def test_method_auto_and_bad_method():
    assert random_momdp(600, 2, 2, rng=0).method == "sparse"
    assert random_momdp(50, 2, 2, rng=0).method == "dense"
    big = random_momdp(600, 3, 3, rng=1)
    dense = TabularMOMDP(big.P, big.R, big.gamma, big.mu, method="dense")
    for w in np.random.default_rng(0).dirichlet(np.ones(3), size=3):
        a, b = big(w), dense(w)
        assert np.array_equal(a.policy, b.policy) and np.allclose(a.values, b.values, atol=1e-12)
    with pytest.raises(ValueError, match="`method`"):
        TabularMOMDP(*valid_arrays(), method="iterative")


@given(mdp=momdps())
def test_deterministic_values_match_brute_force_in_order(mdp):
    policies, V = brute_force_values(mdp)  # itertools.product: the last state varies fastest
    got = deterministic_values(mdp.P, mdp.R, mdp.mu, mdp.gamma)
    assert got.shape == V.shape
    order = np.ravel_multi_index(policies[:, ::-1].T, (mdp.n_actions,) * mdp.n_states)
    assert np.allclose(got[order], V, atol=1e-10)
