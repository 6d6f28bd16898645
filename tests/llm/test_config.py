"""oracles.llm.config: unknown keys, refused settings, checks against the installed TRL."""

import pytest

from oracles.llm import GRPOOracleConfig, LogitMixConfig


def test_unknown_config_keys_are_rejected(tmp_path):
    pytest.importorskip("trl", reason="checking `trl_args` needs the `llm` extra")
    from .tiny import make_oracle

    with pytest.raises(
        ValueError, match=r"unknown GRPOOracleConfig key\(s\): 'lr', 'max_step' \(did you mean 'max_steps'\?\)"
    ):
        make_oracle(str(tmp_path), config={"lr": 1e-3, "max_step": 3})
    with pytest.raises(TypeError):
        GRPOOracleConfig(lr=1e-3)
    with pytest.raises(ValueError, match="does not know"):
        make_oracle(str(tmp_path), config={"trl_args": {"not_a_grpo_arg": 1}})
    with pytest.raises(ValueError, match="may not set \\['reward_weights'\\]"):
        GRPOOracleConfig(trl_args={"reward_weights": [1, 0]})
    with pytest.raises(ValueError, match="multiple of `num_generations`"):
        GRPOOracleConfig(per_device_train_batch_size=6, num_generations=4)
    with pytest.raises(ValueError, match=r"unknown LogitMixConfig key\(s\): 'samples'"):
        LogitMixConfig.from_dict({"samples": 3})


def test_num_threads_stays_out_of_the_identity():
    a, b = GRPOOracleConfig(), GRPOOracleConfig(num_threads=1)
    assert a.identity() == b.identity() and a.to_dict() != b.to_dict()
    assert "num_threads" not in LogitMixConfig(num_threads=2).identity()
    for bad, exc in ((0, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(exc, match="`num_threads` must be"):
            LogitMixConfig(num_threads=bad)
