"""Shared hypothesis strategies: points on the simplex biased towards vertices and faces
(where the bounds are tight), tolerances, and finite policy sets in [0, 1]^d."""

import numpy as np
from hypothesis import strategies as st

unit = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def simplex_points(draw, d, n_min=1, n_max=8):
    """An (n, d) array of rows on the simplex: vertices, points on faces, and interior points."""
    n = draw(st.integers(n_min, n_max))
    rows = []
    for _ in range(n):
        kind = draw(st.sampled_from(["vertex", "face", "interior", "spiky"]))
        if kind == "vertex":
            w = np.zeros(d)
            w[draw(st.integers(0, d - 1))] = 1.0
        else:
            x = np.array(draw(st.lists(unit, min_size=d, max_size=d)))
            if kind == "face":
                x *= np.array(draw(st.lists(st.booleans(), min_size=d, max_size=d)))
            elif kind == "spiky":
                x = x**8
            if x.sum() <= 0:
                x[draw(st.integers(0, d - 1))] = 1.0
            w = x / x.sum()
        rows.append(w)
    return np.array(rows)


@st.composite
def policy_values(draw, d, k_min=1, k_max=12):
    """A (k, d) array of achievable reward vectors in [0, 1]^d (with corners and duplicates)."""
    k = draw(st.integers(k_min, k_max))
    V = np.array(draw(st.lists(st.lists(unit, min_size=d, max_size=d), min_size=k, max_size=k)))
    if draw(st.booleans()):  # snap some entries to 0 or 1
        V = np.where(V < 0.2, 0.0, np.where(V > 0.8, 1.0, V))
    return np.where(V < 1e-9, 0.0, V)  # no sub-nanoscale rewards (an LP cannot resolve them)


tolerances = st.floats(0.02, 0.5, allow_nan=False)
