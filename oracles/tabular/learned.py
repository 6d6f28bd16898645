r"""A *learned* oracle on a tabular MOMDP: plan on a sampled model, report Monte-Carlo values.

:class:`SampledModelOracle` is what an RL oracle looks like to palmopt (DESIGN.md §6), on an
instance whose truth is known exactly: at a weight ``w`` it

1. *learns*: draws ``n = steps // (S·A)`` transitions from every state-action pair of the true
   MDP (a generative model; ``steps`` is the budget of environment steps) and estimates
   ``P̂(s'|s,a)`` by the empirical frequencies (rewards ``R`` are known);
2. *plans*: solves the scalarised estimated MDP ``(P̂, R·w, γ)`` exactly (policy iteration,
   :class:`~oracles.tabular.model.TabularMOMDP`), so the policy ``π̂_w`` is optimal for the wrong
   model -- suboptimal by an amount that shrinks like ``1/sqrt(n)`` and is not declared;
3. *evaluates*: runs ``rollouts`` episodes of ``π̂_w`` in the true MDP and returns the mean of the
   normalised discounted returns ``(1-γ) Σ_t γ^t R(s_t, a_t)`` with its standard errors.

The truth of a study is the MDP's exact evaluation (:meth:`SampledModelOracle.true_values`,
also in ``info["true_values"]``) and its exact front (:meth:`reference_front`, or
``palmopt.ccs(oracle.mdp)``).
"""

import math

import numpy as np

from palmopt.oracle import Solution
from palmopt.validation import check_count, check_fraction, check_simplex

from ..testbeds import _check_seed, _policy_key, _rng, _weight_key
from .model import TabularMOMDP

__all__ = ["SampledModelOracle"]

#: Roll-outs are truncated at the horizon ``H`` where ``γ^H <= TRUNCATION``: the normalised
#: return then misses at most ``TRUNCATION · max|R|`` (a bias far below any standard error).
TRUNCATION = 1e-10


def _as_mdp(mdp):
    inner = getattr(mdp, "momdp", mdp)  # an MO-Gymnasium table holds its TabularMOMDP
    if not isinstance(inner, TabularMOMDP):
        raise TypeError(
            f"`mdp` must be a TabularMOMDP (or an object with one as `momdp`, like an MO-Gymnasium table); "
            f"got {type(mdp).__name__}."
        )
    return inner


def _cumulative(probs):
    """Row-wise cumulative sums, exactly 1.0 from each row's last non-zero entry on: a uniform
    draw ``u < 1`` then never lands on a zero-probability entry, whatever the rounding."""
    cum = np.cumsum(probs, axis=1)
    last = probs.shape[1] - 1 - np.argmax(probs[:, ::-1] > 0, axis=1)
    cum[np.arange(probs.shape[1])[None, :] >= last[:, None]] = 1.0
    return cum


