"""Every numerical tolerance palmopt uses, in one place, each with the reason for its size.

They are absolute, on quantities normalised to [0, 1] (weights on the simplex, values in
``value_range``).  A certificate never relies on one being small: LP answers are re-verified
with NumPy, and a disagreement larger than :data:`LP_SANDWICH` is reported as a
numerical-trouble status rather than absorbed.
"""

#: ``sum(w) == 1`` and ``w >= 0`` for user-supplied weights.
SIMPLEX_ATOL = 1e-9
#: Oracle values (and reference fronts) may leave their declared range by this much.
RANGE_ATOL = 1e-9
#: Largest accepted gap between an LP's verified primal value and its verified dual bound.
LP_SANDWICH = 1e-7
#: A certified shortfall, violation or covering slack at most this counts as met (LP accuracy).
SHORTFALL = 1e-9
#: Added to the vertex-enumerated optimistic bound (Qhull's vertices are accurate to ~1e-14).
VERTEX_MARGIN = 1e-9
#: Corner weights closer than this (rounded to 12 decimals) are the same weight.
WEIGHT_DECIMALS = 12
#: Value vectors within this (max-norm) are the same policy's values (ties between policies).
SAME_VALUE = 1e-10
#: Row sums of transition matrices and of stochastic policies.
STOCHASTIC_ATOL = 1e-9
#: HiGHS primal and dual feasibility tolerances of the certificate LPs (HiGHS's default is 1e-7).
HIGHS_FEASIBILITY = 1e-10
#: Envelope pieces within this of the maximum are tied (corner weights of the lower envelope).
CORNER_TIE = 1e-10
#: The rounding of one floating-point operation on numbers <= 1: comparisons that must not flip
#: on it (the adaptive target against the declared oracle error, Dinkelbach's stopping test).
FLOAT_SLACK = 1e-15
#: Guard of ``ceil``/``floor`` of a computed count against a quotient one ulp off an integer.
INTEGER_ROUNDING = 1e-12
