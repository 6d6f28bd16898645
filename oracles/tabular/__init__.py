r"""Exact tabular multi-objective MDPs: the oracle, its exact front and instance generators.

A :class:`TabularMOMDP` is a discounted MDP with ``S`` states, ``A`` actions and ``d`` reward
functions; called with a weight ``w`` on the simplex it returns the optimal deterministic
stationary policy of the scalarised MDP with its normalised value vector in ``[0, 1]^d``; with
``method="lp"`` or a non-linear ``scalarization`` (``Tchebycheff()``, ``PMean(p)``) it solves the
occupancy-measure programme in cvxpy and returns the optimal stochastic policy.  For
small instances :meth:`TabularMOMDP.reference_front` returns the exact convex coverage set by
enumerating every deterministic stationary policy (``palmopt.ccs(mdp)`` computes it without
enumeration).

Modules
-------
model
    :class:`TabularMOMDP`: validation, policy iteration, evaluation, saved policies.
occupancy
    The occupancy-measure programme (cvxpy) behind ``method="lp"``; :class:`OccupancyError`.
linalg
    The exact linear solves of policy evaluation (dense LAPACK or sparse LU).
front
    The exact convex coverage set of a finite set of value vectors.
learned
    :class:`SampledModelOracle`: a *learned* RL oracle (a model estimated from sampled
    transitions, exact planning on it, Monte-Carlo values with standard errors) whose truth is
    known -- the testbed of noisy-oracle certificates.
instances
    Seeded generators: :func:`random_momdp`, :func:`many_policies`, :func:`few_policies`,
    :func:`demo_instance`.
"""

from .instances import demo_instance, few_policies, many_policies, random_momdp
from .learned import SampledModelOracle
from .model import TabularMOMDP
from .occupancy import OccupancyError

__all__ = ["TabularMOMDP", "OccupancyError", "SampledModelOracle", "random_momdp", "many_policies", "few_policies", "demo_instance"]
