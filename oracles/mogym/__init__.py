"""MO-Gymnasium environments as exact tabular MOMDPs (extra ``mogym``).

The tables are built through the environments' own API (:mod:`oracles.mogym.enumeration`): a
breadth-first search from the reset state sets the unwrapped environment's internal state
(:mod:`oracles.mogym.adapters`), calls ``env.unwrapped.step(a)`` for every action and records
what comes back; randomness inside ``step`` is resolved exactly, not sampled.  The tables
themselves, and the builders of the supported environments, are in :mod:`oracles.mogym.tables`.

Normalisation (the units of every guarantee)
--------------------------------------------
Objective ``i`` has per-step bounds ``[low_i, high_i]``: the environment's declared
``reward_space`` widened to contain ``0`` and every reward seen during the enumeration.  Each
per-step reward is mapped to ``r' = (r - low_i) / (high_i - low_i)`` in ``[0, 1]``.
Termination leads to one absorbing state in which the environment's reward is ``0`` forever,
so its normalised reward is ``-low_i / (high_i - low_i)`` (``1`` for a penalty objective with
``high_i = 0``, such as deep-sea-treasure's time, ``0`` for ``low_i = 0``).  Normalised values
are ``v = (1 - gamma) * E[sum_t gamma^t r'_t]`` in ``[0, 1]``, and the discounted return in the
environment's units is exactly

    G_i = scale_i * v_i + offset_i,   scale_i = (high_i - low_i) / (1 - gamma),
                                     offset_i = low_i / (1 - gamma)

(:meth:`MOGymTable.to_env_units` / :meth:`MOGymTable.from_env_units`).  An additive gap
``delta`` in normalised units is ``scale_i * delta`` in the environment's units.

The tables model the *unwrapped* infinite-horizon dynamics: the ``TimeLimit`` (100 steps for
deep-sea-treasure and resource-gathering) that ``mo_gymnasium.make`` adds is left out, as in
the environments' published fronts.  (How the published fronts compare with the exact tables
is a study in ``bench/published_fronts.py``.)
"""

from .adapters import UnsupportedRandomness
from .tables import DST_MAPS, MOGymTable, deep_sea_treasure, fruit_tree, resource_gathering

__all__ = [
    "DST_MAPS",
    "MOGymTable",
    "UnsupportedRandomness",
    "deep_sea_treasure",
    "fruit_tree",
    "resource_gathering",
]
