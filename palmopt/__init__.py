"""palmopt: small portfolios of aligned policies that serve every user's preferences
near-optimally, with certificates.

The public API is re-exported here; nothing heavy (torch, trl, ray) is imported at import time.
"""

from oracles.base import AlignmentOracle, OracleError, Solution, as_oracle

from . import baselines, bounds, metrics, nets
from .adaptive import adaptive
from .minimum import minimum_portfolio
from .certify import Certificate, certify
from .executors import PoolExecutor, SerialExecutor
from .nets import Net, cover
from .palm import palm
from .portfolio import Portfolio
from .store import RunStore, StoreMismatchError

__all__ = [
    "AlignmentOracle",
    "Certificate",
    "Net",
    "OracleError",
    "PoolExecutor",
    "Portfolio",
    "RayExecutor",
    "RunStore",
    "SerialExecutor",
    "Solution",
    "adaptive",
    "baselines",
    "StoreMismatchError",
    "as_oracle",
    "bounds",
    "certify",
    "cover",
    "metrics",
    "minimum_portfolio",
    "nets",
    "palm",
]
__version__ = "0.1.0"


def __getattr__(name):  # RayExecutor without importing ray at import time
    if name == "RayExecutor":
        from .ray_executor import RayExecutor

        return RayExecutor
    raise AttributeError(f"module 'palmopt' has no attribute {name!r}")
