"""The testbeds of oracles.testbeds: noise as declared, suboptimality within the declared bound."""

import pickle

import numpy as np
import pytest

import palmopt
from oracles.tabular.instances import random_momdp
from oracles.testbeds import KnownValues, NoisyOracle, SuboptimalOracle, true_values

V3 = np.array([[1.0, 0.0], [0.6, 0.6], [0.0, 1.0]])
#: 3-sigma binomial tolerance on a coverage fraction of n draws at level p
COVER_TOL = lambda p, n: 3.0 * np.sqrt(p * (1 - p) / n)  # noqa: E731


def three(name="three"):
    return palmopt.as_oracle(lambda w: V3[np.argmax(V3 @ w)], d=2, name=name)


def centre():
    """Every weight gets (0.5, 0.5): far from the range's bounds, so nothing is clipped."""
    return palmopt.as_oracle(lambda w: np.array([0.5, 0.5]), d=2, name="centre")


@pytest.fixture(scope="module")
def mdp():
    return random_momdp(5, 3, 2, rng=4)


# --------------------------------------------------------------------------- NoisyOracle


@pytest.mark.parametrize("noise", ["gaussian", "student-t"])
def test_noise_is_calibrated_sd_and_coverage(noise):
    n, sigma = 4000, 0.02
    oracle = NoisyOracle(centre(), sigma, noise=noise, df=4, seed=3)
    sols = [oracle([0.5, 0.5]) for _ in range(n)]
    X = np.array([s.values for s in sols])
    assert all(np.array_equal(s.stderr, [sigma, sigma]) for s in sols)
    err = X - 0.5
    assert np.all(np.abs(err.mean(axis=0)) < 4 * sigma / np.sqrt(n))  # unbiased
    # sd of a sample sd: sigma / sqrt(2n) Gaussian, more for heavy tails (kurtosis of t_4 is infinite)
    rtol = 0.05 if noise == "gaussian" else 0.15
    assert np.allclose(err.std(axis=0, ddof=1), sigma, rtol=rtol)
    cover = (np.abs(err) <= 1.96 * sigma).mean(axis=0)
    if noise == "gaussian":
        assert np.all(np.abs(cover - 0.95) <= COVER_TOL(0.95, n))
    else:  # unit variance with heavier tails: more mass near 0, still a valid 1.96-sd interval here
        assert np.all(cover >= 0.95 - COVER_TOL(0.95, n))


def test_evaluate_shrinks_the_stderr_as_one_over_sqrt_repeats():
    oracle = NoisyOracle(centre(), 0.04, seed=0)
    sol = oracle([0.9, 0.1])
    for k in (1, 4, 16):
        evals = [oracle.evaluate(sol.policy, repeats=k) for _ in range(1500)]
        assert np.allclose(evals[0].stderr, 0.04 / np.sqrt(k))
        X = np.array([e.values for e in evals])
        assert np.allclose(X.std(axis=0, ddof=1), 0.04 / np.sqrt(k), rtol=0.08)
        assert all(e.info["repeats"] == k and np.array_equal(e.info["true_values"], [0.5, 0.5]) for e in evals)
    # draws are fresh: two evaluations of one policy differ
    assert not np.array_equal(oracle.evaluate(sol.policy).values, oracle.evaluate(sol.policy).values)


def test_true_values_are_kept_and_policies_pass_through(mdp):
    noisy = NoisyOracle(mdp, 0.01, seed=1)
    w = np.array([0.3, 0.7])
    sol, exact = noisy(w), mdp(w)
    assert np.array_equal(sol.policy, exact.policy)
    assert np.array_equal(sol.info["true_values"], exact.values)
    assert np.array_equal(noisy.true_values(sol.policy), exact.values)
    assert np.allclose(noisy.evaluate(exact.policy).info["true_values"], exact.values)  # never returned: evaluated
    assert np.array_equal(noisy.reference_front(), mdp.reference_front())
    # a function oracle has no policies: the handle carries the true values
    pol = NoisyOracle(three(), 0.01)([0.5, 0.5]).policy
    assert isinstance(pol, KnownValues) and np.array_equal(pol.values, [0.6, 0.6])
    assert np.array_equal(true_values(None, pol), [0.6, 0.6])


