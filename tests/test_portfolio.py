import numpy as np
import pytest

import palmopt
from palmopt import Portfolio


def test_route_is_the_brute_force_argmax():
    rng = np.random.default_rng(0)
    V = rng.random((30, 4))
    p = Portfolio(values=V, weights=palmopt.nets.random(4, 30, rng=1))
    W = palmopt.nets.random(4, 2000, rng=2)
    np.testing.assert_array_equal(p.route(W), np.argmax(W @ V.T, axis=1))
    best, arg = p.best_values(W)
    np.testing.assert_allclose(best, (W @ V.T).max(axis=1), atol=1e-14)


def test_save_load_roundtrip_through_the_oracle_hook(tmp_path):
    from oracles.tabular.instances import random_momdp

    mdp = random_momdp(4, 3, 3, rng=0)
    p = palmopt.palm(mdp, 0.2, progress=False)
    p.save(tmp_path / "p", oracle=mdp)
    q = Portfolio.load(tmp_path / "p", oracle=mdp)
    np.testing.assert_array_equal(p.values, q.values)
    np.testing.assert_array_equal(p.weights, q.weights)
    for i, (a, b) in enumerate(zip(p.policies, q.policies)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(mdp.evaluate(b), p.values[i], atol=1e-12)
    assert q.info["net_size"] == p.info["net_size"] and q.method == "palm" and q.eps == 0.2


def test_save_load_arrays_strings_and_certificate(tmp_path):
    T = np.eye(2)
    cert = palmopt.certify(T, T)
    p = Portfolio(values=T, weights=T, policies=[np.arange(3), "adapters/member-1"], certificate=cert)
    p.save(tmp_path / "p")
    q = Portfolio.load(tmp_path / "p")
    np.testing.assert_array_equal(q.policies[0], np.arange(3))
    assert q.policies[1] == "adapters/member-1"
    assert q.certificate.holds and q.certificate.violation == cert.violation


def test_portfolio_is_immutable_and_pickles():
    import pickle

    p = Portfolio(values=[[0.5, 0.5]], weights=[[0.5, 0.5]], info={"a": 1})
    with pytest.raises(ValueError):
        p.values[0, 0] = 1
    with pytest.raises(AttributeError):
        p.method = "x"
    q = pickle.loads(pickle.dumps(p))
    assert q.info["a"] == 1 and np.array_equal(q.values, p.values)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"values": [[0.5, 0.5]], "weights": [[0.5, 0.6]]}, ValueError, "`weights` must lie on the simplex|simplex"),
        ({"values": [[0.5, 0.5]], "weights": [[0.5, 0.5], [1, 0]]}, ValueError, "one row per member"),
        ({"values": [[0.5, np.nan]], "weights": [[0.5, 0.5]]}, ValueError, "`values` must be finite"),
        ({"values": [[0.5, 0.5]], "weights": [[0.5, 0.5]], "policies": [1, 2]}, ValueError, "one entry per member"),
    ],
)
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Portfolio(**kwargs)


def test_saving_an_unknown_policy_needs_the_oracle(tmp_path):
    p = Portfolio(values=[[0.5, 0.5]], weights=[[0.5, 0.5]], policies=[object()])
    with pytest.raises(TypeError, match="pass the oracle"):
        p.save(tmp_path / "p")


def test_route_uses_the_portfolio_scalarization():
    from palmopt.scalarizations import Tchebycheff

    V = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    W = np.random.default_rng(0).dirichlet(np.ones(2), 50)
    p = Portfolio(values=V, weights=[[1, 0], [0.5, 0.5], [0, 1]], info={"scalarization": "Tchebycheff()"})
    expected = np.argmax(Tchebycheff()(W, V), axis=1)
    assert np.array_equal(p.route(W), expected)
    assert not np.array_equal(Portfolio(values=V, weights=p.weights).route(W), expected)  # linear differs


@pytest.mark.parametrize("text", ["os.system('x')", "PMean(p=__import__('os'))", "Linear", ""])
def test_a_saved_scalarization_is_parsed_as_data(text):
    p = Portfolio(values=[[1.0, 0.0]], weights=[[1.0, 0.0]], info={"scalarization": text})
    with pytest.raises(ValueError, match="unknown scalarization"):
        p.scalarization
