"""Portfolio: the members (weights, value vectors, policies), routing a user's weight to
a member, and persistence (a JSON manifest plus arrays)."""

import json
import os
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from . import _kernels
from .status import Status
from .validation import as_matrix, check_fraction, check_simplex

__all__ = ["Portfolio"]

_MANIFEST = "portfolio.json"
_ARRAYS = "portfolio.npz"


def _frozen_array(a, name, d=None):
    a = as_matrix(a, name, d).copy()
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False, repr=False)
class Portfolio:
    """A set of policies and the weights they were trained for.

    Attributes
    ----------
    values : ndarray, shape (k, d)
        Each member's expected reward vector.
    weights : ndarray, shape (k, d)
        The weight each member was obtained with (rows on the simplex).
    policies : tuple
        The oracle's policy handles, one per member (may be ``None``).
    n_oracle_calls : int
        Oracle calls the construction needed (calls answered from a run store included).
    eps, delta : float
        The guarantee the portfolio was built for, ``w·V ≥ (1-eps) OPT(w) - delta``, in [0, 1)
        (``nan`` for a baseline built without a target); ``delta=None`` means ``delta = eps``.
    method : str
        How it was built (``"palm"``, ``"adaptive"``, ``"uniform"``, ...).
    status : Status
        ``SUCCESS``, or why the construction stopped short (e.g. ``BUDGET_EXHAUSTED``).
    certificate : Certificate or None
        Evidence carried from the construction (adaptive runs carry their black-box
        certificate); :func:`palmopt.certify` computes one against a reference front.
    info : Mapping
        Construction details (net size, sizes before and after pruning, budget split, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt import Portfolio
    >>> p = Portfolio(values=[[1, 0], [0.6, 0.6], [0, 1]], weights=[[1, 0], [.5, .5], [0, 1]])
    >>> p
    Portfolio(method='custom', k=3, d=2, eps=nan, delta=nan, n_oracle_calls=3)
    >>> p.route([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    array([0, 1, 2])
    """

    values: np.ndarray
    weights: np.ndarray
    policies: tuple = None
    n_oracle_calls: int = None
    eps: float = float("nan")
    delta: float = None
    method: str = "custom"
    status: Status = Status.SUCCESS
    certificate: Any = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        values = _frozen_array(self.values, "values")
        weights = _frozen_array(check_simplex(self.weights, values.shape[1], "weights"), "weights")
        if weights.shape[0] != values.shape[0]:
            raise ValueError(
                f"`weights` and `values` must have one row per member; got {weights.shape[0]} and {values.shape[0]}."
            )
        policies = (None,) * len(values) if self.policies is None else tuple(self.policies)
        if len(policies) != len(values):
            raise ValueError(f"`policies` must have one entry per member ({len(values)}); got {len(policies)}.")
        set_ = object.__setattr__
        set_(self, "values", values)
        set_(self, "weights", weights)
        set_(self, "policies", policies)
        set_(self, "status", Status(self.status))
        set_(self, "eps", _target(self.eps, "eps"))
        set_(self, "delta", self.eps if self.delta is None else _target(self.delta, "delta"))
        set_(self, "n_oracle_calls", len(values) if self.n_oracle_calls is None else int(self.n_oracle_calls))
        set_(self, "info", MappingProxyType(dict(self.info)))

    def __reduce__(self):  # pickle without the read-only views
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        state["info"] = dict(self.info)
        return (_rebuild, (type(self), state))

    @property
    def d(self):
        return self.values.shape[1]

    def __len__(self):
        return self.values.shape[0]

    def __repr__(self):
        status = "" if self.status == Status.SUCCESS else f", status={str(self.status)!r}"
        return (
            f"Portfolio(method={self.method!r}, k={len(self)}, d={self.d}, eps={self.eps:.4g}, "
            f"delta={self.delta:.4g}, n_oracle_calls={self.n_oracle_calls}{status})"
        )

    def best_values(self, W):
        """``max_j w·V_j`` and the maximising member for each row of ``W`` (rows on the simplex)."""
        W = check_simplex(W, self.d)
        return _kernels.best_value(W, np.ascontiguousarray(self.values.T))

    def route(self, W):
        """Index of the member that serves each user best (lowest index on ties).

        Parameters
        ----------
        W : array_like, shape (m, d) or (d,)
            User weights on the simplex.

        Returns
        -------
        ndarray of int64, shape (m,)
        """
        return self.best_values(W)[1]

    # -- persistence -------------------------------------------------------------------

    def save(self, path, oracle=None):
        """Write the portfolio to directory ``path`` (created if needed).

        Policies are saved through ``oracle.save_policy(policy, directory)`` when the oracle
        has that hook; otherwise NumPy arrays are stored in the array file, strings (e.g.
        adapter directories) and ``None`` in the manifest.  Other objects raise ``TypeError``
        (pass the oracle that made them).
        """
        os.makedirs(path, exist_ok=True)
        arrays = {"values": self.values, "weights": self.weights}
        policies = []
        saver = getattr(oracle, "save_policy", None)
        for i, pol in enumerate(self.policies):
            if pol is None:
                policies.append(None)
            elif callable(saver):
                stored = saver(pol, os.path.join(path, "policies"))
                policies.append({"path": os.path.relpath(stored, path)})
            elif isinstance(pol, np.ndarray):
                arrays[f"policy_{i}"] = pol
                policies.append({"array": f"policy_{i}"})
            elif isinstance(pol, str):
                policies.append({"handle": pol})
            else:
                raise TypeError(
                    f"cannot save policy {i} of type {type(pol).__name__}: pass the oracle that made it "
                    f"(with a `save_policy` hook) to Portfolio.save."
                )
        np.savez(os.path.join(path, _ARRAYS), **arrays)
        cert = self.certificate.to_dict() if hasattr(self.certificate, "to_dict") else None
        manifest = {
            "format": "palmopt.portfolio/1",
            "method": self.method,
            "status": str(self.status),
            "eps": self.eps,
            "delta": self.delta,
            "n_oracle_calls": self.n_oracle_calls,
            "policies": policies,
            "certificate": cert,
            "info": _jsonable(dict(self.info)),
        }
        with open(os.path.join(path, _MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2)
        return path

    @classmethod
    def load(cls, path, oracle=None):
        """Read a portfolio written by :meth:`save` (policies through ``oracle.load_policy``)."""
        manifest_path = os.path.join(path, _MANIFEST)
        if not os.path.exists(manifest_path):
            raise FileNotFoundError(f"no portfolio at {path!r} (missing {_MANIFEST}).")
        with open(manifest_path) as f:
            manifest = json.load(f)
        with np.load(os.path.join(path, _ARRAYS)) as arrays:
            arrays = dict(arrays)
        loader = getattr(oracle, "load_policy", None)
        policies = []
        for entry in manifest["policies"]:
            if entry is None:
                policies.append(None)
            elif "array" in entry:
                policies.append(arrays[entry["array"]])
            elif "handle" in entry:
                policies.append(entry["handle"])
            else:
                full = os.path.join(path, entry["path"])
                policies.append(loader(full) if callable(loader) else full)
        from .certificate import Certificate

        cert = manifest.get("certificate")
        return cls(
            values=arrays["values"],
            weights=arrays["weights"],
            policies=policies,
            n_oracle_calls=manifest["n_oracle_calls"],
            eps=manifest["eps"],
            delta=manifest["delta"],
            method=manifest["method"],
            status=manifest.get("status", "success"),
            certificate=None if cert is None else Certificate.from_dict(cert),
            info=manifest["info"],
        )


def _target(x, name):
    """A stated tolerance as a float in [0, 1), or ``nan`` (None) for a portfolio without a target."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return float("nan")
    return check_fraction(x, name, allow_zero=True)


def _rebuild(cls, state):
    return cls(**state)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
