"""palmopt.scalarizations: the stated properties, property-tested, against explicit loop twins."""

import dataclasses
import math
import pickle

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from palmopt.oracle import as_oracle, checked
from palmopt.scalarizations import Linear, PMean, Scalarization, Tchebycheff, scalarization_of

from .strategies import policy_values, simplex_points

ALL = [Linear(), Tchebycheff(), PMean(1.0), PMean(0.5), PMean(0.0), PMean(-1.0), PMean(-4.0)]
scalarizations = st.sampled_from(ALL) | st.floats(-5.0, 1.0).filter(lambda p: p == 0 or abs(p) > 1e-3).map(PMean)
TOL = 1e-9


def twin(g, w, v):
    """One value g_w(v) by the textbook formula, with explicit loops (w >= 0, any scale)."""
    S = [i for i in range(len(w)) if w[i] > 0]
    if not S:
        return 0.0
    if isinstance(g, Linear):
        return sum(w[i] * v[i] for i in S)
    if isinstance(g, Tchebycheff):
        return min(w[i] * v[i] for i in S)
    s = sum(w[i] for i in S)
    wn = {i: w[i] / s for i in S}
    if g.p == 0:
        if any(v[i] == 0 for i in S):
            return 0.0
        return s * math.exp(sum(wn[i] * math.log(v[i]) for i in S))
    if g.p < 0 and any(v[i] == 0 for i in S):
        return 0.0
    return s * sum(wn[i] * v[i] ** g.p for i in S) ** (1 / g.p)


@st.composite
def problems(draw, d_max=4):
    d = draw(st.integers(1, d_max))
    return draw(simplex_points(d)), draw(policy_values(d)), draw(scalarizations)


def close(a, b, tol=TOL):
    return np.abs(np.asarray(a) - np.asarray(b)) <= tol * (1 + np.abs(np.asarray(b)))


@given(problems())
def test_vectorised_values_equal_the_loop_twin(problem):
    W, V, g = problem
    G = g(W, V)
    assert G.shape == (len(W), len(V))
    expected = np.array([[twin(g, w, v) for v in V] for w in W])
    assert close(G, expected, 1e-9).all()


@given(problems(), st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4))
def test_monotone_in_v(problem, bump):
    W, V, g = problem
    V2 = np.minimum(V + np.resize(bump, V.shape[1]), 1.0)
    assert (g(W, V2) >= g(W, V) - TOL).all()


@given(problems(), st.floats(0.01, 100.0))
def test_positively_homogeneous_in_w_and_in_v(problem, c):
    W, V, g = problem
    assert close(g(c * W, V), c * g(W, V), 1e-9).all()
    assert close(g(W, c * V), c * g(W, V), 1e-9).all()


@given(problems(), st.data(), st.floats(0.0, 1.0))
def test_concave_in_v(problem, data, lam):
    W, V1, g = problem
    V2 = data.draw(policy_values(W.shape[1], k_min=len(V1), k_max=len(V1)))
    mix = g(W, lam * V1 + (1 - lam) * V2)
    assert (mix >= lam * g(W, V1) + (1 - lam) * g(W, V2) - 1e-9).all()


@given(problems(), st.data())
def test_monotone_in_w_on_a_fixed_support_for_linear_and_tchebycheff(problem, data):
    W, V, _ = problem
    up = np.array(data.draw(st.lists(st.floats(0.0, 2.0), min_size=W.shape[1], max_size=W.shape[1])))
    W2 = W + (W > 0) * up  # same support, larger weights
    for g in (Linear(), Tchebycheff()):
        assert (g(W2, V) >= g(W, V) - TOL).all()


@given(problems(), st.data())
def test_the_rounding_form_is_monotone_in_w_across_supports(problem, data):
    """Linear and PMean(p > 0) round h_w(v) = Σ w_i v_i^p, monotone in w even where w_i = 0."""
    W, V, g = problem
    assume(g.linearize(V) is not None)
    up = np.array(data.draw(st.lists(st.floats(0.0, 2.0), min_size=W.shape[1], max_size=W.shape[1])))
    assert (g.rounding_score(W + up, V) >= g.rounding_score(W, V) - TOL).all()
    # and has the same maximisers as g: h_w = g_w^p for w on the simplex
    assert close(g.rounding_score(W, V), g(W, V) ** (1.0 if g.linear else g.p), 1e-9).all()


def test_pmean_is_not_monotone_in_w():
    """Why PALM rounds Σ w_i v_i^p for p-means: g itself decreases when a weight grows."""
    for p in (0.5, 0.0, -1.0):
        g = PMean(p)
        low, high = g([[1.0, 0.0]], [[1.0, 0.1]])[0, 0], g([[1.0, 0.5]], [[1.0, 0.1]])[0, 0]
        assert high < low