def test_noise_is_reproducible_per_weight_whatever_the_order():
    a, b = NoisyOracle(three(), 0.01, seed=7), NoisyOracle(three(), 0.01, seed=7)
    w1, w2 = [0.5, 0.5], [0.2, 0.8]
    first = [a(w1).values, a(w1).values]
    b(w2), b(w2)  # calls at another weight do not shift the draws at w1
    assert np.array_equal(b(w1).values, first[0]) and np.array_equal(b(w1).values, first[1])
    assert not np.array_equal(first[0], first[1])  # the second call at w1 is a fresh draw
    c = a.with_seed(8)
    assert c.seed == 8 and c.fingerprint() != a.fingerprint()
    assert not np.array_equal(c(w1).values, first[0])


def test_estimates_are_unbiased_and_clipping_is_optional():
    exact = palmopt.as_oracle(lambda w: np.array([0.0, 1.0]), d=2, name="edge")
    raw = NoisyOracle(exact, 0.05, seed=0)
    clipped = NoisyOracle(exact, 0.05, clip=True, seed=0)  # same seed: the same draws, clipped
    assert raw.value_range == clipped.value_range == (0.0, 1.0)  # the range of the true values
    checked = palmopt.oracle.checked(raw)
    Y = np.array([checked([0.5, 0.5]).values for _ in range(2000)])  # accepted outside [0, 1] by their noise
    X = np.array([clipped([0.5, 0.5]).values for _ in range(2000)])
    assert Y.min() < 0.0 < Y.max() - 1.0 and X.min() >= 0.0 and X.max() <= 1.0
    assert np.all(np.abs(Y.mean(axis=0) - [0, 1]) < 4 * 0.05 / np.sqrt(2000))  # unclipped: unbiased
    assert np.all(np.abs(X - [0, 1]) <= np.abs(Y - [0, 1]))  # clipped: never further from the truth
    assert repr(clipped).endswith("clip=True, seed=0)") and clipped.fingerprint() != raw.fingerprint()


def test_heavy_tails_stay_within_the_checked_band():
    exact = palmopt.as_oracle(lambda w: np.array([0.0, 1.0]), d=2, name="edge")
    heavy = palmopt.oracle.checked(NoisyOracle(exact, 0.05, noise="student-t", df=2.2, seed=1))
    E = np.array([heavy([0.5, 0.5]).values for _ in range(3000)]) - [0.0, 1.0]
    assert np.abs(E).max() <= 10 * 0.05  # winsorised inside palmopt.oracle.NOISE_SDS standard errors
    assert np.abs(E).max() > 5 * 0.05  # but heavy-tailed all the same


def test_zero_noise_is_exact_with_zero_stderr(mdp):
    sol = NoisyOracle(mdp, 0.0)([0.5, 0.5])
    assert np.array_equal(sol.values, mdp([0.5, 0.5]).values) and np.array_equal(sol.stderr, [0.0, 0.0])


def test_per_coordinate_sigma_and_student_t_repr():
    o = NoisyOracle(three(), [0.01, 0.03], noise="student-t", df=6)
    assert np.array_equal(o([0.5, 0.5]).stderr, [0.01, 0.03])
    assert repr(o) == "NoisyOracle(as_oracle(three, d=2), sigma=[0.01, 0.03], noise='student-t', df=6, seed=0)"
    assert "student-t(df=6)" in o.fingerprint()


def test_declared_error_passes_through(mdp):
    assert not hasattr(NoisyOracle(mdp, 0.01), "error")
    assert NoisyOracle(SuboptimalOracle(mdp, (0.02, 0.01)), 0.01).error == (0.02, 0.01)
    assert not hasattr(NoisyOracle(SuboptimalOracle(mdp, 0.02, declare=False), 0.01), "error")


