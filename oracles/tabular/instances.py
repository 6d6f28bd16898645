"""Generators of tabular multi-objective MDPs: random, many supported policies, few, and the demo.

Every generator takes ``rng`` (None | int seed | numpy Generator, never the global state) and
returns a :class:`~oracles.tabular.TabularMOMDP` with rewards in [0, 1].
"""

import numpy as np

from palmopt.validation import as_rng, check_count, check_dim, check_fraction

from .model import TabularMOMDP

__all__ = ["random_momdp", "many_policies", "few_policies", "demo_instance"]

#: Seed of :func:`demo_instance` (chosen so that its convex coverage set has 11 points).
DEMO_SEED = 8


def random_momdp(n_states, n_actions, d, *, gamma=0.9, n_successors=3, rng=None):
    """A random MOMDP with sparse random transitions and uniform rewards.

    Parameters
    ----------
    n_states, n_actions, d : int
        ``S``, ``A`` and the number of objectives.
    gamma : float, default 0.9
        Discount factor in [0, 1).
    n_successors : int, default 3
        Each ``(s, a)`` moves to ``n_successors`` successors drawn uniformly (with repetition)
        with Dirichlet(1) probabilities.
    rng : None, int or numpy.random.Generator

    Returns
    -------
    TabularMOMDP
        Rewards i.i.d. uniform on [0, 1]; start distribution Dirichlet(1).

    Examples
    --------
    >>> from oracles.tabular.instances import random_momdp
    >>> mdp = random_momdp(20, 4, 2, rng=0)
    >>> mdp
    TabularMOMDP(S=20, A=4, d=2, gamma=0.9)
    >>> mdp([0.5, 0.5]).values.round(3)
    array([0.707, 0.794])
    """
    S = check_count(n_states, "n_states")
    A = check_count(n_actions, "n_actions")
    d = check_dim(d)
    gamma = check_fraction(gamma, "gamma", allow_zero=True)
    k = check_count(n_successors, "n_successors")
    rng = as_rng(rng)
    succ = rng.integers(0, S, size=(S * A, k))
    prob = rng.dirichlet(np.ones(k), size=S * A)
    P = np.zeros((S * A, S))
    np.add.at(P, (np.repeat(np.arange(S * A), k), succ.ravel()), prob.ravel())
    R = rng.random((S, A, d))
    mu = rng.dirichlet(np.ones(S))
    return TabularMOMDP(P.reshape(S, A, S), R, gamma, mu)


def many_policies(d, *, n_arms=64, gamma=0.9, rng=None):
    """A one-state MOMDP whose ``n_arms`` actions are all supported: a curved front.

    Each action ``a`` has the reward vector ``u_a``, a unit vector of the positive orthant
    (the ``d`` coordinate axes, then random directions), and stays in the single state, so
    ``V(a) = u_a`` and every action is the unique optimum at ``w = u_a / sum(u_a)``.  The
    front is a sample of the sphere, the worst case of palmopt.bounds.lower_bound: no few
    policies cover it well.

    Parameters
    ----------
    d : int
        Number of objectives.
    n_arms : int, default 64
        Number of actions (>= d).
    gamma : float, default 0.9
        Discount factor (it does not change the normalised values).
    rng : None, int or numpy.random.Generator

    Returns
    -------
    TabularMOMDP
        ``S = 1``, ``A = n_arms``; ``reference_front()`` has ``n_arms`` points.

    Examples
    --------
    >>> from oracles.tabular.instances import many_policies
    >>> mdp = many_policies(2, n_arms=5, rng=0)
    >>> mdp.reference_front().shape
    (5, 2)
    """
    d = check_dim(d)
    n = check_count(n_arms, "n_arms")
    if n < d:
        raise ValueError(f"`n_arms` must be >= d = {d} (the axes are always arms); got {n}.")
    gamma = check_fraction(gamma, "gamma", allow_zero=True)
    rng = as_rng(rng)
    U = np.abs(rng.standard_normal((n - d, d))) + 1e-3
    U = np.vstack([np.eye(d), U / np.linalg.norm(U, axis=1, keepdims=True)])
    return TabularMOMDP(np.ones((1, n, 1)), U[None, :, :], gamma, [1.0])


def few_policies(d, *, n_actions=None, gamma=0.9, rng=None):
    """A MOMDP with many policies but exactly ``d`` supported ones: the specialists.

    States: a start state, ``d`` absorbing "specialist" states and one absorbing "mediocre"
    state.  From the start, ``d`` actions lead to the specialist states (reward ``e_i``), the
    others to the mediocre state.  In specialist state ``i`` one action earns ``e_i``; every other
    reward vector of the MDP has coordinate sum <= 0.9.  So the supported values are exactly
    ``e_1, ..., e_d`` (all others have ``w·v <= 0.9 max_i w_i``).  Action labels are shuffled.

    Parameters
    ----------
    d : int
        Number of objectives.
    n_actions : int, optional
        Actions per state, ``>= d + 1`` (default ``d + 2``).
    gamma : float, default 0.9
    rng : None, int or numpy.random.Generator

    Returns
    -------
    TabularMOMDP
        ``S = d + 2``, ``A = n_actions``; the start state is state 0.

    Examples
    --------
    >>> from oracles.tabular.instances import few_policies
    >>> few_policies(3, rng=0).reference_front()
    array([[0., 0., 1.],
           [0., 1., 0.],
           [1., 0., 0.]])
    """
    d = check_dim(d)
    A = d + 2 if n_actions is None else check_count(n_actions, "n_actions")
    if A < d + 1:
        raise ValueError(f"`n_actions` must be >= d + 1 = {d + 1}; got {A}.")
    gamma = check_fraction(gamma, "gamma", allow_zero=True)
    rng = as_rng(rng)
    S = d + 2
    mediocre = d + 1
    P = np.zeros((S, A, S))
    R = rng.dirichlet(np.ones(d), size=(S, A)) * rng.uniform(0.0, 0.9, size=(S, A, 1))
    for a in range(A):  # start state: d specialist doors, the rest to the mediocre state
        P[0, a, a + 1 if a < d else mediocre] = 1.0
    R[0, :d] = np.eye(d)
    for i in range(d):  # specialist state i + 1: action 0 earns e_i, the others less
        P[i + 1, :, i + 1] = 1.0
        R[i + 1, 0] = np.eye(d)[i]
    P[mediocre, :, mediocre] = 1.0
    for s in range(S):  # shuffle the action labels
        perm = rng.permutation(A)
        P[s], R[s] = P[s, perm], R[s, perm]
    mu = np.zeros(S)
    mu[0] = 1.0
    return TabularMOMDP(P, R, gamma, mu)


def demo_instance():
    """The fixed, seeded MOMDP of ``palmopt demo``: 6 states, 4 actions, 3 objectives, γ = 0.9.

    ``random_momdp(6, 4, 3, gamma=0.9, rng=DEMO_SEED)``; its 4**6 = 4096 deterministic policies
    have a convex coverage set of 11 points.

    Examples
    --------
    >>> from oracles.tabular import demo_instance
    >>> mdp = demo_instance()
    >>> mdp, mdp.fingerprint() == demo_instance().fingerprint()
    (TabularMOMDP(S=6, A=4, d=3, gamma=0.9), True)
    """
    return random_momdp(6, 4, 3, gamma=0.9, rng=DEMO_SEED)
