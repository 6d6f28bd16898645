"""Portfolio: the members (weights, value vectors, policies), routing a user's weight to
a member, and persistence (a JSON manifest plus arrays)."""

import json
import os
import shutil
import tempfile
import zipfile
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

    @property
    def scalarization(self):
        """How users aggregate the objectives (``info["scalarization"]``; the weighted sum by default)."""
        from .scalarizations import Linear, from_repr

        text = self.info.get("scalarization")
        return Linear() if text is None else from_repr(text)

    def best_values(self, W):
        """``max_j g_w(V_j)`` and the maximising member for each row of ``W`` (rows on the
        simplex), for the portfolio's :attr:`scalarization` (``w·V_j`` by default)."""
        W = check_simplex(W, self.d)
        scal = self.scalarization
        if scal.linear:
            return _kernels.best_value(W, np.ascontiguousarray(self.values.T))
        G = scal(W, self.values)
        best = np.argmax(G, axis=1)
        return G[np.arange(len(W)), best], best

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
        has that hook (it must write inside ``directory``); otherwise NumPy arrays of numbers
        or strings are stored in the array file, strings (e.g. adapter directories) and
        ``None`` in the manifest.  Other objects raise ``TypeError`` (pass the oracle that
        made them).  The manifest is strict JSON (a missing target, ``nan``, is written as
        ``null``).

        Everything is written to a fresh sibling directory that then replaces ``path``, so a
        save over an older portfolio leaves no stale policy files and a failed save leaves the
        old portfolio intact.  ``path`` must be absent, empty, or a portfolio directory.
        """
        path = os.fspath(path)
        if os.path.exists(path):
            if not os.path.isdir(path):
                raise ValueError(f"cannot save a portfolio to {path!r}: it exists and is not a directory.")
            if os.listdir(path) and not os.path.isfile(os.path.join(path, _MANIFEST)):
                raise ValueError(
                    f"cannot save a portfolio to {path!r}: it is a non-empty directory without {_MANIFEST} (not a "
                    f"portfolio), and saving replaces the whole directory; choose another path."
                )
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".portfolio-", dir=parent)
        moved = None  # the previous portfolio, while the new one is swapped in
        try:
            self._write(tmp, oracle)
            if os.path.exists(path):
                moved = tempfile.mkdtemp(prefix=".portfolio-old-", dir=parent)
                os.rmdir(moved)
                os.rename(path, moved)
            os.rename(tmp, path)
        except BaseException:
            if moved is not None and not os.path.exists(path):
                os.rename(moved, path)  # put the previous portfolio back
                moved = None
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if moved is not None:
            shutil.rmtree(moved, ignore_errors=True)
        return path

    def _write(self, path, oracle):
        arrays = {"values": self.values, "weights": self.weights}
        policies = []
        saver = getattr(oracle, "save_policy", None)
        root = os.path.realpath(path)
        for i, pol in enumerate(self.policies):
            if pol is None:
                policies.append(None)
            elif callable(saver):
                stored = os.path.realpath(saver(pol, os.path.join(path, "policies")))
                if os.path.commonpath([root, stored]) != root:
                    raise ValueError(
                        f"the oracle's save_policy wrote policy {i} to {stored!r}, outside the portfolio directory; "
                        f"it must write inside the directory it is given."
                    )
                policies.append({"path": os.path.relpath(stored, root)})
            elif isinstance(pol, np.ndarray) and pol.dtype.kind in "biufcUS?":
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
        if cert is not None:  # non-finite floats as strings, so that strict JSON keeps them
            cert = {k: _float_text(v) if k in _CERT_FLOATS else v for k, v in cert.items()}
        manifest = {
            "format": "palmopt.portfolio/1",
            "method": self.method,
            "status": str(self.status),
            "eps": self.eps,
            "delta": self.delta,
            "n_oracle_calls": self.n_oracle_calls,
            "policies": policies,
            "certificate": cert,
            "info": dict(self.info),
        }
        with open(os.path.join(path, _MANIFEST), "w") as f:
            json.dump(_jsonable(manifest), f, indent=2, allow_nan=False)

    @classmethod
    def load(cls, path, oracle=None):
        """Read a portfolio written by :meth:`save` (policies through ``oracle.load_policy``).

        The directory is untrusted data: arrays are read without pickle, every policy path
        must stay inside ``path``, and a malformed manifest raises ``ValueError`` naming the
        file and the problem.
        """
        path = os.fspath(path)
        manifest_path = os.path.join(path, _MANIFEST)
        arrays_path = os.path.join(path, _ARRAYS)
        if not os.path.exists(manifest_path):
            raise FileNotFoundError(f"no portfolio at {path!r} (missing {_MANIFEST}).")

        def bad(problem):
            return ValueError(f"the portfolio manifest {manifest_path!r} is invalid: {problem}.")

        try:
            with open(manifest_path, encoding="utf-8") as f:
                manifest = json.load(f)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise bad(f"not JSON ({type(exc).__name__}: {exc})") from None
        if not isinstance(manifest, dict):
            raise bad("not a JSON object")
        missing = [k for k in ("policies", "n_oracle_calls", "eps", "delta", "method", "info") if k not in manifest]
        if missing:
            raise bad(f"missing {missing}")
        if not os.path.exists(arrays_path):
            raise FileNotFoundError(f"the portfolio at {path!r} has no {_ARRAYS}.")
        try:
            with np.load(arrays_path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"the portfolio arrays {arrays_path!r} cannot be read: {exc}.") from None
        for k in ("values", "weights"):
            if k not in arrays:
                raise ValueError(f"the portfolio arrays {arrays_path!r} lack {k!r}.")
        entries = manifest["policies"]
        if not isinstance(entries, list):
            raise bad("`policies` is not a list")
        root = os.path.realpath(path)
        loader = getattr(oracle, "load_policy", None)
        policies = []
        for i, entry in enumerate(entries):
            if entry is None:
                policies.append(None)
                continue
            if not isinstance(entry, dict) or len(entry) != 1:
                raise bad(f"policy {i} is {entry!r}, not null or one of {{'array'|'handle'|'path': ...}}")
            (kind, value), = entry.items()
            if not isinstance(value, str):
                raise bad(f"policy {i}: {kind!r} must be a string; got {value!r}")
            if kind == "array":
                if value not in arrays or value in ("values", "weights"):
                    raise bad(f"policy {i} names array {value!r}, which {_ARRAYS} does not hold")
                policies.append(arrays[value])
            elif kind == "handle":
                policies.append(value)
            elif kind == "path":
                full = os.path.realpath(os.path.join(root, value))
                if os.path.isabs(value) or os.path.commonpath([root, full]) != root:
                    raise bad(f"policy {i} path {value!r} leaves the portfolio directory (only paths inside it are read)")
                if not callable(loader):
                    policies.append(full)
                    continue
                try:
                    policies.append(loader(full))
                except Exception as exc:  # noqa: BLE001 - the oracle's hook: any failure names the entry
                    raise bad(f"policy {i} ({value!r}) could not be read by the oracle's load_policy "
                              f"({type(exc).__name__}: {exc})") from exc  # fmt: skip
            else:
                raise bad(f"policy {i} has unknown kind {kind!r}")
        from .certificate import Certificate

        cert = manifest.get("certificate")
        if cert is not None and not isinstance(cert, dict):
            raise bad("`certificate` is not a JSON object")
        if cert is not None:
            cert = {k: _text_float(v) if k in _CERT_FLOATS else v for k, v in cert.items()}
        n_calls = manifest["n_oracle_calls"]
        if n_calls is not None and (isinstance(n_calls, bool) or not isinstance(n_calls, int) or n_calls < 0):
            raise bad(f"`n_oracle_calls` must be a non-negative integer; got {n_calls!r}")
        if not isinstance(manifest["info"], dict):
            raise bad("`info` is not a JSON object")
        if not isinstance(manifest["method"], str):
            raise bad("`method` is not a string")
        try:
            return cls(
                values=arrays["values"],
                weights=arrays["weights"],
                policies=policies,
                n_oracle_calls=n_calls,
                eps=manifest["eps"],
                delta=manifest["delta"],
                method=manifest["method"],
                status=manifest.get("status", "success"),
                certificate=None if cert is None else Certificate.from_dict(cert),
                info=manifest["info"],
            )
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise bad(f"{type(exc).__name__}: {exc}") from None


#: Certificate fields that are floats (may be nan or infinite).
_CERT_FLOATS = ("violation", "eps_star", "delta_star", "eps", "delta", "max_lp_gap", "confidence", "observed_error")
_NONFINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def _float_text(v):
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    return v


def _text_float(v):
    if isinstance(v, str) and v in _NONFINITE:
        return _NONFINITE[v]
    if v is None:
        return float("nan")
    return v


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
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None  # strict JSON has no NaN or infinity
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
