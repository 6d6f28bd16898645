r"""The exact tabular multi-objective MDP oracle, :class:`TabularMOMDP`.

Called with a weight ``w`` on the simplex it solves the scalarised MDP with reward ``R @ w``
exactly (policy iteration with exact linear solves) and returns the optimal deterministic
stationary policy with its *normalised* value vector

.. math:: V(π) = (1-γ)\, μ^\top (I - γ P_π)^{-1} R_π \in [0, 1]^d ,

which lies in ``[0, 1]^d`` whenever the rewards do (DESIGN.md §1).  The linear solves are in
:mod:`oracles.tabular.linalg`; the exact convex coverage set of the enumerated policies, the
ground truth that certificates compare against, in :mod:`oracles.tabular.front`.
"""

import hashlib
import math
import os
import time

import numpy as np

from palmopt.oracle import Solution
from palmopt.scalarizations import Linear, Scalarization
from palmopt.tolerances import SAME_VALUE, STOCHASTIC_ATOL
from palmopt.validation import check_fraction, check_simplex, check_value_range

from .front import convex_coverage_set
from .linalg import METHODS, PolicySolver, deterministic_values

__all__ = ["TabularMOMDP"]

#: Relative improvement an action needs over the current one before policy iteration switches.
SWITCH_RTOL = 1e-12
#: Policies enumerated by :meth:`TabularMOMDP.reference_front` at most.
MAX_ENUMERATED = 1_000_000
_MAX_PI_ITERATIONS = 10_000
#: Oracle methods: policy iteration with a dense/sparse linear solver, or the occupancy programme.
ORACLE_METHODS = (*METHODS, "lp")
#: ``method="lp"``: largest accepted violation of the flow constraints by the solver's occupancy measure.
FLOW_ATOL = 1e-6
#: ``method="lp"``: largest accepted verified optimality gap, per unit of the supergradient's 1-norm.
OPT_ATOL = 1e-6
#: ``method="lp"``, power-cone programmes (``PMean``): the accepted verified gap after the tight re-solve.
#: Interior-point answers of a curved objective are accurate to ~1e-8 in value but only to ~1e-6 in
#: the occupancy measure, and the verified bound is first-order in the latter (and loose where the
#: optimum has a tiny coordinate: the gradient there is large).
CONIC_ATOL = 1e-4
#: ``method="lp"``: a support coordinate whose best achievable value is at most this is treated as 0.
ZERO_VALUE = 1e-12


