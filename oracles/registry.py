"""Oracles by name, for the command line and run manifests.

``from_spec("demo")``, ``from_spec("random", n_states=10, n_actions=3, d=3, seed=0)``, or any
importable factory ``from_spec("package.module:factory", **kwargs)``.  Each built-in entry
imports its oracle module only when used.
"""

import importlib

__all__ = ["from_spec", "parse_args", "NAMES"]


def _demo():
    from .tabular.instances import demo_instance

    return demo_instance()


def _random(n_states=10, n_actions=3, d=3, gamma=0.9, seed=0):
    from .tabular.instances import random_momdp

    return random_momdp(int(n_states), int(n_actions), int(d), gamma=float(gamma), rng=int(seed))


def _many(d=3, n_arms=64, gamma=0.9, seed=0):
    from .tabular.instances import many_policies

    return many_policies(int(d), n_arms=int(n_arms), gamma=float(gamma), rng=int(seed))


NAMES = {"demo": _demo, "random": _random, "many-policies": _many}


def parse_args(pairs):
    """``["k=v", ...]`` -> dict, numbers converted."""
    out = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise ValueError(f"oracle arguments must look like key=value; got {pair!r}.")
        key, value = pair.split("=", 1)
        for convert in (int, float):
            try:
                value = convert(value)
                break
            except ValueError:
                pass
        out[key.strip()] = value
    return out


def from_spec(name, **kwargs):
    """Build an oracle from a registered name or a ``module:factory`` import path."""
    if name in NAMES:
        return NAMES[name](**kwargs)
    if ":" in name:
        module, attr = name.split(":", 1)
        return getattr(importlib.import_module(module), attr)(**kwargs)
    raise ValueError(f"unknown oracle {name!r}; use one of {sorted(NAMES)} or 'package.module:factory'.")
