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


def test_checkpoints_stay_out_of_the_identity_and_processes_enter_it():
    base = GRPOOracleConfig()
    assert GRPOOracleConfig(checkpoint_steps=5).identity() == base.identity()
    assert "processes" not in base.identity()  # single-process fingerprints are those of before the field
    assert GRPOOracleConfig(processes=2).identity() == {**base.identity(), "processes": 2}
    for bad, exc in ((0, ValueError), (2.5, TypeError)):
        with pytest.raises(exc, match="`checkpoint_steps` must be"):
            GRPOOracleConfig(checkpoint_steps=bad)
        with pytest.raises(exc, match="`processes` must be"):
            GRPOOracleConfig(processes=bad)
    with pytest.raises(ValueError, match=r"may not set \['save_steps'\]"):
        GRPOOracleConfig(trl_args={"save_steps": 10})
    assert base.grpo_args([1.0, 0.0], "out")["save_strategy"] == "no"
    saving = GRPOOracleConfig(checkpoint_steps=5).grpo_args([1.0, 0.0], "out")
    assert (saving["save_strategy"], saving["save_steps"], saving["save_total_limit"]) == ("steps", 5, 2)
