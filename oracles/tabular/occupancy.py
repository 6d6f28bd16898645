r"""The occupancy-measure programme of a tabular MOMDP, written in cvxpy.

Over stochastic stationary policies the normalised occupancy measure
``x(s, a) = (1-γ) Σ_t γ^t Pr(s_t = s, a_t = a)`` ranges over the polytope

.. math:: Σ_a x(s', a) - γ Σ_{s,a} P(s'|s,a)\, x(s, a) = (1-γ)\, μ(s'), \qquad x ≥ 0,

(so ``Σ x = 1``) and the normalised value vector of :class:`~oracles.tabular.TabularMOMDP` is
``V = R^T x``.  The scalarized optimum ``max_x g_w(R^T x)`` is therefore a convex programme:

* ``Linear()``: the LP ``max w·R^T x``;
* ``Tchebycheff()``: the LP ``max t`` s.t. ``t ≤ w_i (R^T x)_i`` on the support of ``w``
  (epigraph of the minimum);
* ``PMean(p)``: ``max Σ w_i (R^T x)_i^p`` for ``0 < p < 1`` (power cone), ``max Σ w_i log (R^T x)_i``
  for ``p = 0`` (exponential cone), ``min Σ w_i (R^T x)_i^p`` for ``p < 0`` (power cone), over
  the support of ``w`` -- the same maximisers as the power mean.

cvxpy chooses the solver (CLARABEL or HiGHS; nothing commercial).  One problem is compiled per
support of ``w`` (the weights are a cvxpy ``Parameter``), so repeated calls only re-solve.
Nothing returned here is trusted by the oracle: it checks the flow constraints and re-evaluates
the extracted policy exactly (:meth:`~oracles.tabular.TabularMOMDP.__call__`).
"""

import threading
import warnings

import numpy as np

from palmopt.scalarizations import PMean, Tchebycheff

__all__ = ["OccupancyError", "OccupancyProgram", "TIGHT"]

#: CLARABEL's gap and feasibility tolerances on the second try (its defaults are 1e-8).
TIGHT = 1e-10


class OccupancyError(RuntimeError):
    """The occupancy programme could not be solved, or its answer did not verify.

    ``status`` is ``"solver-failed"`` (cvxpy raised, or the solver's status was not optimal)
    or ``"numerical-trouble"`` (the answer violates the flow constraints, or the policy read
    from it is not optimal when evaluated exactly).
    """

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status

    def __reduce__(self):
        return (type(self), (self.args[0], self.status))


