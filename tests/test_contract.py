"""One contract, run against every constructor of a portfolio (scipy's common-tests idea):
palm, lazy palm, adaptive, the baselines and the minimum portfolio all return an immutable
result whose members are achievable, whose status is a :class:`palmopt.Status`, and whose
stated guarantee -- when it states one and reports success -- is true against the exact front."""

import numpy as np
import pytest

import palmopt
from oracles.tabular.instances import many_policies, random_momdp
from palmopt import Status, baselines

EPS, DELTA = 0.1, 0.05

CONSTRUCTORS = {
    "palm": lambda o: palmopt.palm(o, EPS, DELTA, progress=False),
    "palm exact prune": lambda o: palmopt.palm(o, EPS, DELTA, prune="exact", progress=False),
    "lazy palm": lambda o: palmopt.palm(o, EPS, DELTA, lazy=True, progress=False),
    "adaptive": lambda o: palmopt.adaptive(o, EPS, DELTA, progress=False),
    "adaptive batch": lambda o: palmopt.adaptive(o, EPS, DELTA, batch=3, prune="none", progress=False),
    "uniform": lambda o: baselines.uniform(o, 4),
    "random": lambda o: baselines.random(o, 4, rng=0),
    "specialists": lambda o: baselines.specialists(o),
    "ols": lambda o: baselines.ols(o, DELTA),
    "minimum": lambda o: palmopt.minimum_portfolio(o.reference_front(), EPS, DELTA),
}
INSTANCES = {
    "curved d=2": lambda: many_policies(2, n_arms=12, rng=0),
    "random d=3": lambda: random_momdp(4, 3, 3, rng=1),
}


@pytest.fixture(scope="module", params=list(INSTANCES))
def instance(request):
    mdp = INSTANCES[request.param]()
    return mdp, mdp.reference_front()


@pytest.mark.parametrize("name", list(CONSTRUCTORS))
def test_portfolio_contract(name, instance):
    mdp, front = instance
    p = CONSTRUCTORS[name](mdp)
    d = mdp.d
    # shape, immutability, status vocabulary, a repr that names the class
    assert p.values.shape == (len(p), d) and len(p) >= 1 and not p.values.flags.writeable
    assert isinstance(p.status, Status)
    assert type(p).__name__ in repr(p)
    assert (p == p) and not (p != p)  # eq=False: identity, never an elementwise ValueError
    # members are achievable: nowhere above OPT
    W = palmopt.cover(d, 0.02, kind="additive").points
    assert ((W @ p.values.T).max(axis=1) <= (W @ front.T).max(axis=1) + 1e-9).all()
    calls = getattr(p, "n_oracle_calls", None)
    assert calls is None or calls >= len(p)
    # these instances are easy: every construction that states a guarantee must reach it, and
    # it must be true against the exact front
    if np.isfinite(p.eps):
        assert p.status == Status.SUCCESS, (name, p.status)
        truth = palmopt.certify(p, front)  # the portfolio's own (eps, delta)
        assert (truth.eps, truth.delta) == (p.eps, p.delta)
        assert truth.certified, (name, truth)
    cert = getattr(p, "certificate", None)
    if cert is not None:
        assert (cert.eps, cert.delta) == (p.eps, p.delta)
        if cert.certified:
            assert palmopt.certify(p, front).holds, "a certificate that holds must be true"


@pytest.mark.parametrize(
    "build",
    [
        lambda o: palmopt.palm(o, EPS, progress=False),
        lambda o: palmopt.adaptive(o, EPS, progress=False),
        lambda o: palmopt.minimum_portfolio(o.reference_front(), EPS),
    ],
    ids=["palm", "adaptive", "minimum"],
)
def test_delta_none_means_eps(build):
    p = build(random_momdp(3, 2, 2, rng=0))
    assert (p.eps, p.delta) == (EPS, EPS)
