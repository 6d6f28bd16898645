"""oracles.llm.launch: one call on several processes (``accelerate launch``), on the CPU with gloo.

``accelerate launch --cpu --num_processes 2`` starts one process unless run under ``mpirun``, so
the oracle launches with ``--multi_gpu`` (torchrun) and ``ACCELERATE_USE_CPU=true``: two CPU
processes in a gloo process group.  The oracles are the experiment kit's gsm8k smoke oracle
with ``processes = 2``, built with the recipe that ``build_oracle`` sets.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("trl", reason="oracles.llm needs the `llm` extra (torch, transformers, trl, peft)")

from oracles.llm.launch import WORKER_ENV, command  # noqa: E402
from oracles.llm.runs import PARTIAL  # noqa: E402
from palmopt.oracle import OracleError  # noqa: E402

from .test_checkpoints import _assert_same_call  # noqa: E402
from .tiny import make_oracle, read_json  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GSM8K = os.path.join(ROOT, "examples", "configs", "gsm8k.toml")


def _config(tmp_path, **grpo):
    """gsm8k.toml with extra ``[smoke] grpo`` settings (``processes = 2`` ...), written into ``tmp_path``."""
    with open(GSM8K) as f:
        lines = f.read().splitlines()
    (i,) = [i for i, line in enumerate(lines) if line.startswith("grpo = {")]  # the [smoke] overrides
    settings = dict(item.split(" = ") for item in lines[i][len("grpo = {") : -1].strip().split(", "))
    settings.update({k: json.dumps(v) for k, v in grpo.items()})
    lines[i] = "grpo = { " + ", ".join(f"{k} = {v}" for k, v in settings.items()) + " }"
    path = tmp_path / "gsm8k.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _build(config, out):
    """The experiment kit's oracle: ``build_oracle`` gives it the recipe to rebuild it from the config file."""
    from oracles.llm.experiment import build_oracle, load_config

    oracle, _ = build_oracle(load_config(config)[0], True, out, path=config)
    assert oracle.rebuild == ("experiment", config, True, out)
    return oracle


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


# -- fast: the recipe, the command line ---------------------------------------------------


def test_several_processes_need_a_recipe(tmp_path, monkeypatch):
    monkeypatch.delenv(WORKER_ENV, raising=False)
    with pytest.raises(ValueError, match=r"`processes=2` runs each call under `accelerate launch`.*rebuild="):
        make_oracle(str(tmp_path), config={"processes": 2})
    with pytest.raises(ValueError, match="must be \\('experiment', config_path, smoke, out\\)"):
        make_oracle(str(tmp_path), config={"processes": 2}, rebuild=("module:function", GSM8K, True, "out"))
    with pytest.raises(ValueError, match="existing TOML file"):
        make_oracle(str(tmp_path), config={"processes": 2}, rebuild=("experiment", "missing.toml", True, "out"))
    with pytest.raises(TypeError, match="smoke must be a bool"):
        make_oracle(str(tmp_path), config={"processes": 2}, rebuild=("experiment", GSM8K, "yes", "out"))
    assert make_oracle(str(tmp_path)).rebuild is None  # one process: no recipe needed


def test_the_launch_command_is_plain_data(tmp_path):
    oracle = make_oracle(str(tmp_path), config={"processes": 3}, rebuild=("experiment", GSM8K, False, "out"))
    assert oracle.rebuild == ("experiment", GSM8K, False, os.path.abspath("out"))
    cmd = command(oracle.with_seed(7), np.array([0.25, 0.75]), "/x/tmp", 12.5)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "3" and "--multi_gpu" in cmd
    launched = cmd[cmd.index("oracles.llm.launch") + 1 :]
    assert launched[:5] == ["--config", GSM8K, "--no-smoke", "--out", os.path.abspath("out")]
    assert launched[launched.index("--seed") + 1] == "7"
    assert json.loads(launched[launched.index("--weight") + 1]) == [0.25, 0.75]
    assert launched[launched.index("--fingerprint") + 1] == oracle.with_seed(7).fingerprint()


# -- slow: real launches on 2 CPU processes -------------------------------------------------


