"""Pluggable alignment oracles.

``oracles.base`` holds the protocol (imported by palmopt); the concrete oracles live in their
own modules and are imported explicitly: ``oracles.tabular`` (exact tabular MOMDPs),
``oracles.mogym`` (MO-Gymnasium environments as exact tables, extra ``mogym``) and
``oracles.rlhf`` (LLM fine-tuning with TRL, extra ``llm``).
"""

from .base import AlignmentOracle, CheckedOracle, OracleError, Solution, as_oracle, checked

__all__ = ["AlignmentOracle", "CheckedOracle", "OracleError", "Solution", "as_oracle", "checked"]
