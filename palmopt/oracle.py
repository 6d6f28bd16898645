"""The alignment-oracle protocol, the checking wrapper every algorithm uses, and an adapter
for plain functions.

An alignment oracle is any object with

* ``d`` -- the number of objectives, and
* ``__call__(w) -> Solution`` -- a policy (near-)optimal for the scalarised reward ``w·r``
  and its expected reward vector.

Optional, duck-typed hooks that palmopt uses when present:

* ``value_range`` -- ``(low, high)`` bounds of every value (default ``(0.0, 1.0)``);
* ``fingerprint()`` -- a string that identifies the oracle *and its parameters*; the run
  store refuses to mix results of oracles with different fingerprints;
* ``save_policy(policy, directory) -> str`` and ``load_policy(path)`` -- persist policies
  with a portfolio;
* ``error = (eta_m, eta_a)`` -- a declared error, ``w·V(π_w) ≥ (1-eta_m) OPT(w) - eta_a``
  (absent or ``None``: undeclared, and certificates say they assume an exact oracle);
* ``evaluate(policy, *, repeats=1) -> Solution`` -- a fresh, independent estimate of a returned
  policy's values with about ``repeats``× the evaluation effort (noisy oracles);
* ``seed`` and ``with_seed(seed)`` -- an otherwise equal oracle with another training seed
  (:func:`palmopt.uncertainty.replicate`).

palmopt never imports a concrete oracle; it only relies on this module.
"""

import inspect
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

__all__ = ["AlignmentOracle", "Solution", "OracleError", "CheckedOracle", "as_oracle", "checked"]

from .tolerances import RANGE_ATOL

#: A noisy estimate more than this many standard errors outside the value range is refused.
NOISE_SDS = 10.0
from .validation import check_dim, check_value_range


@dataclass(frozen=True, eq=False)
class Solution:
    """What an oracle returns for one weight vector.

    Attributes
    ----------
    values : ndarray, shape (d,)
        The policy's expected reward vector (float64, read-only).
    policy : object
        An opaque handle (a tabular policy, an adapter directory, ...).
    info : Mapping
        Timings, seeds, ... (read-only).
    stderr : ndarray, shape (d,), or None
        Standard error of each value estimate (read-only); ``None`` means the values are exact.
        Certificates then hold with a stated confidence over the evaluation noise (see
        :func:`palmopt.adaptive`).
    """

    values: np.ndarray
    policy: Any = None
    info: Mapping[str, Any] = field(default_factory=dict)
    stderr: Any = None

    def __post_init__(self):
        values = np.array(self.values, dtype=np.float64)
        values.setflags(write=False)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "info", MappingProxyType(dict(self.info or {})))
        if self.stderr is not None:
            stderr = np.array(self.stderr, dtype=np.float64)
            stderr.setflags(write=False)
            object.__setattr__(self, "stderr", stderr)

    def __reduce__(self):  # pickle (process pools, Ray workers) without the read-only views
        stderr = None if self.stderr is None else np.array(self.stderr)
        return (type(self), (np.array(self.values), self.policy, dict(self.info), stderr))

    def __repr__(self):
        se = "" if self.stderr is None else f", stderr={np.array2string(self.stderr, precision=2)}"
        return (
            f"Solution(values={np.array2string(self.values, precision=4)}{se}, "
            f"policy={type(self.policy).__name__})"
        )


@runtime_checkable
class AlignmentOracle(Protocol):
    """``oracle.d`` objectives; ``oracle(w)`` returns a :class:`Solution` for a weight ``w``."""

    d: int

    def __call__(self, w: np.ndarray) -> Solution: ...


class OracleError(RuntimeError):
    """An oracle raised, or returned something unusable, at the weight ``weight``."""

    def __init__(self, message, weight):
        super().__init__(message)
        self.weight = None if weight is None else np.array(weight, dtype=np.float64)

    def __reduce__(self):  # picklable across process pools and Ray workers
        return (type(self), (self.args[0], self.weight))


def _fmt(w):
    return np.array2string(np.asarray(w, dtype=float), precision=6, separator=", ")