def _as_array(x, name, ndim):
    """``x`` as a float64 array with ``ndim`` dimensions, finite; TypeError for non-numeric."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"`{name}` must be a numeric array; got {type(x).__name__}.")
    try:
        a = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be a numeric array; got {type(x).__name__}.") from exc
    if a.ndim != ndim:
        raise ValueError(f"`{name}` must be a {ndim}-D array; got shape {a.shape}.")
    if a.size == 0:
        raise ValueError(f"`{name}` must not be empty; got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ValueError(f"`{name}` must be finite (no NaN or inf); `{name}`{list(bad)} is {a[bad]}.")
    return a


def _readonly(a):
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


class TabularMOMDP:
    r"""An exact alignment oracle for a tabular multi-objective MDP.

    Parameters
    ----------
    P : array_like, shape (S, A, S)
        Transition probabilities ``P[s, a, s']``; every row ``P[s, a]`` is a distribution
        (entries >= 0, sum 1 within ``1e-9``).
    R : array_like, shape (S, A, d)
        Rewards ``R[s, a, i]`` of objective ``i``; finite, and in [0, 1] unless ``value_range``
        is given.
    gamma : float
        Discount factor in [0, 1).
    mu : array_like, shape (S,)
        Start-state distribution.
    value_range : (float, float), optional
        Declared bounds ``(low, high)`` of the rewards (and hence of the normalised values).
        By default the rewards must lie in [0, 1], the normalisation palmopt's guarantees are
        stated for.
    method : {"auto", "dense", "sparse", "lp"}, default "auto"
        How ``oracle(w)`` is solved.  Policy iteration with the linear solver of policy
        evaluation ``"dense"`` LU (LAPACK ``gesv``) on ``I - γ P_π`` or ``"sparse"`` sparse LU
        (SuperLU, :func:`scipy.sparse.linalg.splu`) with a sparse ``P`` for the Bellman backups
        (both exact up to rounding; ``"auto"`` picks sparse from ``S >= 500`` states when at most
        5% of ``P`` is non-zero); or ``"lp"``: the occupancy-measure programme in cvxpy
        (:mod:`oracles.tabular.occupancy`), which returns a stochastic policy.  ``"auto"`` is
        ``"lp"`` for a non-linear ``scalarization``.
    scalarization : palmopt.scalarizations.Scalarization, optional
        What the oracle maximises over stochastic policies: ``Linear()`` (default, ``w·V``),
        ``Tchebycheff()`` or ``PMean(p)``; non-linear ones need ``method="lp"`` (or ``"auto"``).

    Attributes
    ----------
    d, n_states, n_actions : int
    gamma : float
    value_range : (float, float)
    method : {"dense", "sparse", "lp"}
        The solver in use (``"lp"``: the occupancy programme; policy evaluation then uses the
        automatic linear solver).
    scalarization : palmopt.scalarizations.Scalarization
        ``Linear()`` unless given.
    P, R, mu : ndarray
        Read-only float64 copies of the inputs.

    Raises
    ------
    TypeError
        An argument of the wrong kind (not numeric, ``gamma`` not a real number, ...).
    ValueError
        Inconsistent shapes, a row of ``P`` or ``mu`` that is not a distribution, ``gamma``
        outside [0, 1), non-finite or out-of-range rewards, a non-linear ``scalarization`` with
        policy iteration (``method="dense"`` or ``"sparse"``).

    Notes
    -----
    ``oracle(w)`` runs policy iteration on the scalarised MDP ``(P, R @ w, gamma)``, starting
    from the greedy policy of the immediate reward.  Each iteration solves
    ``(I - γ P_π) X = [r_π, R_π]`` exactly (one LU factorisation), so the returned policy is
    optimal for ``w`` up to rounding; an action replaces the current one only when it improves
    the Q-value by more than ``1e-12 (1 + |Q|)``, and ties go to the lowest action index, so the
    answer is deterministic.  The returned ``π_w`` is optimal from every start state, so
    ``w·V(π_w) = OPT(w) = max_π w·V(π)`` over all (also stochastic, history-dependent) policies
    [Puterman, *Markov Decision Processes*, 1994, Thm 6.2.10 and §6.4].

    With ``method="lp"`` the oracle solves ``max g_w(R^T x)`` over occupancy measures ``x`` and
    returns the stochastic policy ``π(a|s) = x(s,a) / Σ_a x(s,a)`` (uniform where a state has no
    occupancy) with its values recomputed by exact policy evaluation -- never read from the
    solver.  It checks the solver's ``x`` against the flow constraints (``FLOW_ATOL``) and the
    policy's optimality against a bound computed independently: ``OPT(w) ≤ max_π c·V(π)`` (exact
    policy iteration) for any ``c ≥ 0`` with ``g_w(v) ≤ c·v`` for all ``v ≥ 0`` -- ``c = w`` for
    the weighted sum; ``c = λ∘w`` for Tchebycheff, ``λ`` the solver's multipliers normalised to the
    simplex; for ``PMean(p)`` the gradient at the policy's values scaled by ``1/M_q(w; c/w)``,
    ``q = p/(p-1)``, which is valid by the reverse Hölder inequality
    ``Σ w_i a_i b_i ≥ M_p(w; a)·M_q(w; b)`` and tight at the optimum.  A violation raises
    :class:`~oracles.tabular.occupancy.OccupancyError` (``"numerical-trouble"``), as does a
    solver failure (``"solver-failed"``, naming the solver and its status).

    Examples
    --------
    >>> import numpy as np
    >>> from oracles.tabular import TabularMOMDP
    >>> P = np.ones((2, 2, 2)) / 2                      # 2 states, 2 actions, uniform moves
    >>> R = np.array([[[1.0, 0.0], [0.0, 1.0]],
    ...               [[0.5, 0.5], [0.2, 0.2]]])
    >>> mdp = TabularMOMDP(P, R, gamma=0.9, mu=[1.0, 0.0])
    >>> mdp
    TabularMOMDP(S=2, A=2, d=2, gamma=0.9)
    >>> sol = mdp([0.8, 0.2])
    >>> sol.policy, sol.values.round(4)
    (array([0, 0]), array([0.775, 0.225]))
    >>> from palmopt.scalarizations import Tchebycheff
    >>> fair = TabularMOMDP(P, R, gamma=0.9, mu=[1.0, 0.0], scalarization=Tchebycheff())
    >>> fair.method, fair([0.5, 0.5]).values.round(4)    # a stochastic policy balancing both
    ('lp', array([0.5, 0.5]))
    """

    def __init__(self, P, R, gamma, mu, *, value_range=None, method="auto", scalarization=None):
        if method not in ORACLE_METHODS:
            raise ValueError(f"`method` must be one of {ORACLE_METHODS}; got {method!r}.")
        if scalarization is None:
            scalarization = Linear()
        if not isinstance(scalarization, Scalarization):
            raise TypeError(
                f"`scalarization` must be a palmopt.scalarizations.Scalarization (Linear(), Tchebycheff(), "
                f"PMean(p)); got {scalarization!r} of type {type(scalarization).__name__}."
            )
        if not scalarization.linear:
            if method in ("dense", "sparse"):
                raise ValueError(
                    f"policy iteration (method={method!r}) maximises the weighted sum only; {scalarization!r} "
                    f"needs the occupancy programme: method='lp' (or 'auto')."
                )
            method = "lp"
        P = _as_array(P, "P", 3)
        R = _as_array(R, "R", 3)
        S, A, S2 = P.shape
        if S2 != S:
            raise ValueError(f"`P` must have shape (S, A, S); got {P.shape}.")
        if R.shape[:2] != (S, A):
            raise ValueError(f"`R` must have shape (S, A, d) = ({S}, {A}, d) to match `P`; got {R.shape}.")
        if P.min() < 0.0:
            bad = tuple(int(i) for i in np.argwhere(P < 0.0)[0])
            raise ValueError(f"entries of `P` must be >= 0 (probabilities); `P`{list(bad)} is {P[bad]}.")
        sums = P.sum(axis=2)
        off = np.abs(sums - 1.0) > STOCHASTIC_ATOL
        if off.any():
            s, a = (int(i) for i in np.argwhere(off)[0])
            raise ValueError(
                f"rows `P[s, a, :]` must sum to 1 (within {STOCHASTIC_ATOL:g}); "
                f"`P[{s}, {a}, :]` sums to {sums[s, a]:.12g}."
            )
        gamma = check_fraction(gamma, "gamma", allow_zero=True)
        mu = _as_array(mu, "mu", 1)
        if mu.shape != (S,):
            raise ValueError(f"`mu` must have shape (S,) = ({S},); got {mu.shape}.")
        mu = check_simplex(mu, S, name="mu")[0]
        if value_range is None:
            lo, hi = 0.0, 1.0
            if R.min() < lo or R.max() > hi:
                raise ValueError(
                    f"rewards `R` must lie in [0, 1] (palmopt's guarantees assume normalised rewards); "
                    f"got values in [{R.min():.6g}, {R.max():.6g}]. Rescale them, e.g. "
                    f"(R - R.min()) / (R.max() - R.min()), or declare `value_range=(low, high)`."
                )
        else:
            lo, hi = check_value_range(value_range)
            if R.min() < lo or R.max() > hi:
                raise ValueError(
                    f"rewards `R` must lie in `value_range` = [{lo:g}, {hi:g}]; "
                    f"got values in [{R.min():.6g}, {R.max():.6g}]."
                )
        self.P = _readonly(P)
        self.R = _readonly(R)
        self.mu = _readonly(mu)
        self.gamma = gamma
        self.n_states, self.n_actions, self.d = S, A, R.shape[2]
        self.value_range = (lo, hi)
        # Views and solvers reused by every call.
        self._R2 = self.R.reshape(S * A, self.d)
        self._states = np.arange(S)
        self._fingerprint = None
        self._linalg = PolicySolver(self.P, gamma, "auto" if method == "lp" else method)
        self.method = "lp" if method == "lp" else self._linalg.method
        self.scalarization = scalarization
        self._program = None  # the occupancy programme, built on the first "lp" call
        self._vmax = None  # best achievable value of each objective ("lp" only)

    # ------------------------------------------------------------------ protocol

    def __call__(self, w):
        """Solve the scalarised MDP for the weight ``w`` exactly.

        Parameters
        ----------
        w : array_like, shape (d,)
            A weight on the simplex (entries >= 0, sum 1 within ``1e-9``).

        Returns
        -------
        Solution
            ``values``: the normalised value vector, shape (d,); ``policy``: the optimal
            deterministic stationary policy, int64 array of shape (S,); ``info``:
            ``{"iterations": number of policy evaluations, "seconds": wall time}``.

        Raises
        ------
        ValueError
            ``w`` of the wrong length or off the simplex.
        """
        t0 = time.perf_counter()
        w = self._check_weight(w)
        if self.method == "lp":
            return self._solve_occupancy(w, t0)
        pi, X, iterations = self._policy_iteration(w)
        values = (1.0 - self.gamma) * (self.mu @ X[:, 1:])
        pi = pi.astype(np.int64)
        pi.setflags(write=False)
        return Solution(values=values, policy=pi, info={"iterations": iterations, "seconds": time.perf_counter() - t0})

    def _policy_iteration(self, w):
        """Exact policy iteration for the reward ``R @ w`` (any ``w >= 0``): ``(pi, X, iterations)``,
        ``X[:, 0]`` the scalar and ``X[:, 1:]`` the vector state values of ``pi``."""
        S, A, d, g = self.n_states, self.n_actions, self.d, self.gamma
        st = self._states
        r = (self._R2 @ w).reshape(S, A)
        pi = np.argmax(r, axis=1)
        rhs = np.empty((S, d + 1))
        for iterations in range(1, _MAX_PI_ITERATIONS + 1):
            rhs[:, 0] = r[st, pi]
            rhs[:, 1:] = self.R[st, pi]
            X = self._linalg.solve_deterministic(pi, rhs.copy())
            Q = r + g * self._linalg.backup(X[:, 0])
            best = np.argmax(Q, axis=1)
            q_pi = Q[st, pi]
            switch = Q[st, best] > q_pi + SWITCH_RTOL * (1.0 + np.abs(q_pi))
            if not switch.any():
                break
            pi = np.where(switch, best, pi)
        else:  # pragma: no cover - policy iteration terminates in a handful of steps
            raise RuntimeError(f"policy iteration did not terminate in {_MAX_PI_ITERATIONS} iterations")
        return pi, X, iterations

    def _linear_optimum(self, c):
        """``(max_π c·V(π), V(π_c))`` for ``c >= 0``, exactly (policy iteration)."""
        c = np.asarray(c, dtype=np.float64)
        if not c.any():
            return 0.0, None
        pi, X, _ = self._policy_iteration(c)
        v = (1.0 - self.gamma) * (self.mu @ X[:, 1:])
        return float(c @ v), pi

    def _solve_occupancy(self, w, t0):
        """The ``method="lp"`` oracle call (see the class Notes)."""
        from .occupancy import OccupancyError, OccupancyProgram

        g = self.scalarization
        S, A, d = self.n_states, self.n_actions, self.d
        if self._vmax is None:  # best value of each objective alone, exactly
            self._vmax = np.array([self._linear_optimum(np.eye(d)[i])[0] for i in range(d)])
        support = w > 0
        dead = support & (self._vmax <= ZERO_VALUE)  # objectives no policy can raise above 0
        info = {}
        min_type = g.boundary == "min" or (not g.linear and g.linearize(np.ones((1, d))) is None)
        if (dead.any() and min_type) or not (support & ~dead).any():
            # Tchebycheff or PMean(p <= 0) with a dead objective, or no live one: OPT(w) = 0, every policy optimal
            _, pi_det = self._linear_optimum(w)
            policy = np.eye(A)[pi_det if pi_det is not None else np.zeros(S, dtype=np.int64)]
            info.update(solver="none (OPT(w) = 0)", status="optimal")
        else:
            if self._program is None:
                self._program = OccupancyProgram(self.P, self.R, self.gamma, self.mu, g)
            conic = not g.linear and g.boundary != "min"
            for tight in (False, True):
                policy, values, value, bound, c, info = self._occupancy_attempt(w, support & ~dead, dead, tight)
                gap = bound - value
                atol = CONIC_ATOL if (tight and conic) else OPT_ATOL
                if gap <= atol * (1.0 + float(np.abs(c).sum())):
                    break
            else:
                raise OccupancyError(
                    f"numerical-trouble: the policy read from solver {info.get('solver')}'s answer "
                    f"({info.get('status')}) is {gap:.3g} below a verified upper bound on OPT(w) "
                    f"(value {value:.9g}, bound {bound:.9g}) for {g!r}",
                    "numerical-trouble",
                )
            info.update(seconds=time.perf_counter() - t0)
            policy = np.ascontiguousarray(policy)
            policy.setflags(write=False)
            return Solution(values=values, policy=policy, info=info)
        values = self.evaluate(policy)
        info.update(value=0.0, upper_bound=0.0, gap=0.0, seconds=time.perf_counter() - t0)
        policy = np.ascontiguousarray(policy)
        policy.setflags(write=False)
        return Solution(values=values, policy=policy, info=info)

    def _occupancy_attempt(self, w, active, dead, tight):
        """One solve: the policy read from the solver's occupancy measure, its exact values and
        scalarized value, a verified upper bound on OPT(w) and the multiplier vector behind it."""
        from .occupancy import OccupancyError

        g, A, prog = self.scalarization, self.n_actions, self._program
        x, info = prog.solve(w, active, tight=tight)
        resid, neg = prog.flow_residual(x)
        if resid > FLOW_ATOL or neg < -FLOW_ATOL:
            raise OccupancyError(
                f"numerical-trouble: solver {info['solver']} ({info['status']}) returned an occupancy "
                f"measure that violates the flow constraints by {max(resid, -neg):.3g} > {FLOW_ATOL:g}",
                "numerical-trouble",
            )
        x = np.clip(x, 0.0, None)
        tot = x.sum(axis=1, keepdims=True)
        policy = np.where(tot > 0, x / np.where(tot > 0, tot, 1.0), 1.0 / A)
        policy = policy / policy.sum(axis=1, keepdims=True)
        values = self.evaluate(policy)
        value = float(g(w, np.clip(values, 0.0, None))[0, 0])
        bound, c = self._upper_bound(w, np.clip(values, 0.0, None), value, info, dead)
        info.update(value=value, upper_bound=bound, gap=bound - value, tight=tight)
        return policy, values, value, bound, c, info

    def _upper_bound(self, w, v, value, info, dead):
        """``(UB, c)``: ``OPT(w) <= g_w(v) - c·v + max_π c·V(π)`` for a supergradient ``c`` (see Notes)."""
        g = self.scalarization
        if info.get("solver") == "none (OPT(w) = 0)":
            return 0.0, np.zeros(self.d)
        if g.linear:
            c = w
        elif g.boundary == "min":
            lam = np.where(w > 0, np.asarray(info.get("multipliers", np.zeros(self.d)), dtype=np.float64), 0.0)
            lam = lam / lam.sum() if lam.sum() > 0 else (w > 0) / (w > 0).sum()
            c = lam * w
            return self._linear_optimum(c)[0], c  # min_i w_i v_i <= Σ λ_i w_i v_i
        else:  # PMean: reverse Hölder, c·v >= M_p(ŵ; v)·M_q(ŵ; c/ŵ) with q = p/(p-1), at c = the gradient
            p = g.p
            live = (w > 0) & ~dead
            W_L = float(w[live].sum())
            wh = w[live] / W_L
            b = np.maximum(v[live], 1e-300) ** (p - 1.0)  # c/ŵ for the gradient direction c = ŵ v^(p-1)
            with np.errstate(over="ignore", divide="ignore"):
                if p == 0.0:
                    Mq = float(np.exp(wh @ np.log(b)))
                else:
                    q = p / (p - 1.0)
                    Mq = float((wh @ b**q) ** (1.0 / q))
            c = np.zeros(self.d)
            c[live] = wh * b / Mq
            if not (np.isfinite(Mq) and Mq > 0 and np.all(np.isfinite(c))):
                return np.inf, np.zeros(self.d)
            return W_L ** (1.0 / p if p > 0 else 1.0) * self._linear_optimum(c)[0], c
        return self._linear_optimum(c)[0], c

    def fingerprint(self):
        """``"tabular:<16 hex digits>"``: a SHA-256 of the arrays, ``gamma``, ``value_range`` and, for
        ``method="lp"``, the method and the scalarization (policy iteration's dense and sparse solvers
        give the same answers and share a fingerprint).

        Examples
        --------
        >>> from palmopt.scalarizations import PMean
        >>> from oracles.tabular import demo_instance
        >>> mdp = demo_instance()
        >>> lp = TabularMOMDP(mdp.P, mdp.R, mdp.gamma, mdp.mu, method="lp")
        >>> half = TabularMOMDP(mdp.P, mdp.R, mdp.gamma, mdp.mu, scalarization=PMean(0.5))
        >>> len({mdp.fingerprint(), lp.fingerprint(), half.fingerprint()})
        3
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            for a in (self.P, self.R, self.mu):
                h.update(repr(a.shape).encode())
                h.update(a.tobytes())
            h.update(repr((self.gamma, self.value_range)).encode())
            if self.method == "lp":
                h.update(repr(("lp", self.scalarization)).encode())
            self._fingerprint = "tabular:" + h.hexdigest()[:16]
        return self._fingerprint

    def save_policy(self, policy, directory):
        """Save ``policy`` (deterministic or stochastic) as ``.npy`` in ``directory``; return the path.

        The file name is derived from a hash of the policy, so saving the same policy twice
        gives the same file.
        """
        policy = self._check_policy(policy)
        digest = hashlib.sha256(policy.dtype.str.encode() + repr(policy.shape).encode() + policy.tobytes())
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(os.fspath(directory), f"policy-{digest.hexdigest()[:16]}.npy")
        np.save(path, policy, allow_pickle=False)
        return path

    def load_policy(self, path):
        """Load a policy saved by :meth:`save_policy` (validated against this MDP's shape)."""
        return self._check_policy(np.load(path, allow_pickle=False))

    def __repr__(self):
        extra = f", method='lp', scalarization={self.scalarization!r}" if self.method == "lp" else ""
        return f"TabularMOMDP(S={self.n_states}, A={self.n_actions}, d={self.d}, gamma={self.gamma:g}{extra})"

    # ------------------------------------------------------------------ evaluation

    def value_function(self, policy):
        """Un-normalised state values ``V[s, i]`` of ``policy``, the solution of ``V = R_π + γ P_π V``.

        Parameters
        ----------
        policy : array_like
            Deterministic: integer array, shape (S,), entries in ``range(A)``.  Stochastic: float
            array, shape (S, A), rows are distributions (within ``1e-9``).

        Returns
        -------
        ndarray, shape (S, d)
        """
        policy = self._check_policy(policy)
        if policy.ndim == 1:
            return self._linalg.solve_deterministic(policy, np.array(self.R[self._states, policy]))
        P_pi = np.einsum("sa,sat->st", policy, self.P)
        R_pi = np.einsum("sa,sad->sd", policy, self.R)
        return self._linalg.solve_matrix(P_pi, R_pi)

    def evaluate(self, policy):
        r"""Normalised value vector ``(1-γ) μ^T (I - γ P_π)^{-1} R_π`` of ``policy``, shape (d,).

        ``policy`` is as in :meth:`value_function`.

        Examples
        --------
        >>> import numpy as np
        >>> from oracles.tabular import demo_instance
        >>> mdp = demo_instance()
        >>> sol = mdp([0.2, 0.3, 0.5])
        >>> bool(np.allclose(mdp.evaluate(sol.policy), sol.values))
        True
        >>> mdp.evaluate(np.full((6, 4), 0.25)).round(4)      # the uniformly random policy
        array([0.4907, 0.5936, 0.4744])
        """
        return (1.0 - self.gamma) * (self.mu @ self.value_function(policy))

    # ------------------------------------------------------------------ reference front

    def reference_front(self, *, tol=1e-12, return_weights=False):
        """The exact convex coverage set, by enumerating every deterministic stationary policy.

        Parameters
        ----------
        tol : float, default 1e-12
            A value vector ``v`` is kept iff it is a maximiser of ``w·v`` within ``tol`` for some
            ``w`` on the simplex, i.e. iff ``max_w min_u w·(v - u) >= -tol`` over all achievable
            ``u``.
        return_weights : bool, default False
            Also return, for every point, a weight at which it is such a maximiser.

        Returns
        -------
        V : ndarray, shape (n, d)
            The distinct supported value vectors (values on one cell of a grid of width
            ``palmopt.tolerances.SAME_VALUE = 1e-10`` merged), sorted lexicographically.
        W : ndarray, shape (n, d)
            Only with ``return_weights``: ``W[k]`` is a weight at which ``V[k]`` is optimal.

        Raises
        ------
        ValueError
            When ``A**S`` exceeds ``1e6`` policies.

        Notes
        -----
        Optimal policies can be taken deterministic and stationary, so ``OPT(w)`` is the maximum
        of ``w·v`` over the enumerated vectors.  The decision for each ``v`` is the linear program
        "maximise ``m`` subject to ``w·(v - u) >= m`` for all ``u``, ``w`` on the simplex", i.e.
        :func:`palmopt.certify.max_shortfall` of the other vectors against ``v``; cheap exact
        shortcuts settle most points first: points beaten by more than ``tol`` in every
        coordinate are out, points that win at one of ~2,000 probe weights are in, and points
        deep inside the hull of the winners pushed down (Qhull, margin ``1e-9``) are out.  The
        rest are solved by HiGHS with constraint generation: a point is out when the LP's
        dual-verified bound is below ``-tol``, in when the margin at the solver's ``w``,
        recomputed with NumPy, is at least ``-tol``; where they disagree and no constraint is
        left to add, NumPy decides, within the LP accuracy ``1e-9``
        (:func:`oracles.tabular.front.convex_coverage_set`).  Ties count: a point on a supported
        facet, or one weakly dominated but tied at a face of the simplex, is a maximiser and is
        kept.  A convex-hull-vertex test would be wrong: the hull vertex ``(0.1, 0.1)`` of
        ``{(1, 0), (0, 1), (0.1, 0.1)}`` is preferred by no ``w >= 0``.

        Without enumeration, ``palmopt.ccs(mdp)`` computes the exact convex coverage set of any
        instance by the adaptive corner-weight search; on ties it keeps the vector the oracle
        returns, so it can be a subset of ``reference_front()``.

        Examples
        --------
        >>> from oracles.tabular import demo_instance
        >>> front = demo_instance().reference_front()
        >>> front.shape
        (11, 3)
        """
        tol = float(tol)
        if not (tol >= 0.0 and np.isfinite(tol)):
            raise ValueError(f"`tol` must be a finite number >= 0; got {tol}.")
        S, A = self.n_states, self.n_actions
        if S * math.log10(A) > 7 or A**S > MAX_ENUMERATED:
            raise ValueError(
                f"reference_front() enumerates all A**S deterministic policies and is limited to "
                f"{MAX_ENUMERATED:,} of them; this MDP has A**S = {A}**{S}. Use a smaller instance."
            )
        V = deterministic_values(self.P, self.R, self.mu, self.gamma)
        _, first = np.unique(np.round(V / SAME_VALUE), axis=0, return_index=True)  # duplicates
        V = V[np.sort(first)]
        front, W = convex_coverage_set(V, tol)
        order = np.lexsort(front.T[::-1])
        front, W = front[order], W[order]
        return (front, W) if return_weights else front

    # ------------------------------------------------------------------ validation

    def _check_weight(self, w):
        if isinstance(w, (str, bytes)):
            raise TypeError(f"`w` must be a numeric array of length d = {self.d}; got {type(w).__name__}.")
        try:
            a = np.asarray(w, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`w` must be a numeric array of length d = {self.d}; got {type(w).__name__}.") from exc
        if a.shape != (self.d,):
            raise ValueError(f"`w` must have shape (d,) = ({self.d},); got shape {a.shape}.")
        return check_simplex(a, self.d, name="w")[0]

    def _check_policy(self, policy):
        S, A = self.n_states, self.n_actions
        pol = np.asarray(policy)
        if pol.dtype == bool or not (np.issubdtype(pol.dtype, np.integer) or np.issubdtype(pol.dtype, np.floating)):
            raise TypeError(
                f"`policy` must be an integer array (S,) or a float array (S, A); got dtype {pol.dtype}."
            )
        if pol.ndim == 1:
            if not np.issubdtype(pol.dtype, np.integer):
                raise TypeError(
                    f"a deterministic `policy` must be an integer array of shape (S,); got dtype {pol.dtype} "
                    f"(a stochastic policy has shape (S, A) = ({S}, {A}))."
                )
            if pol.shape != (S,):
                raise ValueError(f"a deterministic `policy` must have shape (S,) = ({S},); got {pol.shape}.")
            if pol.min() < 0 or pol.max() >= A:
                raise ValueError(
                    f"`policy` entries must be actions in range({A}); got values in [{pol.min()}, {pol.max()}]."
                )
            return np.ascontiguousarray(pol, dtype=np.int64)
        if pol.ndim == 2:
            if pol.shape != (S, A):
                raise ValueError(f"a stochastic `policy` must have shape (S, A) = ({S}, {A}); got {pol.shape}.")
            pol = np.ascontiguousarray(pol, dtype=np.float64)
            if not np.all(np.isfinite(pol)):
                raise ValueError("a stochastic `policy` must be finite.")
            sums = pol.sum(axis=1)
            bad = (pol.min(axis=1) < 0.0) | (np.abs(sums - 1.0) > STOCHASTIC_ATOL)
            if bad.any():
                s = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"rows of a stochastic `policy` must be distributions (entries >= 0, sum 1); "
                    f"row {s} is {pol[s].tolist()} with sum {sums[s]:.12g}."
                )
            return pol
        raise ValueError(f"`policy` must have shape (S,) or (S, A) = ({S}, {A}); got {pol.shape}.")
