"""palmopt: small portfolios of aligned policies that serve every user's preferences
near-optimally, with certificates.

The public API is re-exported here; nothing heavy (torch, trl, ray) is imported at import time.
"""

from oracles.base import AlignmentOracle, OracleError, Solution, as_oracle

from . import bounds, nets
from .nets import Net, cover

__all__ = ["AlignmentOracle", "Net", "OracleError", "Solution", "as_oracle", "bounds", "cover", "nets"]
__version__ = "0.1.0"
