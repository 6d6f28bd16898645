"""palmopt: small portfolios of aligned policies that serve every user's preferences
near-optimally, with certificates.

The public API is re-exported here and loaded on first use (PEP 562), so that
``from palmopt.oracle import Solution`` -- what a pool or Ray worker running an oracle needs --
costs no SciPy or Numba import.  Nothing heavy (torch, trl, ray) is ever imported at import time.
"""

import importlib

#: public name -> the submodule that defines it (a submodule maps to itself)
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
    "Certificate": "certify",
    "certify": "certify",
    "minimum_portfolio": "minimum",
    "Portfolio": "portfolio",
    "RunStore": "store",
    "StoreMismatchError": "store",
    "SerialExecutor": "executors",
    "PoolExecutor": "executors",
    "RayExecutor": "executors",
    "baselines": "baselines",
    "bounds": "bounds",
    "metrics": "metrics",
    "nets": "nets",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'palmopt' has no attribute {name!r}")
    mod = importlib.import_module(f"{__name__}.{module}")
    value = mod if name == module else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
