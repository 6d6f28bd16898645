"""The oracle protocol: Solution, the checking wrapper, as_oracle, OracleError."""

import pickle

import numpy as np
import pytest

from palmopt.oracle import AlignmentOracle, CheckedOracle, OracleError, Solution, as_oracle, checked

V = np.array([[1.0, 0.0], [0.6, 0.6], [0.0, 1.0]])


def argmax_oracle(name="three"):
    return as_oracle(lambda w: V[np.argmax(V @ w)], d=2, name=name)


def test_solution_is_read_only_and_pickles():
    sol = Solution(values=[0.25, 0.5], policy="adapter-3", info={"seed": 1})
    assert sol.values.dtype == np.float64 and not sol.values.flags.writeable
    with pytest.raises(TypeError):
        sol.info["seed"] = 2
    back = pickle.loads(pickle.dumps(sol))
    np.testing.assert_array_equal(back.values, sol.values)
    assert (back.policy, dict(back.info)) == ("adapter-3", {"seed": 1})
    assert "0.25" in repr(sol)


def test_as_oracle_follows_the_protocol():
    oracle = argmax_oracle()
    assert isinstance(oracle, AlignmentOracle) and oracle.d == 2
    np.testing.assert_array_equal(oracle(np.array([0.5, 0.5])).values, [0.6, 0.6])
    assert oracle.fingerprint() == "function:three(d=2)"


def test_checked_is_idempotent_and_keeps_the_fingerprint():
    inner = argmax_oracle()
    c = checked(inner)
    assert isinstance(c, CheckedOracle) and checked(c) is c
    assert c.fingerprint() == inner.fingerprint() and c.value_range == (0.0, 1.0)
    np.testing.assert_array_equal(c([1.0, 0.0]).values, [1.0, 0.0])


@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda w: [np.nan, 0.0], r"non-finite values \[nan, +0\.\] at w = \[0\.5, 0\.5\]"),
        (lambda w: [0.5, 0.5, 0.5], r"values of shape \(3,\), expected \(2,\)"),
        (lambda w: [1.5, 0.0], r"outside the declared range \[0, 1\]"),
    ],
)
def test_checked_rejects_garbage_naming_the_weight(fn, match):
    with pytest.raises(OracleError, match=match) as info:
        checked(as_oracle(fn, d=2, name="bad"))([0.5, 0.5])
    np.testing.assert_array_equal(info.value.weight, [0.5, 0.5])


def test_an_oracle_that_raises_is_chained():
    def crash(w):
        raise RuntimeError("trainer died")

    with pytest.raises(OracleError, match="oracle raised RuntimeError at w = .*trainer died") as info:
        checked(as_oracle(crash, d=2, name="crash"))([1.0, 0.0])
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_non_solution_is_refused():
    class Raw:
        d = 2

        def __call__(self, w):
            return [0.1, 0.2]

    with pytest.raises(OracleError, match="returned list, not a Solution"):
        checked(Raw())([0.5, 0.5])


def test_value_range_is_the_oracles_declared_one():
    wide = as_oracle(lambda w: [5.0, 0.0], d=2, name="wide")
    wide.value_range = (0.0, 10.0)
    np.testing.assert_array_equal(checked(wide)([1.0, 0.0]).values, [5.0, 0.0])


def test_oracle_error_pickles_with_its_weight():
    err = pickle.loads(pickle.dumps(OracleError("boom", [0.2, 0.8])))
    assert str(err) == "boom" and err.weight.tolist() == [0.2, 0.8]


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: as_oracle("f", d=2), TypeError, "`fn` must be callable"),
        (lambda: as_oracle(lambda w: w, d=0), ValueError, "`d` must be >= 1"),
        (lambda: as_oracle(lambda w: w, d=True), TypeError, "`d` must be an integer"),
        (lambda: checked(lambda w: w), TypeError, "integer attribute `d`"),
    ],
)
def test_bad_input(make, exc, match):
    with pytest.raises(exc, match=match):
        make()
