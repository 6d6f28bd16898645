"""Oracles by name, for the command line and run manifests.

``from_spec("demo")``, ``from_spec("random", n_states=10, n_actions=3, d=3, seed=0)``, or any
importable factory ``from_spec("package.module:factory", **kwargs)``.  Each built-in entry
imports its oracle module only when used.

Arguments are checked against the factory's signature: unknown names are listed with the
valid ones, and each value must have the type of the parameter's annotation or default
(``d=2.5`` for an integer parameter is an error, never ``d=2``).  :func:`parse_args` turns
command-line ``key=value`` strings into such typed values.

A ``module:factory`` name imports code.  Callers that read a name from a file (a run
manifest) must accept only registered names (:func:`is_registered`), never import what a
file names.
"""

import importlib
import inspect
import math

__all__ = ["from_spec", "parse_args", "check_args", "is_registered", "factory", "NAMES"]


def _demo():
    from .tabular.instances import demo_instance

    return demo_instance()


def _random(n_states: int = 10, n_actions: int = 3, d: int = 3, gamma: float = 0.9, seed: int = 0):
    from .tabular.instances import random_momdp

    return random_momdp(int(n_states), int(n_actions), int(d), gamma=float(gamma), rng=int(seed))


def _many(d: int = 3, n_arms: int = 64, gamma: float = 0.9, seed: int = 0):
    from .tabular.instances import many_policies

    return many_policies(int(d), n_arms=int(n_arms), gamma=float(gamma), rng=int(seed))


NAMES = {"demo": _demo, "random": _random, "many-policies": _many}

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def is_registered(name):
    """Whether ``name`` is a built-in oracle (safe to take from a file: it imports nothing unknown)."""
    return isinstance(name, str) and name in NAMES


def factory(name):
    """The factory for a registered name or a ``module:factory`` path (which is imported).

    Raises ValueError, with a one-line message, for an unknown name, a module that cannot be
    imported, or a missing or non-callable attribute.
    """
    if not isinstance(name, str):
        raise TypeError(f"an oracle name must be a string; got {type(name).__name__}.")
    if name in NAMES:
        return NAMES[name]
    if ":" not in name:
        raise ValueError(f"unknown oracle {name!r}; use one of {sorted(NAMES)} or 'package.module:factory'.")
    module, attr = name.split(":", 1)
    if not module or not attr:
        raise ValueError(f"an oracle path must look like 'package.module:factory'; got {name!r}.")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module!r} for oracle {name!r}: {exc}") from None
    fn = getattr(mod, attr, None)
    if fn is None or not callable(fn):
        raise ValueError(f"module {module!r} has no callable {attr!r} (oracle {name!r}).")
    return fn


def _parameters(fn):
    """``{name: type or None}`` for the keyword parameters of ``fn`` and whether it takes ``**kwargs``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}, True
    params, var_kw = {}, False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
            continue
        if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
            continue
        kind = None
        ann = p.annotation
        if isinstance(ann, str):
            ann = _TYPES.get(ann, ann)
        if ann in (int, float, str, bool):
            kind = ann
        elif p.default is not p.empty and type(p.default) in (int, float, str, bool):
            kind = type(p.default)
        params[p.name] = kind
    return params, var_kw


def _convert(text, kind, key, name):
    where = f"oracle argument {key}={text!r} for {name!r}"
    if kind is bool:
        low = text.strip().lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise ValueError(f"{where}: must be true or false.")
    if kind is int:
        try:
            return int(text.strip(), 10)
        except ValueError:
            raise ValueError(f"{where}: must be an integer.") from None
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{where}: must be a number.") from None
        if not math.isfinite(value):
            raise ValueError(f"{where}: must be a finite number.")
        return value
    if kind is str:
        return text
    for convert in (int, float):  # no declared type: the most specific reading
        try:
            value = convert(text)
        except ValueError:
            continue
        if convert is int or math.isfinite(value):
            return value
    return text


def check_args(name, args):
    """Check typed ``args`` (a dict, e.g. read from a manifest) against the factory of ``name``;
    returns them (ints accepted for floats).  ValueError names the bad key and the valid ones."""
    fn = factory(name)
    params, var_kw = _parameters(fn)
    if not isinstance(args, dict):
        raise ValueError(f"oracle arguments for {name!r} must be a mapping; got {type(args).__name__}.")
    for key, value in args.items():
        if key not in params and not var_kw:
            valid = ", ".join(sorted(params)) or "none"
            raise ValueError(f"unknown oracle argument {key!r} for {name!r}; valid: {valid}.")
        kind = params.get(key)
        if kind is None:
            ok = isinstance(value, (int, float, str, bool)) or value is None
        elif kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, str)
        if not ok:
            shown = kind.__name__ if kind is not None else "a number, string or boolean"
            raise ValueError(f"oracle argument {key}={value!r} for {name!r}: must be of type {shown}.")
    return dict(args)


def parse_args(pairs, name=None):
    """``["k=v", ...]`` -> dict.  With ``name``, keys are checked against the factory's
    parameters and values converted to their declared types (annotation, else the type of the
    default); without, numbers are converted where they parse.

    Examples
    --------
    >>> from oracles.registry import parse_args
    >>> parse_args(["d=4", "gamma=0.5"], "random")
    {'d': 4, 'gamma': 0.5}
    >>> parse_args(["d=2.5"], "random")
    Traceback (most recent call last):
    ...
    ValueError: oracle argument d='2.5' for 'random': must be an integer.
    """
    params, var_kw = ({}, True) if name is None else _parameters(factory(name))
    out = {}
    for pair in pairs or ():
        if not isinstance(pair, str) or "=" not in pair:
            raise ValueError(f"oracle arguments must look like key=value; got {pair!r}.")
        key, value = pair.split("=", 1)
        key = key.strip()
        if not key.isidentifier():
            raise ValueError(f"oracle argument names must be identifiers; got {key!r} in {pair!r}.")
        if key in out:
            raise ValueError(f"oracle argument {key!r} is given twice.")
        if name is not None and key not in params and not var_kw:
            valid = ", ".join(sorted(params)) or "none"
            raise ValueError(f"unknown oracle argument {key!r} for {name!r}; valid: {valid}.")
        out[key] = _convert(value, params.get(key), key, name or "the oracle")
    return out


def from_spec(name, **kwargs):
    """Build an oracle from a registered name or a ``module:factory`` import path.

    The keyword arguments are checked against the factory's signature first
    (:func:`check_args`).  Never pass a name read from an untrusted file here unless
    :func:`is_registered` says it is built in.
    """
    check_args(name, kwargs)
    return factory(name)(**kwargs)