class SampledModelOracle:
    r"""An RL oracle on a tabular MOMDP: a sampled model, exact planning on it, Monte-Carlo values.

    Parameters
    ----------
    mdp : TabularMOMDP or an object with a ``momdp`` (an MO-Gymnasium table)
        The true environment.
    steps : int
        Budget of environment steps per oracle call (training), split evenly over the ``S·A``
        state-action pairs: ``n = steps // (S·A) >= 1`` samples each.
    rollouts : int, default 1000
        Episodes per value estimate (>= 2).
    horizon : int, optional
        Length of a roll-out; default the smallest ``H`` with ``γ^H <= 1e-10``.
    seed : int, default 0
        Training seed: ``oracle(w)`` depends on ``(seed, w)`` only.
    error : (float, float), optional
        A declared error ``(eta_m, eta_a)`` (e.g. from a PAC bound); by default undeclared (no
        ``error`` attribute).

    Attributes
    ----------
    mdp : TabularMOMDP
    d : int
    value_range : (float, float)
        The MDP's (the estimates are means of normalised returns, inside it).
    samples_per_pair, horizon : int

    Notes
    -----
    ``Solution.stderr`` is the sample standard deviation of the ``rollouts`` normalised returns
    over ``sqrt(rollouts)``, per objective (0 when every episode returns the same, e.g. a
    deterministic environment and start).  Truncating at ``H`` lowers the mean by at most
    ``γ^H max|R| <= 1e-10`` (rewards in [0, 1]).  :meth:`evaluate` runs ``repeats × rollouts``
    fresh episodes (seeded by ``(seed, policy, number of earlier evaluations of it)``).

    Examples
    --------
    >>> import numpy as np
    >>> from oracles.tabular.instances import random_momdp
    >>> from oracles.tabular.learned import SampledModelOracle
    >>> mdp = random_momdp(5, 3, 2, rng=0)
    >>> oracle = SampledModelOracle(mdp, steps=1500, rollouts=500, seed=1)
    >>> oracle
    SampledModelOracle(TabularMOMDP(S=5, A=3, d=2, gamma=0.9), steps=1500, rollouts=500, seed=1)
    >>> sol = oracle([0.5, 0.5])
    >>> sol.policy.shape, sol.stderr.shape, bool(np.all(np.abs(sol.values - sol.info["true_values"]) < 5 * sol.stderr))
    ((5,), (2,), True)
    >>> w = np.array([0.5, 0.5])
    >>> regret = w @ mdp(w).values - w @ oracle.true_values(sol.policy)
    >>> bool(0 <= regret < 0.05)
    True
    >>> bool(np.allclose(oracle.evaluate(sol.policy, repeats=4).stderr, sol.stderr / 2, rtol=0.2))
    True
    """

    def __init__(self, mdp, *, steps, rollouts=1000, horizon=None, seed=0, error=None):
        self.env = mdp
        self.mdp = m = _as_mdp(mdp)
        S, A = m.n_states, m.n_actions
        self.steps = check_count(steps, "steps")
        if self.steps < S * A:
            raise ValueError(f"`steps` must be >= S·A = {S * A} (one sample per state-action pair); got {self.steps}.")
        self.samples_per_pair = self.steps // (S * A)
        self.rollouts = check_count(rollouts, "rollouts", minimum=2)
        if horizon is None:
            g = m.gamma
            horizon = 1 if g == 0.0 else max(1, math.ceil(math.log(TRUNCATION) / math.log(g)))
        self.horizon = check_count(horizon, "horizon")
        self.seed = _check_seed(seed)
        if error is not None:
            try:
                pair = tuple(error)
            except TypeError as exc:
                raise TypeError(f"`error` must be a pair (eta_m, eta_a) or None; got {error!r}.") from exc
            if len(pair) != 2:
                raise ValueError(f"`error` must be a pair (eta_m, eta_a); got {error!r}.")
            error = tuple(check_fraction(e, f"error[{i}]", allow_zero=True) for i, e in enumerate(pair))
        self._error = error
        self.d = m.d
        self.value_range = m.value_range
        self._counts = {}
        # successor lists of every (s, a): the probabilities of P row by row, padded with 1.0
        P2 = m.P.reshape(S * A, S)
        self._P = P2 / P2.sum(axis=1, keepdims=True)
        k = int((self._P > 0).sum(axis=1).max())
        order = np.argsort(-self._P, axis=1, kind="stable")[:, :k]
        probs = np.take_along_axis(self._P, order, axis=1)
        self._succ, self._cum = order, _cumulative(probs)
        self._mu_cum = _cumulative(m.mu[None, :])[0]

    def __getattr__(self, name):
        if name == "error" and self.__dict__.get("_error") is not None:
            return self.__dict__["_error"]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self):
        return dict(self.__dict__)

    def __setstate__(self, state):
        self.__dict__.update(state)

    # ------------------------------------------------------------------ protocol

    def __call__(self, w):
        """Learn a model from ``steps`` samples, plan for ``w`` on it, estimate the policy's values.

        Returns
        -------
        Solution
            ``policy``: deterministic, int64 (S,); ``values``, ``stderr``: the Monte-Carlo
            estimate; ``info``: ``true_values`` (exact, for studies only), ``planned_values``
            (the values the estimated model predicts), ``samples_per_pair``.
        """
        w = check_simplex(np.asarray(w, dtype=np.float64), self.d, name="w")[0]
        m = self.mdp
        S, A = m.n_states, m.n_actions
        key = _weight_key(w)
        rng = _rng(self.seed, 10, key, 0)
        counts = rng.multinomial(self.samples_per_pair, self._P)
        P_hat = (counts / self.samples_per_pair).reshape(S, A, S)
        model = TabularMOMDP(P_hat, m.R, m.gamma, m.mu, value_range=m.value_range)
        planned = model(w)
        policy = planned.policy
        values, se = self._estimate(policy, self.rollouts, _rng(self.seed, 11, key, 0))
        info = {
            "true_values": m.evaluate(policy),
            "planned_values": np.array(planned.values),
            "samples_per_pair": self.samples_per_pair,
        }
        return Solution(values=values, policy=policy, info=info, stderr=se)

    def evaluate(self, policy, *, repeats=1):
        """A fresh Monte-Carlo estimate of ``policy`` from ``repeats × rollouts`` new episodes.

        ``policy``: deterministic (S,) int or stochastic (S, A), as for the MDP.
        """
        repeats = check_count(repeats, "repeats")
        pol = np.asarray(policy)
        truth = self.mdp.evaluate(pol)  # also validates the policy against the MDP
        key = _policy_key(pol)
        count = self._counts.get(key, 0)
        self._counts[key] = count + 1
        values, se = self._estimate(pol, repeats * self.rollouts, _rng(self.seed, 12, key, count))
        return Solution(
            values=values,
            policy=policy,
            info={"true_values": truth, "repeats": repeats, "evaluation": count},
            stderr=se,
        )

    def true_values(self, policy):
        """The exact normalised values of ``policy`` (the MDP's policy evaluation; for studies)."""
        return self.mdp.evaluate(policy)

    def reference_front(self, *args, **kwargs):
        """The MDP's exact convex coverage set (the truth of a study)."""
        return self.mdp.reference_front(*args, **kwargs)

    def with_seed(self, seed):
        """The same oracle with another training (and evaluation) seed."""
        return SampledModelOracle(
            self.env, steps=self.steps, rollouts=self.rollouts, horizon=self.horizon, seed=seed, error=self._error
        )

    def fingerprint(self):
        err = "" if self._error is None else f", error={list(self._error)}"
        return (
            f"sampled-model({self.mdp.fingerprint()}, steps={self.steps}, rollouts={self.rollouts}, "
            f"horizon={self.horizon}, seed={self.seed}{err})"
        )

    def save_policy(self, policy, directory):
        return self.mdp.save_policy(policy, directory)

    def load_policy(self, path):
        return self.mdp.load_policy(path)

    def __repr__(self):
        err = "" if self._error is None else f", error={self._error}"
        return f"SampledModelOracle({self.mdp!r}, steps={self.steps}, rollouts={self.rollouts}, seed={self.seed}{err})"

    # ------------------------------------------------------------------ roll-outs

    def _estimate(self, policy, n, rng):
        returns = self.rollout_returns(policy, n, rng)
        values = returns.mean(axis=0)
        se = returns.std(axis=0, ddof=1) / math.sqrt(n)
        lo, hi = self.value_range
        return np.clip(values, lo, hi), se

    def rollout_returns(self, policy, n, rng):
        """Normalised discounted returns ``(1-γ) Σ_{t<H} γ^t R(s_t, a_t)`` of ``n`` episodes, shape (n, d).

        ``rng``: a numpy Generator (or seed).
        """
        rng = np.random.default_rng(rng)
        m = self.mdp
        S, A, g = m.n_states, m.n_actions, m.gamma
        pol = np.asarray(policy)
        stochastic = pol.ndim == 2
        if stochastic:
            cum_pi = _cumulative(pol)
        s = np.minimum(np.searchsorted(self._mu_cum, rng.random(n), side="right"), S - 1)
        ret = np.zeros((n, self.d))
        disc = 1.0
        for _ in range(self.horizon):
            if stochastic:
                a = np.minimum((rng.random(n)[:, None] >= cum_pi[s]).sum(axis=1), A - 1)
            else:
                a = pol[s]
            ret += disc * m.R[s, a]
            idx = s * A + a
            s = self._succ[idx, (rng.random(n)[:, None] >= self._cum[idx]).sum(axis=1)]
            disc *= g
        return (1.0 - g) * ret

