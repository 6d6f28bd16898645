"""Independent twins of the tabular oracle: brute force and explicit loops, no shared code."""

import itertools

import numpy as np
from scipy.optimize import linprog

from oracles.tabular import TabularMOMDP

from ..strategies import simplex_points

TOL = 1e-9


def brute_force_values(mdp):
    """Normalised values of every deterministic stationary policy: (policies (n, S), V (n, d))."""
    S, g = mdp.n_states, mdp.gamma
    policies = np.array(list(itertools.product(range(mdp.n_actions), repeat=S)), dtype=np.int64)
    V = []
    for pi in policies:
        P_pi = np.array([mdp.P[s, pi[s]] for s in range(S)])
        R_pi = np.array([mdp.R[s, pi[s]] for s in range(S)])
        V.append((1 - g) * mdp.mu @ np.linalg.inv(np.eye(S) - g * P_pi) @ R_pi)
    return policies, np.array(V)


def mixture_value(mdp, policy):
    """Normalised value of a stochastic policy, by explicit loops over states and actions."""
    S, A, g = mdp.n_states, mdp.n_actions, mdp.gamma
    P_pi = np.zeros((S, S))
    R_pi = np.zeros((S, mdp.d))
    for s in range(S):
        for a in range(A):
            P_pi[s] += policy[s, a] * mdp.P[s, a]
            R_pi[s] += policy[s, a] * mdp.R[s, a]
    return (1 - g) * mdp.mu @ np.linalg.solve(np.eye(S) - g * P_pi, R_pi)


def full_lp_margin(v, U):
    """max_w min_u w·(v - u) over the simplex, one LP with every u (no pre-filters)."""
    if len(U) == 0:
        return np.inf
    d = len(v)
    res = linprog(
        np.r_[np.zeros(d), -1.0],
        A_ub=np.hstack([U - v, np.ones((len(U), 1))]),
        b_ub=np.zeros(len(U)),
        A_eq=np.r_[np.ones(d), 0.0][None, :],
        b_eq=[1.0],
        bounds=[(0, None)] * d + [(None, None)],
        method="highs",
    )
    assert res.status == 0
    return -res.fun


def one_state(values, gamma=0.0):
    """A one-state MOMDP whose actions have the given value vectors."""
    values = np.asarray(values, dtype=float)
    return TabularMOMDP(np.ones((1, len(values), 1)), values[None], gamma, [1.0])


def weights_for(d):
    return simplex_points(d, n_min=4, n_max=10)


def valid_arrays():
    """``(P, R, gamma, mu)`` of a valid 2-state, 2-action, 3-objective MOMDP."""
    P = np.full((2, 2, 2), 0.5)
    R = np.full((2, 2, 3), 0.5)
    return P, R, 0.9, np.array([0.5, 0.5])