def test_noisy_oracle_pickles(mdp):
    o = NoisyOracle(SuboptimalOracle(mdp, 0.02), 0.01, seed=2)
    o([0.5, 0.5])
    back = pickle.loads(pickle.dumps(o))
    assert back.fingerprint() == o.fingerprint() and back.error == (0.02, 0.0)
    assert np.array_equal(back([0.5, 0.5]).values, o([0.5, 0.5]).values)  # the counters travel too


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"sigma": -0.1}, ValueError),
        ({"sigma": np.nan}, ValueError),
        ({"sigma": np.inf}, ValueError),
        ({"sigma": [0.1, 0.1, 0.1]}, ValueError),
        ({"sigma": "0.1"}, TypeError),
        ({"sigma": 0.1, "noise": "cauchy"}, ValueError),
        ({"sigma": 0.1, "noise": "student-t", "df": 2}, ValueError),
        ({"sigma": 0.1, "df": "5"}, TypeError),
        ({"sigma": 0.1, "seed": -1}, ValueError),
        ({"sigma": 0.1, "seed": 1.5}, TypeError),
        ({"sigma": 0.1, "clip": 1}, TypeError),
    ],
)
def test_noisy_validation(kwargs, exc):
    with pytest.raises(exc):
        NoisyOracle(three(), **kwargs)


def test_wrappers_need_an_oracle():
    with pytest.raises(TypeError, match="callable with an integer attribute `d`"):
        NoisyOracle(lambda w: w, 0.1)
    with pytest.raises(TypeError):
        SuboptimalOracle(object(), 0.1)
    with pytest.raises(ValueError):
        NoisyOracle(three(), 0.1).evaluate(KnownValues([0.5, 0.5]), repeats=0)


# --------------------------------------------------------------------------- SuboptimalOracle


@pytest.mark.parametrize("mode", ["worst", "random"])
@pytest.mark.parametrize("eta", [(0.05, 0.0), (0.0, 0.03), (0.04, 0.02)])
def test_suboptimal_values_are_true_and_within_the_declared_bound(mdp, mode, eta):
    oracle = SuboptimalOracle(mdp, eta, mode=mode, seed=1)
    W = np.random.default_rng(0).dirichlet(np.ones(2), 40)
    gaps = []
    for w in W:
        sol = oracle(w)
        opt = float(w @ mdp(w).values)
        assert np.allclose(mdp.evaluate(sol.policy), sol.values, atol=1e-12)  # a real policy, exact values
        assert np.array_equal(sol.info["true_values"], sol.values)
        assert w @ sol.values >= (1 - eta[0]) * opt - eta[1] - 1e-12
        gaps.append(opt - w @ sol.values)
    gaps = np.array(gaps)
    assert (gaps > 1e-6).mean() > 0.5  # strictly suboptimal at most weights
    if mode == "worst":  # the adversary uses most of its allowance
        allowed = np.array([eta[0] * (w @ mdp(w).values) + eta[1] for w in W])
        assert np.median(gaps / allowed) > 0.5


def test_zero_error_is_optimal_and_declaration_is_optional(mdp):
    exact = SuboptimalOracle(mdp, 0.0)
    w = np.array([0.6, 0.4])
    assert np.isclose(w @ exact(w).values, w @ mdp(w).values, atol=1e-12)
    assert SuboptimalOracle(mdp, (0.02, 0.01)).error == (0.02, 0.01)
    hidden = SuboptimalOracle(mdp, 0.02, declare=False)
    assert not hasattr(hidden, "error") and getattr(hidden, "error", None) is None
    assert hidden.fingerprint() != SuboptimalOracle(mdp, 0.02).fingerprint()


