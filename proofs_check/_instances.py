"""Small tabular instances with exact fronts, named by ``(kind, d, seed)`` specs."""

from functools import lru_cache

from oracles.tabular import demo_instance, few_policies, many_policies, random_momdp

__all__ = ["instance", "front", "describe"]

#: ``kind -> builder(d, seed)``; every instance has at most 4**6 deterministic policies.
KINDS = {
    "random_momdp": lambda d, seed: random_momdp(6, 4, d, gamma=0.9, rng=seed),
    "many_policies": lambda d, seed: many_policies(d, n_arms=40, rng=seed),
    "few_policies": lambda d, seed: few_policies(d, rng=seed),
    "demo_instance": lambda d, seed: demo_instance(),
}


@lru_cache(maxsize=None)
def instance(kind, d, seed):
    """The MOMDP of a spec (cached: the same object for the same spec)."""
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {sorted(KINDS)}; got {kind!r}.")
    mdp = KINDS[kind](d, seed)
    if mdp.d != d:
        raise ValueError(f"{kind} has d={mdp.d}, not {d}.")
    return mdp


@lru_cache(maxsize=None)
def front(kind, d, seed):
    """Its exact convex coverage set (``reference_front()``), cached."""
    return instance(kind, d, seed).reference_front()


def describe(spec):
    kind, d, seed = spec
    return f"{kind}(d={d}, seed={seed})"
