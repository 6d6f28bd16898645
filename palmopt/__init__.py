"""palmopt: small portfolios of aligned policies that serve every user's preferences
near-optimally, with certificates.

The public API is re-exported here and loaded on first use (PEP 562), so that
``from palmopt.oracle import Solution`` -- what a pool or Ray worker running an oracle needs --
costs no SciPy or Numba import.  Nothing heavy (torch, trl, ray) is ever imported at import time.
"""

import importlib
import sys
import types

#: public name -> the submodule that defines it
_EXPORTS = {
    "AlignmentOracle": "oracle",
    "OracleError": "oracle",
    "Solution": "oracle",
    "as_oracle": "oracle",
    "Status": "status",
    "Net": "nets",
    "cover": "nets",
    "palm": "palm",
    "adaptive": "adaptive",
    "ccs": "adaptive",
    "Certificate": "certificate",
    "certify": "certify",
    "minimum_portfolio": "minimum",
    "Portfolio": "portfolio",
    "RunStore": "store",
    "StoreMismatchError": "store",
    "SerialExecutor": "executors",
    "PoolExecutor": "executors",
    "RayExecutor": "executors",
    "Linear": "scalarizations",
    "Tchebycheff": "scalarizations",
    "PMean": "scalarizations",
    "replicate": "uncertainty",
}
#: public submodules
_SUBMODULES = (
    "baselines", "bounds", "lattice", "metrics", "nets", "prune", "scalarizations", "tolerances", "uncertainty", "validation",
)

__all__ = sorted([*_EXPORTS, *_SUBMODULES])
__version__ = "0.1.0"


def __getattr__(name):
    if name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    else:
        raise AttributeError(f"module 'palmopt' has no attribute {name!r}")
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """Importing the submodule ``palmopt.palm`` must not replace the function ``palmopt.palm``
    (the import system sets a package attribute per imported submodule)."""

    def __setattr__(self, name, value):
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__():
    return sorted(set(globals()) | set(__all__))