class OccupancyProgram:
    """``max_x g_w(R^T x)`` over the occupancy polytope, for one MDP and one scalarization.

    Parameters
    ----------
    P : ndarray, shape (S, A, S)
    R : ndarray, shape (S, A, d)
    gamma : float in [0, 1)
    mu : ndarray, shape (S,)
    scalarization : palmopt.scalarizations.Scalarization

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.scalarizations import Tchebycheff
    >>> from oracles.tabular.occupancy import OccupancyProgram
    >>> P = np.ones((1, 2, 1)); R = np.array([[[1.0, 0.0], [0.0, 1.0]]])   # one state, two actions
    >>> prog = OccupancyProgram(P, R, 0.5, np.ones(1), Tchebycheff())
    >>> x, info = prog.solve(np.array([0.5, 0.5]), np.array([True, True]))
    >>> x.round(4)                                   # the even mixture maximises min(v_1, v_2) / 2
    array([[0.5, 0.5]])
    """

    def __init__(self, P, R, gamma, mu, scalarization):
        S, A, _ = P.shape
        self.n_states, self.n_actions, self.d = S, A, R.shape[2]
        self.scalarization = scalarization
        self.R2 = np.ascontiguousarray(R.reshape(S * A, self.d))
        # flow matrix: A_flow[s', (s, a)] = [s = s'] - γ P(s'|s, a)
        E = np.repeat(np.eye(S), A, axis=1)
        self.A_flow = E - gamma * P.reshape(S * A, S).T
        self.b = (1.0 - gamma) * np.asarray(mu, dtype=np.float64)
        self._problems = {}
        self._lock = threading.Lock()  # one solve at a time: the compiled problems share their parameters

    def __getstate__(self):  # compiled cvxpy problems are rebuilt after unpickling
        state = dict(self.__dict__)
        state["_problems"] = {}
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def flow_residual(self, x):
        """``max |A_flow x - b|`` and the most negative entry of ``x`` (0 if none), NumPy."""
        x = np.asarray(x, dtype=np.float64).ravel()
        return float(np.abs(self.A_flow @ x - self.b).max()), float(min(0.0, x.min()))

    def _build(self, active):
        import cvxpy as cp

        g = self.scalarization
        d = self.d
        x = cp.Variable(self.n_states * self.n_actions, nonneg=True)
        w = cp.Parameter(d, nonneg=True)
        v = self.R2.T @ x
        idx = np.flatnonzero(active)
        cons = [self.A_flow @ x == self.b]
        epi = None
        if isinstance(g, Tchebycheff):
            t = cp.Variable()
            epi = t <= cp.multiply(w[idx], v[idx])
            cons.append(epi)
            objective = cp.Maximize(t)
        elif isinstance(g, PMean) and not g.linear:
            if g.p > 0:
                objective = cp.Maximize(w[idx] @ cp.power(v[idx], g.p))
            elif g.p == 0:
                objective = cp.Maximize(w[idx] @ cp.log(v[idx]))
            else:
                objective = cp.Minimize(w[idx] @ cp.power(v[idx], g.p))
        else:  # the weighted sum
            objective = cp.Maximize(w @ v)
        return cp.Problem(objective, cons), x, w, epi

    def solve(self, w, active, *, tight=False):
        """Solve at the weight ``w`` with the coordinates ``active`` (bool, shape (d,)) in the objective.

        ``tight=True`` re-solves with CLARABEL at tolerances ``TIGHT`` (the oracle's second try
        when the first answer does not verify); otherwise cvxpy chooses the solver.

        Returns
        -------
        x : ndarray, shape (S, A)
            The solver's occupancy measure (not verified here).
        info : dict
            ``solver``, ``status``, ``objective`` and, for Tchebycheff, ``multipliers``: the
            solver's multipliers of the epigraph constraints (length d, 0 off ``active``).

        Raises
        ------
        OccupancyError
            cvxpy raised, or the solver did not report an optimal status (both named).
        """
        with self._lock:
            return self._solve(w, active, tight)

    def _solve(self, w, active, tight):
        import cvxpy as cp

        key = tuple(bool(a) for a in active)
        if key not in self._problems:
            self._problems[key] = self._build(np.array(key))
        prob, x, w_par, epi = self._problems[key]
        w_par.value = np.asarray(w, dtype=np.float64)
        kwargs = {}
        if tight and "CLARABEL" in cp.installed_solvers():
            kwargs = dict(solver="CLARABEL", tol_gap_abs=TIGHT, tol_gap_rel=TIGHT, tol_feas=TIGHT, max_iter=500)
        try:
            with warnings.catch_warnings():  # "solution may be inaccurate": the oracle verifies every answer
                warnings.simplefilter("ignore")
                prob.solve(**kwargs)
        except cp.SolverError as exc:
            raise OccupancyError(
                f"cvxpy could not solve the occupancy programme of {self.scalarization!r}: {exc}", "solver-failed"
            ) from exc
        stats = prob.solver_stats
        solver = getattr(stats, "solver_name", None) or "unknown"
        if prob.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or x.value is None:
            raise OccupancyError(
                f"solver {solver} returned status {prob.status!r} on the occupancy programme of "
                f"{self.scalarization!r}",
                "solver-failed",
            )
        info = {"solver": solver, "status": prob.status, "objective": float(prob.value)}
        if epi is not None:
            lam = np.zeros(self.d)
            if epi.dual_value is not None:
                lam[np.flatnonzero(key)] = np.abs(np.atleast_1d(epi.dual_value))
            info["multipliers"] = lam.tolist()
        return np.asarray(x.value, dtype=np.float64).reshape(self.n_states, self.n_actions), info