class CheckedOracle:
    """Wrap an oracle so that every call is checked.

    A call returns a :class:`Solution` whose ``values`` have shape ``(d,)``, are finite and lie
    in ``value_range`` (within ``RANGE_ATOL``); anything else -- including an exception inside
    the oracle, which is chained -- raises :class:`OracleError` naming the weight.

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.oracle import as_oracle, checked
    >>> bad = checked(as_oracle(lambda w: [np.nan, 0.0], d=2))
    >>> bad([0.5, 0.5])
    Traceback (most recent call last):
    ...
    palmopt.oracle.OracleError: oracle returned non-finite values [nan, 0.] at w = [0.5, 0.5]
    """

    def __init__(self, oracle, value_range=None):
        if isinstance(oracle, CheckedOracle):
            oracle = oracle.oracle
        d = getattr(oracle, "d", None)
        try:
            if not callable(oracle):
                raise TypeError("not callable")
            self.d = check_dim(d, "oracle.d")
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"`oracle` must be callable with an integer attribute `d` >= 1 (the number of "
                f"objectives); got {type(oracle).__name__} with d={d!r}."
            ) from exc
        self.oracle = oracle
        declared = value_range if value_range is not None else getattr(oracle, "value_range", (0.0, 1.0))
        self.value_range = check_value_range(declared)

    def fingerprint(self):
        fp = getattr(self.oracle, "fingerprint", None)
        return fp() if callable(fp) else f"{type(self.oracle).__module__}.{type(self.oracle).__qualname__}(d={self.d})"

    def __call__(self, w):
        w = np.asarray(w, dtype=np.float64)
        try:
            sol = self.oracle(w.copy())  # a copy: an oracle that writes into it cannot corrupt the caller's
        except Exception as exc:
            raise OracleError(f"oracle raised {type(exc).__name__} at w = {_fmt(w)}: {exc}", w) from exc
        return self._check(sol, w, "")

    @property
    def can_evaluate(self):
        """Whether the oracle offers ``evaluate(policy, *, repeats)`` (fresh value estimates)."""
        fn = getattr(self.oracle, "evaluate", None)
        if not callable(fn):
            return False
        try:  # an unrelated method of the same name (e.g. exact policy evaluation) is not the hook
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return False
        return any(p.name == "repeats" or p.kind is p.VAR_KEYWORD for p in params)

    def evaluate(self, policy, repeats, w):
        """A fresh, checked estimate of ``policy``'s values with ``repeats``× the evaluation
        effort (``w`` is the weight the policy was found at, for messages)."""
        w = np.asarray(w, dtype=np.float64)
        try:
            sol = self.oracle.evaluate(policy, repeats=int(repeats))
        except Exception as exc:
            raise OracleError(
                f"oracle.evaluate raised {type(exc).__name__} for the policy found at w = {_fmt(w)}: {exc}", w
            ) from exc
        return self._check(sol, w, "evaluate: ")

    def _check(self, sol, w, what):
        where = f"at w = {_fmt(w)}"
        if not isinstance(sol, Solution):
            raise OracleError(f"{what}oracle returned {type(sol).__name__}, not a Solution, {where}", w)
        v = sol.values
        if v.shape != (self.d,):
            raise OracleError(f"{what}oracle returned values of shape {v.shape}, expected ({self.d},), {where}", w)
        if not np.all(np.isfinite(v)):
            raise OracleError(f"{what}oracle returned non-finite values {_fmt(v)} {where}", w)
        se = sol.stderr
        if se is not None:
            if se.shape != (self.d,):
                raise OracleError(f"{what}oracle returned stderr of shape {se.shape}, expected ({self.d},), {where}", w)
            if not np.all(np.isfinite(se)) or se.min() < 0:
                raise OracleError(
                    f"{what}oracle returned stderr {_fmt(se)} (standard errors must be finite and >= 0) {where}", w
                )
        # a noisy estimate may leave the range by its noise (up to NOISE_SDS standard errors)
        slack = RANGE_ATOL + (0.0 if se is None else NOISE_SDS * se)
        lo, hi = self.value_range
        if np.any(v < lo - slack) or np.any(v > hi + slack):
            raise OracleError(
                f"{what}oracle returned values {_fmt(v)} outside the declared range [{lo:g}, {hi:g}] {where}; "
                f"the guarantees are stated for values in that range (rescale the rewards).",
                w,
            )
        return sol

    def __repr__(self):
        return f"CheckedOracle({self.oracle!r})"


def checked(oracle, value_range=None):
    """The checking wrapper around ``oracle`` (idempotent)."""
    if isinstance(oracle, CheckedOracle) and value_range is None:
        return oracle
    return CheckedOracle(oracle, value_range)


class _FunctionOracle:
    def __init__(self, fn, d, name):
        self.fn = fn
        self.d = d
        self.name = name

    def fingerprint(self):
        if self.name is None:
            raise ValueError(
                f"as_oracle({getattr(self.fn, '__qualname__', type(self.fn).__name__)}) has no name, so a run "
                f"store cannot tell it from another function (two lambdas or closures share a qualified "
                f"name); pass as_oracle(fn, d, name=...) with a name that changes whenever fn's behaviour does."
            )
        return f"function:{self.name}(d={self.d})"

    def __call__(self, w):
        out = self.fn(w)
        if isinstance(out, tuple) and len(out) == 2 and np.ndim(out[0]) == 1:  # (values, stderr)
            return Solution(values=np.asarray(out[0], dtype=np.float64), stderr=out[1])
        return Solution(values=np.asarray(out, dtype=np.float64))

    def __repr__(self):
        name = self.name or getattr(self.fn, "__qualname__", type(self.fn).__name__)
        return f"as_oracle({name}, d={self.d})"


def as_oracle(fn, d, *, name=None):
    """Adapt a plain function ``fn(w) -> values`` or ``fn(w) -> (values, stderr)`` to the oracle
    protocol.

    Parameters
    ----------
    fn : callable
        Maps a weight vector (ndarray, shape (d,)) to a reward vector of length d, or to a pair
        ``(values, stderr)`` for noisy estimates (see :class:`Solution`).
    d : int
        Number of objectives.
    name : str, optional
        The oracle's identity in run stores.  Give a name that changes whenever the function's
        behaviour does.  Without a name the oracle cannot be used with a run store (two lambdas
        or closures share a qualified name, and one would silently get the other's values).

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.oracle import as_oracle
    >>> V = np.array([[1.0, 0.0], [0.6, 0.6], [0.0, 1.0]])
    >>> oracle = as_oracle(lambda w: V[np.argmax(V @ w)], d=2, name="three-points")
    >>> oracle(np.array([0.5, 0.5])).values
    array([0.6, 0.6])
    >>> noisy = as_oracle(lambda w: (V[np.argmax(V @ w)], [0.01, 0.01]), d=2, name="noisy")
    >>> noisy(np.array([0.5, 0.5]))
    Solution(values=[0.6 0.6], stderr=[0.01 0.01], policy=NoneType)
    """
    if not callable(fn):
        raise TypeError(f"`fn` must be callable; got {type(fn).__name__}.")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"`name` must be a string; got {type(name).__name__}.")
    return _FunctionOracle(fn, check_dim(d), name)
