r"""Scalarizations: how a user with weight ``w`` values a reward vector ``v``.

A scalarization maps weights ``W`` (n, d), rows ``>= 0``, and reward vectors ``V`` (k, d),
entries ``>= 0``, to the (n, k) matrix of values ``g_w(v)``.  Every one here is

* **monotone in v**: ``v <= v'`` coordinate-wise gives ``g_w(v) <= g_w(v')``;
* **positively homogeneous in w** (degree 1): ``g_{cw}(v) = c·g_w(v)`` for ``c > 0``, so the
  maximiser of ``g_w`` over any set depends on the direction of ``w`` only (an oracle called at
  a net point ``l/|l|`` maximises ``g_l`` too);
* **concave in v**, so over stochastic policies (a convex set of values) the optimum is a convex
  programme (:mod:`oracles.tabular.occupancy`);
* **support convention**: a coordinate with ``w_i = 0`` is ignored (it neither counts in the
  minimum of :class:`Tchebycheff` nor, for :class:`PMean` with ``p <= 0``, makes ``0^0`` vanish).

PALM's rounding lemma (``docs/design.md`` §6) needs more: a *rounding form* ``h_w(v)`` that is
monotone in ``w`` (on a fixed support, or across supports), positively homogeneous in ``w``,
whose maximisers are those of ``g_w``, and a rule for the coordinates the net rounds to zero.
:meth:`Scalarization.rounding_budget` gives the ``(eps, delta)`` PALM must be run at for the
rounding form so that the portfolio is an ``(eps, delta)``-portfolio for ``g``, and refuses the
scalarizations for which the lemma fails (``PMean`` with ``p <= 0``).

Examples
--------
>>> import numpy as np
>>> from palmopt.scalarizations import Linear, Tchebycheff, PMean
>>> W = np.array([[0.5, 0.5], [1.0, 0.0]])
>>> V = np.array([[1.0, 0.0], [0.6, 0.6]])
>>> Linear()(W, V)
array([[0.5, 0.6],
       [1. , 0.6]])
>>> Tchebycheff()(W, V)                     # min over the support of w of w_i v_i
array([[0. , 0.3],
       [1. , 0.6]])
>>> PMean(0)(W, V).round(4)                 # weighted geometric mean
array([[0. , 0.6],
       [1. , 0.6]])
>>> PMean(0.5), PMean(0.5) == PMean(0.5), PMean(0.5) == PMean(0.25)
(PMean(p=0.5), True, False)
"""

import math
import numbers
from dataclasses import dataclass

import re

import numpy as np

from .tolerances import RANGE_ATOL

__all__ = ["Scalarization", "Linear", "Tchebycheff", "PMean", "scalarization_of"]


