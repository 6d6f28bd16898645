"""Concrete alignment oracles, built on palmopt's public API (never the reverse).

The oracle protocol itself (``Solution``, ``AlignmentOracle``, ``OracleError``, ``as_oracle``)
lives in :mod:`palmopt.oracle`.  Each family is imported explicitly:

* ``oracles.tabular`` -- exact tabular multi-objective MDPs (tests, theory);
* ``oracles.mogym`` -- MO-Gymnasium environments as exact tables (extra ``mogym``);
* ``oracles.testbeds`` -- exact oracles made noisy (``NoisyOracle``) or suboptimal
  (``SuboptimalOracle``), keeping the truth for calibration studies;
* ``oracles.llm`` -- LLM fine-tuning with TRL and decoding-time mixing (extra ``llm``);
* ``oracles.registry`` -- named oracles for the command line (the application layer).
"""
