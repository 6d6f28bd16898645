r"""Testbeds for certificates with real oracles: exact oracles made noisy or suboptimal, on purpose.

A learned oracle (RL, GRPO) returns a policy that may be suboptimal and an *estimate* of its
values (DESIGN.md §6).  Whether a certificate built from such answers stays true can only be
measured where the truth is known.  The wrappers here turn any exact oracle (duck-typed: ``d``,
``__call__(w) -> Solution``, optional ``value_range`` and ``fingerprint()``) into one of those
failure modes, with the truth kept aside for the study:

* :class:`NoisyOracle` -- evaluation noise of a known, declared standard error;
* :class:`SuboptimalOracle` -- optimisation error up to ``(eta_m, eta_a)``, declared or not.

They compose: ``NoisyOracle(SuboptimalOracle(mdp, (0.02, 0.0)), 0.01)`` is a suboptimal oracle
with noisy evaluations.  Both keep the wrapped answer's true value vector in
``info["true_values"]`` (for studies only: an algorithm must never read it) and pass
``reference_front()`` of the wrapped oracle through, so ``palmopt.certify(p, testbed)`` checks a
portfolio against the true front.  Policies they return are the wrapped oracle's policies, or a
:class:`KnownValues` handle where the wrapped oracle has none.

Randomness never uses a global state: every draw comes from a generator seeded by the testbed's
``seed``, a hash of the weight (or policy) and how many times that weight (or policy) was drawn
before, so a rerun in the same order reproduces every value, whatever the order of *other* calls.
"""

import hashlib
import inspect
import math
import numbers
from dataclasses import dataclass

import numpy as np

import palmopt.oracle as _protocol
from palmopt.oracle import Solution
from palmopt.tolerances import FLOAT_SLACK
from palmopt.validation import as_matrix, check_choice, check_count, check_fraction, check_value_range

__all__ = ["KnownValues", "NoisyOracle", "SuboptimalOracle", "true_values"]

#: Deterministic policies :class:`SuboptimalOracle` enumerates at most (``A**S`` of a tabular MDP).
MAX_ENUMERATED = 200_000
#: The noise is winsorised at this many standard deviations: just inside the band
#: ``palmopt.oracle.NOISE_SDS`` in which a checked oracle accepts estimates outside the value range.
WINSOR_SDS = 0.999 * getattr(_protocol, "NOISE_SDS", 10.0)


# ----------------------------------------------------------------------------- helpers


@dataclass(frozen=True, eq=False)
class KnownValues:
    """The handle of a policy known only by its true value vector (a testbed's stand-in).

    Returned as ``Solution.policy`` where the wrapped oracle returns no policy of its own, or
    where :class:`SuboptimalOracle` picks a vector from a supplied set.  ``index`` is the
    vector's row in that set (``None`` when there is no set).

    Examples
    --------
    >>> from oracles.testbeds import KnownValues
    >>> KnownValues([0.5, 0.25], index=3)
    KnownValues(values=[0.5, 0.25], index=3)
    """

    values: np.ndarray
    index: int | None = None

    def __post_init__(self):
        v = np.array(self.values, dtype=np.float64)
        v.setflags(write=False)
        object.__setattr__(self, "values", v)

    def __repr__(self):
        return f"KnownValues(values={self.values.tolist()}, index={self.index})"


def _fingerprint_of(oracle):
    fp = getattr(oracle, "fingerprint", None)
    if callable(fp):
        return fp()
    return f"{type(oracle).__module__}.{type(oracle).__qualname__}(d={oracle.d})"


def _check_oracle(oracle):
    d = getattr(oracle, "d", None)
    if not callable(oracle) or isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1:
        raise TypeError(
            f"`oracle` must be callable with an integer attribute `d` >= 1 (the number of objectives); "
            f"got {type(oracle).__name__} with d={d!r}."
        )
    return int(d)


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"`seed` must be an integer >= 0; got {seed!r} of type {type(seed).__name__}.")
    if seed < 0:
        raise ValueError(f"`seed` must be an integer >= 0; got {seed}.")
    return int(seed)


