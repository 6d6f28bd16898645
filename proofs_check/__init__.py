r"""Machine checks of the claims palmopt's guarantees rest on, one module per claim.

Each check returns a :class:`ClaimResult`: the claim checked, the parameters it was checked
over, the evidence (numbers, witnesses, small tables) and whether it passed.  Tests assert
``passed``; the notebooks show the evidence; ``python -m proofs_check [--quick]`` runs them all
and prints a table.

========================  =================================================================
check                     claim
========================  =================================================================
``rounding_lemma``        DESIGN.md §2: the oracle policy at a net cell's lower corner serves
                          every weight of the cell within (eps, delta) -- sympy chain of
                          inequalities and an exact adversarial LP search over the cells.
``net_count``             ``bounds.net_size`` is the exact size of ``cover``, equal to a
                          brute-force count over the full product of levels; the closed forms
                          bound it from above.
``lower_bound``           no (eps, delta)-portfolio of the sphere front is smaller than
                          ``bounds.lower_bound``.
``pruning_split``         PALM with any budget split is certified (eps, delta) against the
                          exact front of tabular instances.
``adaptive_soundness``    the black-box certificate of ``adaptive`` never claims more than the
                          exact one.
``corner_principle``      the worst gap over the simplex is attained at a corner weight.
``scalarized_palm``       PALM for Tchebycheff and p-mean users (docs/design.md §6) serves every
                          weight of a fine grid against the exact cvxpy optimum over stochastic
                          policies; ``PMean(p <= 0)`` is refused, with a counterexample.
``noisy_certificate``     the noise budget's boxes all hold with probability >= confidence, and
                          on that event the robust certificate is never false (truths placed
                          adversarially in the boxes, exact check against the true front).
``observed_error_bound``  the observed oracle error never exceeds the oracle's true error.
========================  =================================================================
"""

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

__all__ = [
    "CHECKS",
    "ClaimResult",
    "adaptive_soundness",
    "corner_principle",
    "lower_bound",
    "net_count",
    "noisy_certificate",
    "observed_error_bound",
    "pruning_split",
    "scalarized",
    "rounding_lemma",
    "run_all",
]