def test_random_mode_is_a_function_of_seed_and_weight(mdp):
    a, b = SuboptimalOracle(mdp, 0.1, mode="random", seed=3), SuboptimalOracle(mdp, 0.1, mode="random", seed=3)
    W = np.random.default_rng(1).dirichlet(np.ones(2), 10)
    assert all(np.array_equal(a(w).values, b(w).values) for w in W)
    c = a.with_seed(4)
    assert c.fingerprint() != a.fingerprint()
    assert any(not np.array_equal(a(w).values, c(w).values) for w in W)


class _FrontOnly:
    """An exact oracle known only through its front (no tabular arrays)."""

    d = 2

    def __call__(self, w):
        return palmopt.Solution(V3[np.argmax(V3 @ w)])

    def reference_front(self):
        return V3


def test_candidates_from_a_reference_front_or_given_values():
    o = SuboptimalOracle(_FrontOnly(), (0.5, 0.0))
    sol = o([0.5, 0.5])  # OPT 0.6, bound 0.3: the corners give 0.5 -> tie, the first row (1, 0) is the worst
    assert isinstance(sol.policy, KnownValues) and sol.info["candidate"] == 0 and sol.values.tolist() == [1.0, 0.0]
    assert o.evaluate(sol.policy).values.tolist() == sol.values.tolist()
    V = np.array([[0.95, 0.05], [0.49, 0.49]])
    given = SuboptimalOracle(three(), 0.2, values=V, policies=["a", "b"])
    sol = given([0.5, 0.5])  # OPT 0.6 (the oracle's own), bound 0.48: "b" (0.49) is the worst allowed
    assert sol.policy == "b" and sol.values.tolist() == [0.49, 0.49]
    assert given.evaluate("b").values.tolist() == [0.49, 0.49]
    with pytest.raises(ValueError, match="candidate policies"):
        SuboptimalOracle(three(), 0.1)([0.5, 0.5])


def test_certify_against_the_testbed_uses_the_true_front(mdp):
    o = NoisyOracle(SuboptimalOracle(mdp, 0.02), 0.0)
    front = mdp.reference_front()
    cert = palmopt.certify(front, o, eps=0.0, delta=0.0)
    assert cert.holds


@pytest.mark.parametrize(
    "args, kwargs, exc",
    [
        ((1.0,), {}, ValueError),
        ((-0.1,), {}, ValueError),
        (((0.1, 1.0),), {}, ValueError),
        (((0.1, 0.1, 0.1),), {}, ValueError),
        (("0.1",), {}, TypeError),
        ((0.1,), {"mode": "best"}, ValueError),
        ((0.1,), {"declare": "yes"}, TypeError),
        ((0.1,), {"values": V3, "policies": ["a"]}, ValueError),
        ((0.1,), {"policies": ["a"]}, ValueError),
        ((0.1,), {"values": [[1.0, 0.0, 0.0]]}, ValueError),
    ],
)
def test_suboptimal_validation(args, kwargs, exc):
    with pytest.raises(exc):
        SuboptimalOracle(three(), *args, **kwargs)


# --------------------------------------------------------------------------- with palmopt.adaptive

needs_noisy_core = pytest.mark.skipif(
    "confidence" not in __import__("inspect").signature(palmopt.adaptive).parameters,
    reason="palmopt.adaptive has no `confidence` yet (issue #11)",
)


@needs_noisy_core
def test_adaptive_certificate_through_a_noisy_suboptimal_testbed_is_true(mdp):
    oracle = NoisyOracle(SuboptimalOracle(mdp, (0.02, 0.0)), 0.005, seed=0)
    p = palmopt.adaptive(oracle, 0.05, 0.02, confidence=0.9, progress=False)
    assert p.certificate.confidence == 0.9 and p.certificate.certified
    assert p.info["eta"] == [0.02, 0.0]  # the declared error went through the noisy wrapper
    V = np.array([SuboptimalOracle(mdp, 0.0).evaluate(pol).values for pol in p.policies])
    assert palmopt.certify(V, mdp.reference_front(), eps=0.05, delta=0.02).holds  # true values, true front