def _words(data):
    """Eight 32-bit words of the SHA-256 of ``data``: a stable key for a seed sequence."""
    digest = hashlib.sha256(data).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4))


def _weight_key(w):
    return _words(b"w" + np.round(np.asarray(w, dtype=np.float64), 12).tobytes())


def _policy_key(policy):
    """A stable key of a policy handle, or ``None`` when it has none (then nothing is cached)."""
    if isinstance(policy, KnownValues):
        return _words(b"k" + policy.values.tobytes())
    if isinstance(policy, np.ndarray):
        return _words(b"a" + policy.dtype.str.encode() + repr(policy.shape).encode() + policy.tobytes())
    if isinstance(policy, (str, bytes, numbers.Number, tuple)):
        return _words(b"r" + repr(policy).encode())
    return None


def _rng(seed, stream, key, count):
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(stream, *key, count)))


def true_values(oracle, policy):
    """The true value vector of ``policy`` (for studies: an algorithm must never ask).

    A :class:`KnownValues` handle carries its values; an oracle with a ``true_values(policy)``
    method (the testbeds, :class:`~oracles.tabular.learned.SampledModelOracle`) is asked; otherwise
    ``oracle.evaluate(policy)`` must be exact (an array, or a :class:`~palmopt.oracle.Solution`
    without a positive ``stderr``, like :meth:`~oracles.tabular.model.TabularMOMDP.evaluate`) or
    keep the truth in ``info["true_values"]``.

    Raises
    ------
    TypeError
        When none of these applies.

    Examples
    --------
    >>> from oracles.testbeds import KnownValues, true_values
    >>> true_values(None, KnownValues([0.5, 0.5]))
    array([0.5, 0.5])
    """
    if isinstance(policy, KnownValues):
        return np.array(policy.values)
    known = getattr(oracle, "true_values", None)
    if callable(known):
        return np.array(known(policy), dtype=np.float64)
    evaluate = getattr(oracle, "evaluate", None)
    if not callable(evaluate):
        raise TypeError(
            f"cannot find the true values of a policy of type {type(policy).__name__}: {type(oracle).__name__} "
            f"has neither `true_values(policy)` nor `evaluate(policy)`."
        )
    out = evaluate(policy)
    if not isinstance(out, Solution):
        return np.array(out, dtype=np.float64)
    if "true_values" in out.info:
        return np.array(out.info["true_values"], dtype=np.float64)
    if out.stderr is None or not np.any(out.stderr > 0):
        return np.array(out.values)
    raise TypeError(f"{type(oracle).__name__}.evaluate is noisy and keeps no true values.")


def _fresh_estimate(oracle, policy, repeats):
    """``(values, stderr, true values)`` of a fresh evaluation of ``policy`` by ``oracle``."""
    evaluate = getattr(oracle, "evaluate", None)
    if not callable(evaluate):
        raise TypeError(f"{type(oracle).__name__} has no `evaluate(policy)`.")
    try:
        params = inspect.signature(evaluate).parameters
        takes_repeats = "repeats" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):
        takes_repeats = False
    out = evaluate(policy, repeats=repeats) if takes_repeats else evaluate(policy)
    if not isinstance(out, Solution):
        v = np.array(out, dtype=np.float64)
        return v, None, v
    se = None if out.stderr is None or not np.any(out.stderr > 0) else np.array(out.stderr)
    return np.array(out.values), se, np.array(out.info.get("true_values", out.values), dtype=np.float64)


class _Wrapper:
    """What both testbeds share: the wrapped oracle's ``d``, range, truth and policies."""

    def __init__(self, oracle):
        self.d = _check_oracle(oracle)
        self.oracle = oracle

    @property
    def base_range(self):
        return check_value_range(getattr(self.oracle, "value_range", (0.0, 1.0)))

    def reference_front(self, *args, **kwargs):
        """The wrapped oracle's exact front (the truth of a study), passed through."""
        ref = getattr(self.oracle, "reference_front", None)
        if ref is None:
            raise AttributeError(f"{type(self.oracle).__name__} has no reference_front().")
        return ref(*args, **kwargs)

    def true_values(self, policy):
        """The true value vector of a policy this testbed returned (for studies only)."""
        return true_values(self.oracle, policy)

    def save_policy(self, policy, directory):
        """Saved by the wrapped oracle (a :class:`KnownValues` handle cannot be saved)."""
        if isinstance(policy, KnownValues) or not hasattr(self.oracle, "save_policy"):
            raise TypeError(f"{type(self).__name__} cannot save a policy of type {type(policy).__name__}.")
        return self.oracle.save_policy(policy, directory)

    def load_policy(self, path):
        return self.oracle.load_policy(path)