def _plain(x):
    """NumPy scalars and arrays as Python numbers and lists (readable, JSON-friendly)."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Mapping):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    return x


def _short(value):
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@dataclass(frozen=True, repr=False, eq=False)
class ClaimResult:
    """The outcome of one claim's check.

    Attributes
    ----------
    claim : str
        The claim's name (its check's name), e.g. ``"rounding_lemma"``.
    parameters : Mapping
        What it was checked over (dimensions, tolerances, instances, sample sizes).
    evidence : Mapping
        What was found.  Scalars come first, in order of importance (the table of
        ``python -m proofs_check`` shows the first few); lists and tables follow.
    passed : bool
        Whether every part of the check held.

    Both mappings are read-only, with NumPy values converted to plain Python numbers/lists.

    Examples
    --------
    >>> from proofs_check import ClaimResult
    >>> r = ClaimResult("toy", {"d": 2}, {"max_violation": -0.01, "cases": [1, 2]}, True)
    >>> r
    ClaimResult(claim='toy', passed=True, max_violation=-0.01; parameters: d=2)
    >>> r.summary()
    'max_violation=-0.01'
    """

    claim: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)
    passed: bool = False

    def __post_init__(self):
        object.__setattr__(self, "parameters", MappingProxyType(_plain(dict(self.parameters))))
        object.__setattr__(self, "evidence", MappingProxyType(_plain(dict(self.evidence))))
        object.__setattr__(self, "passed", bool(self.passed))

    def summary(self, max_items=3):
        """The first ``max_items`` scalar evidence entries, as ``key=value`` text."""
        items = [(k, v) for k, v in self.evidence.items() if isinstance(v, (bool, int, float, str))]
        return ", ".join(f"{k}={_short(v)}" for k, v in items[:max_items])

    def parameter_summary(self, max_items=3):
        """The first ``max_items`` parameters, as ``key=value`` text (long values shortened)."""
        out = []
        for k, v in list(self.parameters.items())[:max_items]:
            text = _short(v)
            out.append(f"{k}={text if len(text) <= 40 else text[:37] + '...'}")
        return ", ".join(out)

    def __repr__(self):
        return (
            f"ClaimResult(claim={self.claim!r}, passed={self.passed}, {self.summary()}; "
            f"parameters: {self.parameter_summary()})"
        )

    def __getstate__(self):  # pickle without the read-only views
        return {"claim": self.claim, "parameters": dict(self.parameters), "evidence": dict(self.evidence),
                "passed": self.passed}

    def __setstate__(self, state):
        for key, value in state.items():
            object.__setattr__(self, key, value)
        self.__post_init__()

    def to_dict(self):
        """A JSON-serialisable dict."""
        return {"claim": self.claim, "parameters": dict(self.parameters), "evidence": dict(self.evidence),
                "passed": self.passed}


# The checks import ClaimResult from here, so they come after its definition.
from .soundness import adaptive_soundness  # noqa: E402
from .corners import corner_principle  # noqa: E402
from .counting import net_count  # noqa: E402
from .pruning import pruning_split  # noqa: E402
from .rounding import rounding_lemma  # noqa: E402
from .scalarized import scalarized  # noqa: E402
from .noisy import noisy_certificate, observed_error_bound  # noqa: E402
from .sphere import lower_bound  # noqa: E402


@dataclass(frozen=True, eq=False)
class Check:
    """A registered check: the function and its keyword arguments for a full and a quick run."""

    name: str
    function: Any
    full: Mapping[str, Any]
    quick: Mapping[str, Any]

    def __call__(self, quick=False):
        return self.function(**(self.quick if quick else self.full))


#: Every check, in the order ``python -m proofs_check`` runs them (full: < 2 min on 2 cores).
CHECKS = {
    c.name: c
    for c in [
        Check(
            "rounding_lemma",
            rounding_lemma,
            full={},
            quick={"cases": ((2, 0.05, 0.05), (3, 0.3, 0.3), (3, 0.1, 0.02)), "n_lp": 40},
        ),
        Check("net_count", net_count, full={}, quick={"grid": ((2, 0.05, 0.05), (3, 0.2, 0.1), (4, 0.4, 0.3))}),
        Check(
            "lower_bound",
            lower_bound,
            full={},
            quick={"cases": ((2, 0.05, 0.001), (3, 0.2, 0.01)), "resolution": {2: 600, 3: 40}},
        ),
        Check(
            "pruning_split",
            pruning_split,
            full={},
            quick={"instances": (("random_momdp", 2, 0),), "splits": (0.3, 0.7), "targets": ((0.1, 0.1),)},
        ),
        Check(
            "adaptive_soundness",
            adaptive_soundness,
            full={},
            quick={
                "instances": (("random_momdp", 3, 1), ("many_policies", 2, 0)),
                "targets": ((0.05, 0.0), (0.1, 0.05)),
            },
        ),
        Check(
            "corner_principle",
            corner_principle,
            full={},
            quick={"instances": (("random_momdp", 2, 0), ("random_momdp", 3, 1)), "n_dense": 4000},
        ),
        Check("scalarized_palm", scalarized, full={}, quick={"instances": ((2, 0, 0.2, 0.02),), "grid": {2: 60}}),
        Check("noisy_certificate", noisy_certificate, full={}, quick={"mc_runs": 1000, "instances": 12}),
        Check("observed_error_bound", observed_error_bound, full={}, quick={"instances": 15}),
    ]
}


def run_all(quick=False, names=None):
    """Run the registered checks (all, or those in ``names``); return their results in order."""
    names = list(CHECKS) if names is None else list(names)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; choose from {list(CHECKS)}.")
    return [CHECKS[n](quick=quick) for n in names]
