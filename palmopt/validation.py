"""The few input checks that every public function shares.

Messages name the argument, the expectation and what was received, e.g.
"`eps` must be in (0, 1); got 1.5."  Wrong kind of object: TypeError; wrong value: ValueError.
"""

import numbers

import numpy as np

from .tolerances import SIMPLEX_ATOL


def check_dim(d, name="d"):
    """Return ``d`` as a positive int; reject bools, floats and strings."""
    if isinstance(d, bool) or not isinstance(d, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer; got {d!r} of type {type(d).__name__}.")
    if d < 1:
        raise ValueError(f"`{name}` must be >= 1; got {d}.")
    return int(d)


def check_fraction(x, name, *, allow_zero=False):
    """Return ``x`` as a float in (0, 1), or [0, 1) when ``allow_zero``."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {x!r} of type {type(x).__name__}.")
    x = float(x)
    lo_ok = x >= 0.0 if allow_zero else x > 0.0
    if not (lo_ok and x < 1.0):  # also rejects NaN
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"`{name}` must be in {interval}; got {x}.")
    return x


def check_tolerances(eps, delta=None, *, allow_zero=False):
    """Validate the pair (eps, delta); ``delta`` defaults to ``eps``."""
    eps = check_fraction(eps, "eps", allow_zero=allow_zero)
    delta = eps if delta is None else check_fraction(delta, "delta", allow_zero=allow_zero)
    return eps, delta


def check_choice(x, name, choices):
    """Return ``x`` if it is one of the strings ``choices``; TypeError for a non-string.

    Examples
    --------
    >>> from palmopt.validation import check_choice
    >>> check_choice("greedy", "prune", ("greedy", "none"))
    'greedy'
    >>> check_choice("exact", "prune", ("greedy", "none"))
    Traceback (most recent call last):
    ...
    ValueError: `prune` must be one of ('greedy', 'none'); got 'exact'.
    """
    if not isinstance(x, str):
        raise TypeError(f"`{name}` must be one of {tuple(choices)}; got {x!r} of type {type(x).__name__}.")
    if x not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}; got {x!r}.")
    return x


def check_count(n, name, *, minimum=1):
    """Return ``n`` as an int >= ``minimum``; reject bools, floats and strings."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer; got {n!r} of type {type(n).__name__}.")
    if n < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {n}.")
    return int(n)


def check_real(x, name, *, minimum=0.0, strict=False):
    """Return ``x`` as a finite float ``>= minimum`` (``> minimum`` when ``strict``).

    Examples
    --------
    >>> from palmopt.validation import check_real
    >>> check_real(2, "num_gpus"), check_real(0.5, "time_limit", strict=True)
    (2.0, 0.5)
    >>> check_real(0, "time_limit", strict=True)
    Traceback (most recent call last):
    ...
    ValueError: `time_limit` must be a finite number > 0; got 0.0.
    """
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {x!r} of type {type(x).__name__}.")
    x = float(x)
    ok = x > minimum if strict else x >= minimum
    if not (ok and np.isfinite(x)):  # also rejects NaN
        raise ValueError(f"`{name}` must be a finite number {'>' if strict else '>='} {minimum:g}; got {x}.")
    return x


def check_value_range(value_range, name="value_range"):
    """Return ``(low, high)`` as finite floats with ``low < high``.

    Examples
    --------
    >>> from palmopt.validation import check_value_range
    >>> check_value_range((0, 10))
    (0.0, 10.0)
    """
    try:
        lo, hi = value_range
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be a pair (low, high); got {value_range!r}.") from exc
    for x in (lo, hi):
        if isinstance(x, bool) or not isinstance(x, numbers.Real):
            raise TypeError(f"`{name}` must be a pair of real numbers; got {value_range!r}.")
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"`{name}` must be finite with low < high; got {value_range!r}.")
    return lo, hi


def as_matrix(X, name, d=None):
    """``X`` as a C-contiguous float64 (n, d) array of finite numbers; a 1-D X is one row."""
    try:
        A = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be a numeric array; got {type(X).__name__}.") from exc
    if A.ndim == 1:
        A = A[None, :]
    if A.ndim != 2 or A.shape[0] == 0:
        raise ValueError(f"`{name}` must have shape (n, d) with n >= 1; got shape {np.shape(X)}.")
    if d is not None and A.shape[1] != d:
        raise ValueError(f"`{name}` must have {d} columns (d = {d}); got shape {A.shape}.")
    if not np.all(np.isfinite(A)):
        bad = np.argwhere(~np.isfinite(A))[0]
        raise ValueError(f"`{name}` must be finite; row {bad[0]} has {A[tuple(bad)]} in column {bad[1]}.")
    return np.ascontiguousarray(A)


def as_values(portfolio, name="portfolio"):
    """The members' value vectors (k, d) of a Portfolio, anything with a ``values`` array, or an array."""
    values = getattr(portfolio, "values", portfolio)
    if callable(values):  # e.g. a dict's .values method: not a portfolio
        values = portfolio
    return as_matrix(values, name)


def undominated(T, chunk=512):
    """Indices of the first occurrence of each distinct, weakly undominated row of ``T``.

    A row dominated by another (``t ≤ t'`` everywhere, distinct) is never the unique
    maximiser of ``w·t`` for ``w ≥ 0``; dropping it changes no envelope.
    """
    _, first = np.unique(T, axis=0, return_index=True)
    first = np.sort(first)
    U = T[first]
    keep = np.ones(len(U), dtype=bool)
    for s in range(0, len(U), chunk):
        A = U[s : s + chunk]
        # A[a] is dominated by U[b] when A[a] <= U[b] everywhere (distinct rows: strictly somewhere)
        dominated = (A[:, None, :] <= U[None, :, :]).all(axis=2)
        dominated[np.arange(len(A)), np.arange(s, s + len(A))] = False
        keep[s : s + chunk] = ~dominated.any(axis=1)
    return first[keep]


def check_simplex(W, d=None, name="W"):
    """Rows of ``W`` on the probability simplex (within ``SIMPLEX_ATOL``), renormalised exactly."""
    W = as_matrix(W, name, d)
    neg = W.min(axis=1) < -SIMPLEX_ATOL
    off = np.abs(W.sum(axis=1) - 1.0) > SIMPLEX_ATOL
    if neg.any() or off.any():
        r = int(np.flatnonzero(neg | off)[0])
        raise ValueError(
            f"rows of `{name}` must lie on the simplex (entries >= 0, sum 1); "
            f"row {r} is {W[r].tolist()} with sum {W[r].sum():.12g}."
        )
    W = np.clip(W, 0.0, None)
    return np.ascontiguousarray(W / W.sum(axis=1, keepdims=True))


def as_rng(rng):
    """None | int | Generator -> Generator (never the global state)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"`rng` must be None, an int seed or a numpy Generator; got {type(rng).__name__}.")