# ----------------------------------------------------------------------------- noise


class NoisyOracle(_Wrapper):
    r"""An oracle whose value estimates carry noise of a declared standard error.

    ``oracle(w)`` returns the wrapped policy with ``values = V + σ·ξ`` where ``V`` is the wrapped
    oracle's (true) value vector and ``ξ`` has independent coordinates of mean 0 and variance 1
    (standard normal, or Student-t with ``df > 2`` degrees of freedom scaled to unit variance),
    and declares ``stderr = σ`` -- the true standard deviation of each coordinate.
    ``evaluate(policy, repeats=k)`` is a fresh, independent estimate with ``σ / sqrt(k)``.

    Parameters
    ----------
    oracle : AlignmentOracle
        The oracle to make noisy, normally exact.  If it reports a ``stderr`` of its own, the
        two are combined as ``sqrt(s² + σ²)`` (independent errors).
    sigma : float or array_like, shape (d,)
        Standard deviation of the noise of each coordinate, finite and >= 0 (0: exact values
        with ``stderr = 0``).
    noise : {"gaussian", "student-t"}, default "gaussian"
    df : float, default 5
        Degrees of freedom of the Student-t noise, > 2 (finite variance).
    clip : bool, default False
        ``False``: unbiased estimates that may leave the wrapped ``value_range`` by their noise,
        which :func:`palmopt.oracle.checked` accepts up to ``palmopt.oracle.NOISE_SDS = 10``
        standard errors.  To stay inside that band, the noise is winsorised at
        ``±0.999·NOISE_SDS`` standard deviations: symmetric, so the estimate stays unbiased and its
        spread can only shrink (the declared ``stderr`` stays an upper bound); a Gaussian draw
        is never that far in practice (probability ``≈ 1e-23``), a Student-t one rarely.
        ``True``: estimates are clipped to ``value_range``.  The true value lies in that range,
        so clipping moves an estimate towards it, never away (``|clip(x) - v| <= |x - v|``): every
        confidence statement ``x - a <= v`` or ``x + a >= v`` that holds for the raw draw holds
        for the clipped one.  But the clipped estimate is biased towards the interior within a
        few σ of the bounds, so *averages* of clipped estimates (pooled re-evaluations) can
        lose coverage there; use it only where estimates are never pooled.
    seed : int, default 0
        Seed of the noise.

    Attributes
    ----------
    d : int
    value_range : (float, float)
        The wrapped oracle's (where the true values lie).
    sigma : ndarray (d,)
    noise, df, clip, seed
    error : (float, float)
        The wrapped oracle's declared error, when it has one (otherwise no such attribute).

    Notes
    -----
    The noise of the ``n``-th call at a weight ``w`` (and of the ``n``-th evaluation of a
    policy) is drawn from a generator seeded by ``(seed, hash(w), n)``, so a rerun reproduces
    every draw whatever the order of calls at *other* weights.  Counters live in the object: a
    process pool's workers each count for themselves.  ``info["true_values"]`` holds the noise-free
    values (for studies only).

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt import as_oracle
    >>> from oracles.testbeds import NoisyOracle
    >>> V = np.array([[1.0, 0.0], [0.6, 0.6], [0.0, 1.0]])
    >>> exact = as_oracle(lambda w: V[np.argmax(V @ w)], d=2, name="three")
    >>> noisy = NoisyOracle(exact, 0.01, seed=1)
    >>> noisy
    NoisyOracle(as_oracle(three, d=2), sigma=0.01, noise='gaussian', seed=1)
    >>> sol = noisy([0.5, 0.5])
    >>> sol.stderr, sol.info["true_values"], bool(np.abs(sol.values - 0.6).max() < 0.06)
    (array([0.01, 0.01]), array([0.6, 0.6]), True)
    >>> noisy.evaluate(sol.policy, repeats=4).stderr        # σ / sqrt(4)
    array([0.005, 0.005])
    >>> bool(np.all(NoisyOracle(exact, 0.01, seed=1)([0.5, 0.5]).values == sol.values))  # reproducible
    True
    """

    def __init__(self, oracle, sigma, *, noise="gaussian", df=5.0, clip=False, seed=0):
        super().__init__(oracle)
        self.noise = check_choice(noise, "noise", ("gaussian", "student-t"))
        if isinstance(df, bool) or not isinstance(df, numbers.Real):
            raise TypeError(f"`df` must be a real number; got {df!r} of type {type(df).__name__}.")
        if not (math.isfinite(df) and df > 2):
            raise ValueError(f"`df` must be a finite number > 2 (the noise needs a finite variance); got {df}.")
        self.df = float(df)
        if isinstance(sigma, (str, bytes, bool)):
            raise TypeError(f"`sigma` must be a number or an array of d = {self.d} numbers; got {sigma!r}.")
        try:
            s = np.array(sigma, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`sigma` must be a number or an array of d = {self.d} numbers; got {sigma!r}.") from exc
        if s.ndim == 0:
            s = np.full(self.d, float(s))
        if s.shape != (self.d,):
            raise ValueError(f"`sigma` must be a number or have shape (d,) = ({self.d},); got shape {s.shape}.")
        if not (np.all(np.isfinite(s)) and s.min() >= 0.0):
            raise ValueError(f"`sigma` must be finite and >= 0; got {s.tolist()}.")
        s.setflags(write=False)
        self.sigma = s
        if not isinstance(clip, bool):
            raise TypeError(f"`clip` must be True or False; got {clip!r}.")
        self.clip = clip
        self.seed = _check_seed(seed)
        self._counts = {}
        self._truths = {}
        self.value_range = self.base_range

    def __getattr__(self, name):
        if name == "error" and "oracle" in self.__dict__:  # declared error of the wrapped oracle, if any
            return getattr(self.__dict__["oracle"], "error")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _draw(self, stream, key, scale):
        count = self._counts.get((stream, key), 0)
        self._counts[(stream, key)] = count + 1
        rng = _rng(self.seed, stream, key, count)
        if self.noise == "gaussian":
            xi = rng.standard_normal(self.d)
        else:
            xi = rng.standard_t(self.df, self.d) * math.sqrt((self.df - 2.0) / self.df)
        return scale * np.clip(xi, -WINSOR_SDS, WINSOR_SDS), count

    def _estimate(self, v, inner_se, stream, key, scale):
        noise, count = self._draw(stream, key, scale)
        values = v + noise
        if self.clip:
            values = np.clip(values, *self.value_range)
        se = scale if inner_se is None else np.sqrt(inner_se**2 + scale**2)
        return values, np.array(se, dtype=np.float64), count

    def __call__(self, w):
        sol = self.oracle(w)
        v = np.array(sol.values, dtype=np.float64)
        policy = sol.policy if sol.policy is not None else KnownValues(v)
        inner_se = None if sol.stderr is None or not np.any(sol.stderr > 0) else np.array(sol.stderr)
        values, se, count = self._estimate(v, inner_se, 0, _weight_key(w), self.sigma)
        truth = np.array(sol.info.get("true_values", v), dtype=np.float64)
        key = _policy_key(policy)
        if key is not None and inner_se is None:  # exact wrapped values: re-evaluations need no oracle
            self._truths[key] = truth
        info = {**sol.info, "true_values": truth, "noise_draw": count}
        return Solution(values=values, policy=policy, info=info, stderr=se)

    def true_values(self, policy):
        """The true value vector of a policy this testbed returned (for studies only)."""
        key = _policy_key(policy)
        if key is not None and key in self._truths:
            return np.array(self._truths[key])
        return true_values(self.oracle, policy)

    def evaluate(self, policy, *, repeats=1):
        """A fresh estimate of ``policy``'s values with ``repeats`` times the effort: ``σ / sqrt(repeats)``.

        ``policy`` is one this oracle returned (or any the wrapped oracle can evaluate).  When the
        wrapped oracle's values are themselves estimates, it is asked for a fresh one too (its
        ``evaluate(policy, repeats=repeats)``), so successive evaluations stay independent.
        """
        repeats = check_count(repeats, "repeats")
        key = _policy_key(policy)
        if isinstance(policy, KnownValues):
            v = truth = np.array(policy.values)
            inner_se = None
        elif key is not None and key in self._truths:
            v = truth = np.array(self._truths[key])
            inner_se = None
        else:
            v, inner_se, truth = _fresh_estimate(self.oracle, policy, repeats)
        if key is None:
            key = _words(b"id" + str(id(policy)).encode())
        values, se, count = self._estimate(v, inner_se, 1, key, self.sigma / math.sqrt(repeats))
        info = {"true_values": truth, "repeats": repeats, "noise_draw": count}
        return Solution(values=values, policy=policy, info=info, stderr=se)

    def with_seed(self, seed):
        """The same testbed with another seed (the wrapped oracle re-seeded too, if it can be)."""
        inner = self.oracle.with_seed(seed) if callable(getattr(self.oracle, "with_seed", None)) else self.oracle
        return NoisyOracle(inner, self.sigma, noise=self.noise, df=self.df, clip=self.clip, seed=seed)

    def fingerprint(self):
        sigma = self.sigma.tolist()
        noise = self.noise if self.noise == "gaussian" else f"student-t(df={self.df:g})"
        return f"noisy({_fingerprint_of(self.oracle)}, sigma={sigma}, noise={noise}, clip={self.clip}, seed={self.seed})"

    def __repr__(self):
        s = self.sigma
        sigma = f"{s[0]:g}" if np.all(s == s[0]) else np.array2string(s, precision=4, separator=", ")
        df = f", df={self.df:g}" if self.noise == "student-t" else ""
        clip = ", clip=True" if self.clip else ""
        return f"NoisyOracle({self.oracle!r}, sigma={sigma}, noise={self.noise!r}{df}{clip}, seed={self.seed})"

    def __getstate__(self):
        return dict(self.__dict__)

    def __setstate__(self, state):
        self.__dict__.update(state)


# ----------------------------------------------------------------------------- optimisation error


def _same_handle(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and bool(np.all(a == b))
    try:
        return bool(a == b)
    except Exception:  # an exotic handle without a plain equality
        return False


def _check_eta(eta):
    if isinstance(eta, (str, bytes)):
        raise TypeError(f"`eta` must be a number or a pair (eta_m, eta_a); got {eta!r}.")
    if isinstance(eta, numbers.Real) and not isinstance(eta, bool):
        eta = (eta, 0.0)
    try:
        pair = tuple(eta)
    except TypeError as exc:
        raise TypeError(f"`eta` must be a number or a pair (eta_m, eta_a); got {eta!r}.") from exc
    if len(pair) != 2:
        raise ValueError(f"`eta` must be a pair (eta_m, eta_a); got {eta!r}.")
    return tuple(check_fraction(e, f"eta[{i}]", allow_zero=True) for i, e in enumerate(pair))


class SuboptimalOracle(_Wrapper):
    r"""An oracle that returns a policy as bad as an error of ``eta = (eta_m, eta_a)`` allows.

    At a weight ``w`` it picks, among the candidate policies whose true value ``v`` satisfies
    ``w·v >= (1 - eta_m)·OPT(w) - eta_a``, the one with the smallest ``w·v`` (``mode="worst"``:
    an adversary within the stated error) or one uniformly at random (``mode="random"``).
    ``OPT(w)`` is the best of the wrapped (exact) oracle's answer and the candidates, and the
    wrapped answer is always a candidate, so a choice exists.  Values are exact
    (``stderr=None``); wrap in :class:`NoisyOracle` to add noise.

    Candidates, first that applies:

    * ``values`` (k, d) given: those vectors (with ``policies``, their handles; otherwise
      :class:`KnownValues` handles);
    * a tabular MDP (``P``, ``R``, ``mu``, ``gamma``; or an object with such a ``momdp``, like
      an MO-Gymnasium table) with at most ``MAX_ENUMERATED = 200,000`` deterministic
      policies: all of them, with their actions as policies (as the MDP's own);
    * the wrapped oracle's ``reference_front()``, with :class:`KnownValues` handles.

    Parameters
    ----------
    oracle : AlignmentOracle
        An exact oracle.
    eta : float or (float, float)
        The error ``(eta_m, eta_a)``, each in [0, 1); a number ``e`` means ``(e, 0)`` (purely
        multiplicative).
    declare : bool, default True
        ``True``: the oracle has the attribute ``error = eta`` (an approximate oracle that says
        how approximate it is).  ``False``: it has no ``error`` attribute (undeclared error).
    mode : {"worst", "random"}, default "worst"
    values : array_like (k, d), optional
        Achievable vectors to choose from.
    policies : sequence of length k, optional
        Their policy handles.
    seed : int, default 0
        Seed of ``mode="random"`` (the choice at ``w`` depends on ``(seed, w)`` only).

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt import as_oracle
    >>> from oracles.testbeds import SuboptimalOracle
    >>> V = np.array([[1.0, 0.0], [0.9, 0.5], [0.8, 0.8], [0.0, 1.0]])
    >>> exact = as_oracle(lambda w: V[np.argmax(V @ w)], d=2, name="four")
    >>> bad = SuboptimalOracle(exact, (0.2, 0.0), values=V)
    >>> bad
    SuboptimalOracle(as_oracle(four, d=2), eta=(0.2, 0.0), declare=True, mode='worst', seed=0)
    >>> sol = bad([0.5, 0.5])                   # OPT = 0.8, bound 0.64: (0.9, 0.5) gives 0.7
    >>> sol.values, sol.policy.index, bad.error
    (array([0.9, 0.5]), 1, (0.2, 0.0))
    >>> hasattr(SuboptimalOracle(exact, 0.2, values=V, declare=False), "error")
    False
    """

    def __init__(self, oracle, eta, *, declare=True, mode="worst", values=None, policies=None, seed=0):
        super().__init__(oracle)
        self.eta = _check_eta(eta)
        if not isinstance(declare, bool):
            raise TypeError(f"`declare` must be True or False; got {declare!r}.")
        self.declare = declare
        self.mode = check_choice(mode, "mode", ("worst", "random"))
        self.seed = _check_seed(seed)
        self._values = None
        self._policies = None
        if values is not None:
            V = as_matrix(values, "values", self.d)
            V.setflags(write=False)
            if policies is not None:
                policies = list(policies)
                if len(policies) != len(V):
                    raise ValueError(f"`policies` must have one handle per row of `values` ({len(V)}); got {len(policies)}.")
            self._values, self._policies = V, policies
            self._source = "values"
        elif policies is not None:
            raise ValueError("`policies` needs `values` (their value vectors).")
        else:
            self._source = None  # decided on first use (enumeration can be costly)

    def __getattr__(self, name):
        if name == "error":
            if self.__dict__.get("declare"):
                return self.__dict__["eta"]
            raise AttributeError("this SuboptimalOracle does not declare its error (declare=False)")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # candidates ---------------------------------------------------------------------

    def _mdp(self):
        o = self.oracle
        mdp = getattr(o, "momdp", o)
        return mdp if all(hasattr(mdp, a) for a in ("P", "R", "mu", "gamma")) else None

    def candidates(self):
        """``(V, policies)``: the candidate vectors (k, d) and their handles (``None``: KnownValues)."""
        if self._values is None:
            mdp = self._mdp()
            if mdp is not None and mdp.n_actions**mdp.n_states <= MAX_ENUMERATED:
                from .tabular.linalg import deterministic_values

                V = deterministic_values(mdp.P, mdp.R, mdp.mu, mdp.gamma)
                self._source = "enumeration"
            elif hasattr(self.oracle, "reference_front"):
                V = np.asarray(self.oracle.reference_front(), dtype=np.float64)
                self._source = "reference_front"
            else:
                raise ValueError(
                    f"SuboptimalOracle needs candidate policies: pass `values=` (achievable vectors), or wrap a "
                    f"tabular MDP with at most {MAX_ENUMERATED:,} deterministic policies or an oracle with "
                    f"reference_front(); {type(self.oracle).__name__} is neither."
                )
            V = np.ascontiguousarray(V)
            V.setflags(write=False)
            self._values = V
        return self._values, self._policies

    def _handle(self, i):
        if self._policies is not None:
            return self._policies[i]
        if self._source == "enumeration":
            mdp = self._mdp()
            pi = (int(i) // mdp.n_actions ** np.arange(mdp.n_states, dtype=np.int64)) % mdp.n_actions
            pi = pi.astype(np.int64)
            pi.setflags(write=False)
            return pi
        return KnownValues(self._values[i], index=int(i))

    # protocol ---------------------------------------------------------------------------

    def __call__(self, w):
        w = np.asarray(w, dtype=np.float64)
        sol = self.oracle(w)
        V, _ = self.candidates()
        wv = V @ w
        best = float(w @ sol.values)
        opt = max(best, float(wv.max()))
        eta_m, eta_a = self.eta
        bound = (1.0 - eta_m) * opt - eta_a
        # a margin of rounding, so that the bound holds for the values as computed
        ok = np.flatnonzero(wv >= bound + FLOAT_SLACK)
        info = {**sol.info, "opt": opt, "bound": bound}
        if not ok.size:  # only the wrapped answer is good enough (eta = 0, or a tiny one)
            values, policy, i = np.array(sol.values), sol.policy, None
            if policy is None:
                policy = KnownValues(values)
        else:
            if self.mode == "worst":
                i = int(ok[np.argmin(wv[ok])])
            else:
                i = int(ok[_rng(self.seed, 2, _weight_key(w), 0).integers(ok.size)])
            values, policy = np.array(V[i]), self._handle(i)
        info["candidate"] = i
        info["true_values"] = np.array(values)
        return Solution(values=values, policy=policy, info=info)

    def true_values(self, policy):
        """The true value vector of a policy this testbed returned (for studies only)."""
        return self.evaluate(policy).values.copy()

    def evaluate(self, policy, *, repeats=1):
        """The exact values of ``policy`` (``stderr=None``): this testbed has no evaluation noise."""
        check_count(repeats, "repeats")
        if isinstance(policy, KnownValues):
            v = np.array(policy.values)
        else:
            V, pols = self.candidates()
            v = None
            if pols is not None:
                for i, p in enumerate(pols):
                    if p is policy or _same_handle(p, policy):
                        v = np.array(V[i])
                        break
            if v is None:
                v = true_values(self.oracle, policy)
        return Solution(values=v, policy=policy, info={"true_values": np.array(v), "repeats": repeats})

    def with_seed(self, seed):
        """The same testbed with another seed (the wrapped oracle re-seeded too, if it can be)."""
        inner = self.oracle.with_seed(seed) if callable(getattr(self.oracle, "with_seed", None)) else self.oracle
        out = SuboptimalOracle(inner, self.eta, declare=self.declare, mode=self.mode, seed=seed)
        if self._source == "values":
            out._values, out._policies, out._source = self._values, self._policies, "values"
        return out

    def fingerprint(self):
        return (
            f"suboptimal({_fingerprint_of(self.oracle)}, eta={list(self.eta)}, declare={self.declare}, "
            f"mode={self.mode}, seed={self.seed}, candidates={self._candidate_digest()})"
        )

    def _candidate_digest(self):
        if self._source != "values":
            return "auto"
        h = hashlib.sha256(self._values.tobytes()).hexdigest()[:12]
        return f"values:{h}"

    def __repr__(self):
        return (
            f"SuboptimalOracle({self.oracle!r}, eta={self.eta}, declare={self.declare}, "
            f"mode={self.mode!r}, seed={self.seed})"
        )

    def __getstate__(self):
        return dict(self.__dict__)

    def __setstate__(self, state):
        self.__dict__.update(state)