def _as_matrix(x, name):
    """``x`` as a finite (n, d) array ``>= 0``; entries in ``[-RANGE_ATOL, 0)`` (rounding) are set to 0."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"`{name}` must be a 1-D or 2-D array; got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"`{name}` must be finite.")
    if a.size and a.min() < 0.0:
        if a.min() >= -RANGE_ATOL:
            return np.maximum(a, 0.0)
        raise ValueError(f"`{name}` must be >= 0 (scalarizations are defined on the non-negative orthant); "
                         f"got a minimum of {a.min():.6g}.")
    return a


def _inputs(W, V):
    W, V = _as_matrix(W, "W"), _as_matrix(V, "V")
    if W.shape[1] != V.shape[1]:
        raise ValueError(f"`W` and `V` must have the same number of columns d; got {W.shape[1]} and {V.shape[1]}.")
    return W, V


class Scalarization:
    """Base class: ``g(W, V) -> (n, k)``; see the module docstring for the properties.

    Subclasses define :meth:`__call__`, :meth:`rounding_score` and :meth:`rounding_budget`,
    and say whether the rounding form is linear in ``w`` over transformed values
    (:meth:`linearize`, ``None`` otherwise) and how the net's dropped coordinates are handled
    (``boundary``: ``"additive"`` or ``"min"``).
    """

    #: ``True`` for the weighted sum (corner weights and LP certificates apply).
    linear = False
    #: How PALM's rounding handles coordinates below ``tau``: ``"additive"`` (they cost at most
    #: ``delta``) or ``"min"`` (they force ``OPT(w) <= tau``).
    boundary = "additive"

    def __call__(self, W, V):  # pragma: no cover - abstract
        raise NotImplementedError

    def linearize(self, V):
        """Values ``U`` with ``h_w(v) = w·u``, or ``None`` when the rounding form is not linear."""
        return None

    def rounding_score(self, L, V):
        """The rounding form ``h_l(v)`` at (unnormalised) net corners ``L`` (n, d): (n, k)."""
        U = self.linearize(V)
        return _as_matrix(L, "L") @ U.T if U is not None else self(L, V)

    def rounding_budget(self, eps, delta):
        """``(eps_h, delta_h)``: run PALM at this target for the rounding form to get ``(eps, delta)``."""
        return float(eps), float(delta)


@dataclass(frozen=True)
class Linear(Scalarization):
    r"""The weighted sum ``g_w(v) = w·v``.

    Monotone in ``v`` (as ``w >= 0``), linear hence positively homogeneous
    in ``w`` and monotone in ``w`` for ``v >= 0`` (across supports: an added coordinate adds
    ``w_i v_i >= 0``), linear hence concave in ``v``.  PALM's rounding lemma holds with the
    additive boundary rule: coordinates below ``tau = delta/d`` contribute at most ``delta``.

    Examples
    --------
    >>> from palmopt.scalarizations import Linear
    >>> Linear()([[0.25, 0.75]], [[1.0, 0.0], [0.0, 1.0]])
    array([[0.25, 0.75]])
    """

    linear = True

    def __call__(self, W, V):
        W, V = _inputs(W, V)
        return W @ V.T

    def linearize(self, V):
        return _as_matrix(V, "V")


@dataclass(frozen=True)
class Tchebycheff(Scalarization):
    r"""The weighted minimum ``g_w(v) = min_{i : w_i > 0} w_i v_i`` (0 when ``w = 0``).

    Monotone in ``v``; positively homogeneous in ``w``; a minimum of linear functions, hence
    concave in ``v``; monotone in ``w`` **on a fixed support** (``l <= w`` with the same support
    gives ``g_l <= g_w``) but not across supports (a new coordinate enters the minimum).  PALM's
    rounding lemma holds with the min-type boundary rule: if some ``w_i`` with ``0 < w_i < tau``
    is rounded to 0, then ``OPT(w) <= w_i v_i < tau <= delta`` and the target
    ``(1-eps)·OPT(w) - delta`` is negative; otherwise the rounding keeps the support.

    Examples
    --------
    >>> from palmopt.scalarizations import Tchebycheff
    >>> Tchebycheff()([[0.5, 0.5], [0.0, 1.0]], [[0.2, 0.8]])
    array([[0.1],
           [0.8]])
    """

    boundary = "min"

    def __call__(self, W, V, chunk=4096):
        W, V = _inputs(W, V)
        n, k = W.shape[0], V.shape[0]
        out = np.empty((n, k))
        step = max(1, chunk // max(k, 1))
        for s in range(0, n, step):
            Ws = W[s : s + step]
            X = Ws[:, None, :] * V[None, :, :]
            X = np.where((Ws > 0.0)[:, None, :], X, np.inf)
            m = X.min(axis=2)
            out[s : s + step] = np.where(np.isinf(m), 0.0, m)
        return out


@dataclass(frozen=True)
class PMean(Scalarization):
    r"""The weighted power mean, extended to every ``w >= 0`` by homogeneity.

    For ``w`` on the simplex, ``g_w(v) = (Σ_i w_i v_i^p)^{1/p}`` for ``p != 0`` and the weighted
    geometric mean ``Π_i v_i^{w_i}`` for ``p = 0`` (the limit ``p -> 0``); ``p = 1`` is the
    weighted sum.  Off the simplex, ``g_w = |w|_1·g_{w/|w|_1}`` (0 for ``w = 0``).  Support
    convention: coordinates with ``w_i = 0`` are ignored, so for ``p <= 0`` a zero value counts
    (``g = 0``) only where its weight is positive.

    Parameters
    ----------
    p : real number <= 1, finite

    Notes
    -----
    Monotone in ``v``, positively homogeneous in ``w`` (by construction), concave in ``v`` for
    ``p <= 1``.  It is **not** monotone in ``w`` for ``p < 1``: ``g_{(1, t)}((1, 0))`` decreases in
    ``t`` (``1/(1+t)`` for ``p = 1/2``).  PALM therefore rounds the form
    ``h_w(v) = Σ_i w_i v_i^p`` for ``0 < p <= 1`` -- linear in ``w`` over ``u = v^p ∈ [0, 1]^d``
    and maximised by the same ``v`` -- at ``(1 - (1-eps)^p, p·delta)``: an
    ``(eps_h, delta_h)``-portfolio for ``h`` is an ``(eps, delta)``-portfolio for ``g`` since
    ``t ↦ max(t, 0)^{1/p}`` is ``1/p``-Lipschitz on ``(-∞, 1]`` (``docs/design.md`` §6).  For
    ``p <= 0`` the lemma fails at the boundary of the simplex (a coordinate rounded to 0 may
    be 0 in the oracle's answer, and then ``g_w = 0`` while ``OPT(w)`` is large), so
    :meth:`rounding_budget` refuses it.

    Raises
    ------
    TypeError
        ``p`` not a real number.
    ValueError
        ``p > 1``, NaN or infinite.

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.scalarizations import PMean
    >>> PMean(0.5)([[0.5, 0.5]], [[1.0, 0.25]])           # ((1 + 0.5) / 2)^2
    array([[0.5625]])
    >>> PMean(2)
    Traceback (most recent call last):
    ...
    ValueError: `p` of PMean(p) must be a finite number <= 1 (a concave mean); got p=2.0.
    """

    p: float

    def __post_init__(self):
        p = self.p
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"`p` of PMean(p) must be a real number; got {p!r} of type {type(p).__name__}.")
        p = float(p)
        if not (math.isfinite(p) and p <= 1.0):
            raise ValueError(f"`p` of PMean(p) must be a finite number <= 1 (a concave mean); got p={p}.")
        object.__setattr__(self, "p", p + 0.0)  # -0.0 -> 0.0

    @property
    def linear(self):
        return self.p == 1.0

    def __call__(self, W, V):
        W, V = _inputs(W, V)
        p = self.p
        s = W.sum(axis=1)
        Wn = W / np.where(s > 0, s, 1.0)[:, None]
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            L = np.log(V)  # -inf at 0
            if p == 0:
                small = V == 0
                M = np.exp(Wn @ np.where(small, 0.0, L).T)
            elif abs(p) < 0.1:  # M = exp(log1p(Σ w_i expm1(p log v_i)) / p): accurate for p near 0
                E = np.expm1(p * L)
                small = np.isinf(E) if p < 0 else np.zeros(V.shape, dtype=bool)  # v = 0, or v^p overflows
                M = np.exp(np.log1p(np.maximum(Wn @ np.where(small, 0.0, E).T, -1.0)) / p)
            else:  # log Σ w_i v_i^p by a log-sum-exp over the support: no overflow for any p
                return np.where(s[:, None] > 0, s[:, None] * np.exp(_log_power_sum(Wn, L, p) / p), 0.0)
        if p <= 0:  # a supported zero value makes the mean 0
            zero = (W > 0).astype(np.float64) @ small.astype(np.float64).T > 0
            M = np.where(zero, 0.0, M)
        return np.where(s[:, None] > 0, s[:, None] * M, 0.0)

    def linearize(self, V):
        if self.p <= 0:
            return None
        return _as_matrix(V, "V") ** self.p

    def rounding_budget(self, eps, delta):
        if self.p <= 0:
            raise ValueError(
                f"PALM's rounding lemma does not hold for {self!r}: with p <= 0 a weight coordinate "
                f"below tau = delta/d is rounded to 0, the oracle may then return a policy whose value "
                f"is 0 in that coordinate, and g_w = 0 there while OPT(w) can be close to 1 (no "
                f"(eps, delta) guarantee). Use PMean(p) with 0 < p <= 1, or Tchebycheff()."
            )
        return 1.0 - (1.0 - float(eps)) ** self.p, self.p * float(delta)


def _log_power_sum(Wn, L, p, chunk=4096):
    """``log Σ_{i: w_i > 0} w_i exp(p L_i)`` for every row of ``Wn`` (n, d) and of ``L`` (k, d)."""
    n, k = Wn.shape[0], L.shape[0]
    out = np.empty((n, k))
    step = max(1, chunk // max(k, 1))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pL = p * L
        for s in range(0, n, step):
            Ws = Wn[s : s + step]
            A = np.where((Ws > 0)[:, None, :], np.log(Ws)[:, None, :] + pL[None, :, :], -np.inf)
            m = A.max(axis=2)
            r = m + np.log(np.exp(A - np.where(np.isfinite(m), m, 0.0)[:, :, None]).sum(axis=2))
            out[s : s + step] = np.where(np.isfinite(m), r, m)
    return out


def from_repr(text):
    """The scalarization whose ``repr`` is ``text`` (as saved in a portfolio's ``info``); parsed
    as data, never evaluated.

    Examples
    --------
    >>> from palmopt.scalarizations import from_repr
    >>> from_repr("Tchebycheff()"), from_repr("PMean(p=0.5)")
    (Tchebycheff(), PMean(p=0.5))
    """
    text = str(text).strip()
    if text == "Linear()":
        return Linear()
    if text == "Tchebycheff()":
        return Tchebycheff()
    match = re.fullmatch(r"PMean\(p=([-+0-9.eE]+)\)", text)
    if match:
        return PMean(float(match.group(1)))
    raise ValueError(f"unknown scalarization {text!r}; expected Linear(), Tchebycheff() or PMean(p=<number>).")


def scalarization_of(oracle):
    """The scalarization an oracle optimises: ``oracle.scalarization``, ``Linear()`` by default.

    Wrappers with an ``oracle`` attribute (:class:`palmopt.oracle.CheckedOracle`) are unwrapped.

    Examples
    --------
    >>> from palmopt.oracle import as_oracle, checked
    >>> from palmopt.scalarizations import scalarization_of
    >>> scalarization_of(checked(as_oracle(lambda w: w, d=2)))
    Linear()
    """
    from .oracle import CheckedOracle

    while isinstance(oracle, CheckedOracle):
        oracle = oracle.oracle
    s = getattr(oracle, "scalarization", None)
    if s is None:
        return Linear()
    if not isinstance(s, Scalarization):
        raise TypeError(
            f"`oracle.scalarization` must be a palmopt.scalarizations.Scalarization (Linear(), "
            f"Tchebycheff(), PMean(p)); got {s!r} of type {type(s).__name__}."
        )
    return s
