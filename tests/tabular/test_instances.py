"""The seeded instance generators of oracles.tabular.instances."""

import numpy as np
import pytest

from oracles.tabular.instances import demo_instance, few_policies, many_policies, random_momdp


def test_instances_are_seeded_and_valid():
    assert random_momdp(5, 3, 2, rng=1).fingerprint() == random_momdp(5, 3, 2, rng=1).fingerprint()
    assert random_momdp(5, 3, 2, rng=1).fingerprint() != random_momdp(5, 3, 2, rng=2).fingerprint()
    mdp = random_momdp(5, 3, 2, gamma=0.5, rng=np.random.default_rng(0))
    assert (mdp.n_states, mdp.n_actions, mdp.d, mdp.gamma) == (5, 3, 2, 0.5)
    with pytest.raises(TypeError, match="rng"):
        random_momdp(5, 3, 2, rng="seed")
    with pytest.raises(ValueError, match="n_states"):
        random_momdp(0, 3, 2)


@pytest.mark.parametrize("d", [2, 3, 4])
def test_many_policies_supports_every_arm(d):
    mdp = many_policies(d, n_arms=20, rng=d)
    front = mdp.reference_front()
    assert front.shape == (20, d)
    assert np.allclose(np.linalg.norm(front, axis=1), 1)
    with pytest.raises(ValueError, match="n_arms"):
        many_policies(d, n_arms=d - 1)


@pytest.mark.parametrize("d", [2, 3])
def test_few_policies_supports_the_specialists_only(d):
    mdp = few_policies(d, rng=0)
    assert mdp.n_actions ** mdp.n_states >= 256
    assert np.allclose(mdp.reference_front(), np.eye(d)[::-1])
    for w in np.random.default_rng(d).dirichlet(np.ones(d), size=10):
        assert np.allclose(mdp(w).values, np.eye(d)[np.argmax(w)])


def test_demo_instance():
    mdp = demo_instance()
    assert (mdp.n_states, mdp.n_actions, mdp.d, mdp.gamma) == (6, 4, 3, 0.9)
    assert mdp.fingerprint() == demo_instance().fingerprint()
    assert len(mdp.reference_front()) >= 8