@given(st.integers(2, 4), st.floats(0.001, 0.2), st.data())
def test_tchebycheff_boundary_a_small_supported_weight_caps_the_value(d, tau, data):
    """Min-type boundary rule: a coordinate with 0 < w_i < tau forces g_w(v) < tau on [0, 1]^d."""
    V = data.draw(policy_values(d))
    w = np.array(data.draw(simplex_points(d, n_max=1)))[0]
    w[0] = tau * data.draw(st.floats(0.001, 0.999))
    assert (Tchebycheff()(w, V) < tau).all()


def test_limits_pmean_one_is_linear_zero_is_geometric_minus_infinity_is_the_minimum():
    rng = np.random.default_rng(0)
    W, V = rng.dirichlet(np.ones(3), size=20), rng.uniform(0.05, 1.0, size=(15, 3))
    assert np.allclose(PMean(1)(W, V), Linear()(W, V), rtol=1e-12)
    assert np.allclose(PMean(1e-7)(W, V), PMean(0)(W, V), rtol=1e-5)
    assert np.allclose(PMean(-1e-7)(W, V), PMean(0)(W, V), rtol=1e-5)
    assert np.allclose(PMean(-2000)(W, V), V.min(axis=1)[None, :].repeat(20, 0), rtol=1e-2)
    assert PMean(1).linear and Linear().linear and not PMean(0.5).linear and not Tchebycheff().linear


@given(st.floats(0.05, 1.0), st.floats(0.01, 0.9), st.floats(0.0, 0.5), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_pmean_budget_turns_a_rounding_form_guarantee_into_the_target(p, eps, delta, a, u):
    """If u^p >= (1-eps_h)·a^p - delta_h with (eps_h, delta_h) = rounding_budget(eps, delta), then
    u >= (1-eps)·a - delta, for every a, u in [0, 1] (the conversion in docs/design.md §6)."""
    eps_h, delta_h = PMean(p).rounding_budget(eps, delta)
    assert 0 < eps_h <= eps + 1e-15 and delta_h == pytest.approx(p * delta)
    if u**p >= (1 - eps_h) * a**p - delta_h:
        assert u >= (1 - eps) * a - delta - 1e-12


def test_rounding_budgets_and_refusals():
    assert Linear().rounding_budget(0.1, 0.2) == (0.1, 0.2) == Tchebycheff().rounding_budget(0.1, 0.2)
    assert PMean(0.5).rounding_budget(0.19, 0.2) == pytest.approx((0.1, 0.1))
    for p in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"does not hold for PMean\(p=-?[01]\.0\).*p <= 0"):
            PMean(p).rounding_budget(0.1, 0.1)
    assert Tchebycheff().boundary == "min" and Linear().boundary == PMean(0.5).boundary == "additive"


def test_frozen_values_with_reprs_and_equality_by_parameters():
    assert [repr(g) for g in (Linear(), Tchebycheff(), PMean(0.5), PMean(-0.0))] == [
        "Linear()", "Tchebycheff()", "PMean(p=0.5)", "PMean(p=0.0)"]
    assert PMean(0.5) == PMean(0.5) and hash(PMean(0.5)) == hash(PMean(0.5)) and PMean(0) == PMean(0.0)
    assert PMean(0.5) != PMean(0.25) and Linear() != Tchebycheff() and Linear() == Linear()
    assert len({Linear(), Linear(), Tchebycheff(), PMean(1), PMean(1.0)}) == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        PMean(0.5).p = 0.1
    for g in ALL:
        assert pickle.loads(pickle.dumps(g)) == g and isinstance(g, Scalarization)


@pytest.mark.parametrize("p", [1.5, 2, float("nan"), float("inf"), -float("inf")])
def test_pmean_rejects_p_above_one_nan_and_infinity(p):
    with pytest.raises(ValueError, match="`p` of PMean"):
        PMean(p)


@pytest.mark.parametrize("p", ["0.5", None, True, [0.5]])
def test_pmean_rejects_non_numbers(p):
    with pytest.raises(TypeError, match="`p` of PMean"):
        PMean(p)


def test_bad_arrays():
    with pytest.raises(ValueError, match="same number of columns"):
        Linear()([[0.5, 0.5]], [[1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="`V` must be >= 0"):
        PMean(0.5)([[0.5, 0.5]], [[1.0, -0.1]])
    with pytest.raises(ValueError, match="`W` must be finite"):
        Tchebycheff()([[np.nan, 0.5]], [[1.0, 0.0]])
    assert Linear()([0.5, 0.5], [1.0, 0.0]).shape == (1, 1)  # 1-D rows are accepted


def test_scalarization_of_reads_the_attribute_through_the_checking_wrapper():
    oracle = as_oracle(lambda w: w, d=2, name="identity")
    assert scalarization_of(oracle) == Linear()
    oracle.scalarization = Tchebycheff()
    assert scalarization_of(checked(oracle)) == Tchebycheff()
    oracle.scalarization = "min"
    with pytest.raises(TypeError, match="Scalarization"):
        scalarization_of(oracle)
