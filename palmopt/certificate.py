"""The result of a whole-simplex check: :class:`Certificate` (what was checked, against which
``OPT``, under which assumptions, and whether it holds)."""

from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from .status import Status

__all__ = ["Certificate", "KINDS"]


@dataclass(frozen=True, eq=False)
class Certificate:
    """The outcome of a whole-simplex check of ``w·u ≥ (1-eps) OPT(w) - delta``.

    Attributes
    ----------
    holds : bool
        ``violation <= SHORTFALL``: every ``w`` has a member with ``w·u ≥ (1-eps) OPT(w) - delta``.
    violation : float
        ``max_w (1-eps) OPT(w) - delta - max_j w·u_j`` (``<= 0`` when it holds).
    worst_weight : ndarray (d,)
        A weight attaining ``violation``.
    eps_star, eps_weight :
        Worst pure multiplicative gap ``max(0, 1 - min_w LB(w)/OPT(w))`` and a weight attaining
        it (``None`` when there is no gap).
    delta_star, delta_weight :
        Worst pure additive gap ``max_w OPT(w) - LB(w)`` and a weight attaining it.
    eps, delta : float
        The guarantee that was checked.
    kind : {"exact", "black-box", "sampled"}
        ``"exact"``: ``OPT`` is the upper envelope of an exact reference front
        (:func:`certify`).  ``"black-box"``: ``OPT`` is replaced by the optimistic upper bound
        built from the oracle's answers (adaptive runs); valid for an oracle within its declared
        error.  ``"sampled"``: the black-box bound checked at ``samples`` random weights only
        (``adaptive`` where the corner weights are too many): not a claim about every ``w`` --
        ``holds`` says every sample met the target, ``uncovered`` bounds the share of the
        simplex where it may fail, and :attr:`certified` is False.
    status : Status
        ``SUCCESS`` when every LP's primal and dual values agree within ``LP_SANDWICH`` when
        recomputed with NumPy; ``NUMERICAL_TROUBLE`` otherwise (then ``holds`` is not to be
        trusted).
    max_lp_gap : float
        The largest primal-dual disagreement seen.
    n_lps : int
    confidence : float
        The probability, over the oracle's evaluation noise (and, for ``"sampled"``, over
        palmopt's own draw of the weights), with which the claim is true of the policies' true
        values: ``1.0`` when every value used was exact and nothing was sampled.
    observed_error : float
        Black-box only: the largest excess, net of the noise allowance, of some returned policy's
        value at a queried weight over the bound the declared error puts on ``OPT`` there
        (``max_{q,j} w_q·v_j - b_q``, ``0`` when the answers are consistent).  A positive excess
        refutes the declared error (status ``ORACLE_INCONSISTENT``) and is a lower bound on the
        oracle's additive error at that weight.
    assumptions : Mapping
        What the claim rests on, in words and numbers (declared oracle error, confidence, value
        range, noise model, reference front).
    note : str
        A sentence for the user when the certificate does not hold for a reason other than a
        shortfall (e.g. the two weights whose answers contradict the declared error).
    uncovered : float
        ``"sampled"`` only: with probability ``confidence``, the weights where the target fails
        have uniform measure at most ``uncovered`` (``1 - alpha**(1/samples)`` for
        ``alpha = 1 - confidence`` when every sample met it; ``1.0`` when not verified).  ``0``
        for the whole-simplex kinds.
    samples : int
        ``"sampled"`` only: how many uniform random weights, drawn after the portfolio was
        fixed, the claim was verified on.
    """

    holds: bool
    violation: float
    worst_weight: np.ndarray
    eps_star: float
    eps_weight: np.ndarray
    delta_star: float
    delta_weight: np.ndarray
    eps: float
    delta: float
    kind: str
    status: Status
    max_lp_gap: float
    n_lps: int
    confidence: float = 1.0
    observed_error: float = 0.0
    assumptions: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    uncovered: float = 0.0
    samples: int = 0

    def __post_init__(self):
        for name in ("worst_weight", "eps_weight", "delta_weight"):
            w = getattr(self, name)
            if w is not None:
                w = np.array(w, dtype=np.float64)
                w.setflags(write=False)
                object.__setattr__(self, name, w)
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "assumptions", MappingProxyType(dict(self.assumptions)))

    @property
    def certified(self):
        """``holds`` and the LPs were verified: the guarantee is proven for every ``w`` (for
        ``kind``'s ``OPT``).  Never for ``"sampled"`` certificates."""
        return self.holds and self.status == Status.SUCCESS and self.kind != "sampled"

    def __repr__(self):
        return (
            f"Certificate(holds={self.holds}, eps={self.eps:g}, delta={self.delta:g}, "
            f"violation={self.violation:.4g}, eps_star={self.eps_star:.4g}, "
            f"delta_star={self.delta_star:.4g}, kind={self.kind!r}, status={str(self.status)!r}"
            + (f", confidence={self.confidence:g}" if self.confidence < 1 else "")
            + (f", observed_error={self.observed_error:.4g}" if self.observed_error > 0 else "")
            + (f", uncovered={self.uncovered:.3g}, samples={self.samples}" if self.kind == "sampled" else "")
            + ")"
        )

    def describe(self):
        """The claim in words, with every assumption it rests on (printed by the CLI)."""
        target = f"a member with w·v >= (1 - {self.eps:g}) OPT(w) - {self.delta:g}"
        if self.kind == "sampled":
            verdict = "sampled, NOT certified for every w" + ("" if self.holds else f" (target missed, {self.status})")
            lines = [
                f"{verdict}: {target} at all {self.samples} uniform random weights drawn after the search; with "
                f"probability >= {self.confidence:g}, the weights without such a member cover at most "
                f"{self.uncovered:.3g} of the simplex  [worst sampled shortfall {self.violation:.3g}]"
                if self.holds and self.samples
                else f"{verdict}: {target} was checked at random weights only  [worst sampled shortfall "
                f"{self.violation:.3g}]"
            ]
        else:
            verdict = "certified" if self.certified else f"NOT certified ({self.status})"
            lines = [
                f"{verdict}: every w on the simplex has {target}"
                f"  [{self.kind}; worst shortfall {self.violation:.3g}, eps* {self.eps_star:.3g}, "
                f"delta* {self.delta_star:.3g}]"
            ]
        if self.confidence < 1 and self.kind != "sampled":
            lines.append(f"  holds with probability >= {self.confidence:g} over the evaluation noise")
        lines += [f"  assumes {key}: {value}" for key, value in self.assumptions.items()]
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)

    def to_dict(self):
        """A JSON-serialisable dict (arrays as lists)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.tolist() if isinstance(v, np.ndarray) else (str(v) if isinstance(v, Status) else v)
        out["assumptions"] = _jsonable(self.assumptions)
        return out

    @classmethod
    def from_dict(cls, data):
        """The certificate written by :meth:`to_dict` (values checked, no code run)."""
        data = dict(data)
        if "kind" not in data and data.get("status") in _LEGACY_STATUS:  # written before `kind` existed
            data["kind"], data["status"] = _LEGACY_STATUS[data["status"]]
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.name not in _OPTIONAL}  # the rest came later
        if not required <= set(data) <= names:
            raise ValueError(f"a certificate needs the keys {sorted(required)} (and may have {sorted(_OPTIONAL)}); got {sorted(data)}.")
        if not isinstance(data.get("assumptions", {}), dict):
            raise ValueError("certificate `assumptions` must be a mapping.")
        for key in ("worst_weight", "eps_weight", "delta_weight"):
            if data[key] is not None:
                data[key] = np.asarray(data[key], dtype=np.float64)
        data["status"] = Status(data["status"])
        if data["kind"] not in KINDS:
            raise ValueError(f"certificate `kind` must be one of {KINDS}; got {data['kind']!r}.")
        return cls(**data)


#: Fields added after the first saved certificates (their defaults apply when absent).
_OPTIONAL = ("confidence", "observed_error", "assumptions", "note", "uncovered", "samples")


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


#: What ``OPT`` a certificate was computed against.
KINDS = ("exact", "black-box", "sampled")
#: Certificates saved before ``kind`` existed: their status word -> (kind, status).
_LEGACY_STATUS = {
    "ok": ("exact", "success"),
    "black-box": ("black-box", "success"),
    "numerical-trouble": ("exact", "numerical-trouble"),
}
