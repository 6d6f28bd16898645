"""The one vocabulary of outcomes: every result object carries a :class:`Status`.

Run-time outcomes (a budget ran out, a certificate could not be established, a solver was
imprecise) are reported here, never raised; exceptions are for bad input and failed oracles.
"""

import enum

__all__ = ["Status"]


class Status(enum.StrEnum):
    """How a computation ended.  A ``StrEnum``: ``Status.SUCCESS == "success"``.

    Examples
    --------
    >>> from palmopt import Status
    >>> Status("budget-exhausted") is Status.BUDGET_EXHAUSTED, Status.SUCCESS == "success"
    (True, True)
    """

    #: Finished and, where the result states a guarantee, the guarantee is certified.
    SUCCESS = "success"
    #: Finished, but the stated guarantee could not be certified.
    NOT_CERTIFIED = "not-certified"
    #: Finished with a sampled guarantee only (``adaptive`` where the corner weights are too
    #: many): the target was met at random weights drawn after the search, which bounds the share
    #: of the simplex where it may fail (``certificate.uncovered``); not proven for every weight.
    SAMPLED = "sampled"
    #: Stopped at the call budget (``max_calls``) or round budget (``max_rounds``).
    BUDGET_EXHAUSTED = "budget-exhausted"
    #: Stopped at ``time_limit``; the result is the best found, with bounds.
    TIME_LIMIT = "time-limit"
    #: A solver's answer could not be verified (primal and dual disagree beyond tolerance).
    NUMERICAL_TROUBLE = "numerical-trouble"
    #: The oracle's own answers contradict its declared error: some policy scored higher at a
    #: queried weight than the declared error allows the policy returned there; no guarantee is
    #: claimed (declare a larger error, or fix the oracle).
    ORACLE_INCONSISTENT = "oracle-inconsistent"
