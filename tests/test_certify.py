import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import palmopt
from palmopt import certify

from .strategies import policy_values


def sampled_gaps(U, T, eps, delta, W):
    lb = (W @ U.T).max(axis=1)
    opt = (W @ T.T).max(axis=1)
    ratio_gap = np.where(opt > 0, 1 - lb / np.where(opt > 0, opt, 1.0), 0.0)  # OPT = 0 is served by anything
    return ((1 - eps) * opt - delta - lb).max(), ratio_gap.max(), (opt - lb).max()


@given(d=st.integers(2, 3), eps=st.floats(0, 0.5), delta=st.floats(0, 0.3), data=st.data())
def test_certificate_matches_dense_sampling(d, eps, delta, data):
    T = data.draw(policy_values(d, 2, 10))
    U = T[: data.draw(st.integers(1, len(T)))]
    cert = certify(U, T, eps, delta)
    W = palmopt.cover(d, 0.5, {2: 1e-4, 3: 0.01}[d], kind="additive").points  # a fine grid
    viol, eps_s, delta_s = sampled_gaps(U, T, eps, delta, W)
    # the LP maximum is over all of the simplex: never below the sample, and close to it
    lip = 2.0 * {2: 1e-4, 3: 0.01}[d]  # |gap(w) - gap(w')| <= 2 ||w - w'||_1 for V in [0, 1]
    assert viol <= cert.violation + 1e-9 <= viol + lip + 1e-9
    assert delta_s <= cert.delta_star + 1e-9 <= delta_s + lip + 1e-9
    assert eps_s <= cert.eps_star + 1e-9
    assert cert.holds == (cert.violation <= 1e-9)
    # the witness really attains the reported violation
    w = cert.worst_weight
    assert (1 - eps) * (T @ w).max() - delta - (U @ w).max() == pytest.approx(cert.violation, abs=1e-9)
    assert cert.status == "success"


def test_finds_the_violating_weight():
    T = np.array([[1.0, 0.0], [0.8, 0.8], [0.0, 1.0]])
    cert = certify(T[[0, 2]], T, eps=0.2, delta=0.0)
    assert not cert.holds
    assert cert.violation == pytest.approx(0.8 * 0.8 - 0.5)
    np.testing.assert_allclose(cert.worst_weight, [0.5, 0.5], atol=1e-9)
    assert cert.eps_star == pytest.approx(1 - 0.5 / 0.8)
    assert cert.delta_star == pytest.approx(0.3)


def test_violation_hidden_off_the_sampling_grid_is_found():
    """A thin spike of OPT between grid points of a coarse sample: the LPs still find it."""
    T = np.array([[1.0, 0.0], [0.0, 0.8], [0.5, 0.41]])  # LB has its kink at w = (4/9, 5/9)
    U = T[:2]
    coarse = np.c_[np.linspace(0, 1, 11), 1 - np.linspace(0, 1, 11)]
    assert sampled_gaps(U, T, 0.0, 0.0, coarse)[2] <= 0 < certify(U, T).delta_star
    cert = certify(U, T, 0.0, 0.0)
    assert cert.delta_star == pytest.approx(0.5 * 4 / 9 + 0.41 * 5 / 9 - 4 / 9)
    assert cert.worst_weight[0] == pytest.approx(4 / 9, abs=1e-9)


def test_certificate_roundtrips_through_a_dict():
    T = np.eye(3)
    cert = certify(T[:2], T, 0.1, 0.1)
    again = palmopt.Certificate.from_dict(cert.to_dict())
    assert again.violation == cert.violation and np.array_equal(again.worst_weight, cert.worst_weight)


def test_reference_may_be_an_exact_oracle():
    from oracles.tabular.instances import random_momdp

    mdp = random_momdp(3, 2, 2, rng=0)
    p = palmopt.palm(mdp, 0.2, progress=False)
    assert certify(p, mdp, 0.2, 0.2).holds


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: certify(np.eye(2), np.eye(3)), ValueError, "`reference` must have 2 columns"),
        (lambda: certify(np.eye(2), np.eye(2), eps=1.0), ValueError, "`eps` must be in"),
        (lambda: certify([[np.nan, 0]], np.eye(2)), ValueError, "`portfolio` must be finite"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_default_target_is_the_portfolios_own_whatever_its_number_type():
    T = np.array([[1.0, 0.0], [0.8, 0.8], [0.0, 1.0]])
    for eps, delta in [(0.2, 0), (np.float32(0.25), 0.0), (0.2, None)]:
        p = palmopt.Portfolio(values=T[[1]], weights=[[0.5, 0.5]], eps=eps, delta=delta)
        cert = certify(p, T)
        assert (cert.eps, cert.delta) == (p.eps, p.delta) and isinstance(p.eps, float)
    assert certify(p, T, eps=0.0, delta=0.0).eps == 0.0  # given targets win


def test_certificates_saved_before_kind_existed_still_load():
    T = np.array([[1.0, 0.0], [0.8, 0.8], [0.0, 1.0]])
    new = certify(T[[1]], T, 0.2, 0.0).to_dict()
    for old_status, kind in [("ok", "exact"), ("black-box", "black-box")]:
        old = {k: v for k, v in new.items() if k != "kind"} | {"status": old_status}
        cert = palmopt.Certificate.from_dict(old)
        assert cert.kind == kind and cert.status == "success" and cert.holds
    with pytest.raises(ValueError, match="`kind` must be one of"):
        palmopt.Certificate.from_dict(new | {"kind": "guess"})
    with pytest.raises(ValueError, match="needs the keys"):
        palmopt.Certificate.from_dict({"holds": True})
    assert not certify(T[[1]], T, 0.2, 0.0).worst_weight.flags.writeable