@pytest.mark.slow
def test_a_call_on_two_processes(tmp_path, monkeypatch):
    out = str(tmp_path / "out")
    oracle = _build(_config(tmp_path, processes=2), out)
    assert oracle.config.processes == 2
    t0 = time.perf_counter()
    sol = oracle([0.5, 0.5])
    wall = time.perf_counter() - t0
    assert sol.info["cached"] is False and np.all((0 <= sol.values) & (sol.values <= 1))
    cost = sol.info["cost"]
    assert cost["devices"] == 2 and cost["device"] == "cpu" and 0 < cost["seconds"] <= wall
    call = os.path.dirname(sol.policy)
    # rank 0 alone wrote: exactly the call directory's files, no work or temporary directory
    assert _files(out) == sorted(
        os.path.relpath(os.path.join(call, f), out)
        for f in ("solution.json", "train_log.json", "eval_samples.json", "launch.log",
                  "adapter/adapter_config.json", "adapter/adapter_model.safetensors", "adapter/README.md")
    )  # fmt: skip
    assert os.listdir(os.path.dirname(call)) == [os.path.basename(call)]
    log = [h for h in read_json(sol.info["train_log"]) if "loss" in h]
    cfg = oracle.config
    assert [h["step"] for h in log] == list(range(1, cfg.max_steps + 1))
    # data-parallel: each step consumed the prompts of both processes
    prompts_per_step = cfg.per_device_train_batch_size * cfg.processes / cfg.num_generations
    assert log[0]["epoch"] == pytest.approx(prompts_per_step / len(oracle.train_rows))
    samples = read_json(sol.info["eval_samples"])
    assert len(samples) == len(oracle.eval_rows) * cfg.eval_samples
    again = oracle([0.5, 0.5])
    assert again.info["cached"] is True and np.array_equal(again.values, sol.values)


@pytest.mark.slow
def test_a_failed_launch_names_the_weight_and_keeps_its_log(tmp_path):
    # a recipe that rebuilds another oracle: the launched processes refuse to train it
    recipe = ("experiment", GSM8K, True, str(tmp_path / "x"))
    oracle = make_oracle(str(tmp_path / "run"), config={"processes": 2}, rebuild=recipe)
    with pytest.raises(OracleError, match=r"(?s)at w=\[0.5, 0.5\] exited with status 1.*is not the caller's") as err:
        oracle([0.5, 0.5])
    assert np.array_equal(err.value.weight, [0.5, 0.5])
    calls = os.path.join(tmp_path, "run", "calls")
    (partial,) = os.listdir(calls)
    assert partial.endswith(PARTIAL) and os.path.isfile(os.path.join(calls, partial, "launch.log"))


@pytest.mark.slow
def test_a_killed_launch_resumes_from_its_checkpoint(tmp_path):
    config = _config(tmp_path, processes=2, max_steps=8, checkpoint_steps=2)
    out = str(tmp_path / "out")
    code = (
        "import torch; torch.set_num_threads(1)\n"
        "from oracles.llm.experiment import build_oracle, load_config\n"
        f"build_oracle(load_config({config!r})[0], True, {out!r}, path={config!r})[0]([0.5, 0.5])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    calls = os.path.join(out, "oracle", "calls")
    deadline, done = time.monotonic() + 240, False
    try:
        while not done and time.monotonic() < deadline and proc.poll() is None:
            names = os.listdir(calls) if os.path.isdir(calls) else []
            done = any(os.path.isfile(os.path.join(calls, n, "checkpoint-2", "trainer_state.json")) for n in names)
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # the caller only: its launch dies with it
        proc.wait()
    assert done, f"the launched call never wrote checkpoint-2 (exit status {proc.returncode})"
    assert not [n for n in os.listdir(calls) if os.path.isfile(os.path.join(calls, n, "solution.json"))]
    oracle = _build(config, out)
    sol = oracle([0.5, 0.5])
    # at least checkpoint-2: a few more steps may have run between the poll and the kill
    assert sol.info["resumed_from_step"] in (2, 4, 6, 8) and sol.info["cost"]["devices"] == 2
    assert [h["step"] for h in read_json(sol.info["train_log"]) if "loss" in h] == list(range(1, 9))
    assert sorted(os.listdir(calls)) == [os.path.basename(os.path.dirname(sol.policy))]
    # as under one process, the resumed call is the uninterrupted one, bit for bit (each rank
    # restores its own random state from the checkpoint)
    whole = _build(config, str(tmp_path / "whole"))([0.5, 0.5])
    _assert_same_call(sol, whole, max_steps=8)
