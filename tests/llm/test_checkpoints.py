"""oracles.llm: checkpoints inside a call (``checkpoint_steps``) and the resume of a killed call.

The work-directory logic (lock, readable checkpoints) is tested directly (fast); the resume
tests SIGKILL a call in a subprocess after its first checkpoints and call again in-process.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("trl", reason="oracles.llm needs the `llm` extra (torch, transformers, trl, peft)")

from oracles.llm.rewards import Brevity, Coverage  # noqa: E402
from oracles.llm.runs import PARTIAL, CallInProgressError, PartialCall, _remove_orphans  # noqa: E402

from .tiny import make_oracle, read_json  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESUMABLE = {"max_steps": 8, "checkpoint_steps": 2}


# -- the work directory: lock and checkpoints (fast) ---------------------------------------


def _fake_checkpoint(partial, step, readable=True):
    """A checkpoint directory with the files Trainer reads on resume (tiny ones)."""
    import torch
    from safetensors.torch import save_file

    path = os.path.join(partial, f"checkpoint-{step}")
    os.makedirs(path)
    with open(os.path.join(path, "trainer_state.json"), "w") as f:
        json.dump({"global_step": step}, f)
    save_file({"w": torch.zeros(2)}, os.path.join(path, "adapter_model.safetensors"))
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({"step": step}, os.path.join(path, name))
    if not readable:  # a kill while the weights were written
        with open(os.path.join(path, "adapter_model.safetensors"), "r+b") as f:
            f.truncate(10)
    return path


def test_the_work_directory_is_locked_by_one_live_process(tmp_path):
    path = str(tmp_path / "w0.5-x.partial")
    with PartialCall(path) as held:
        assert held.read() is None and held.checkpoints() == []
        with open(os.path.join(path, "lock")) as f:
            assert f.read().strip() == str(os.getpid())
        # another holder (a second open file description: flock conflicts even within one process)
        with pytest.raises(CallInProgressError, match=f"running in process {os.getpid()}"):
            with PartialCall(path, wait=False):
                pass
        held.write({"resume_from": None})
    assert not os.path.exists(path)  # done: removed


def test_a_second_caller_waits_for_the_first(tmp_path):
    import threading

    path = str(tmp_path / "w0.5-x.partial")
    events = []
    first = PartialCall(path).__enter__()

    def second():
        with PartialCall(path) as held:  # blocks until the first releases (and removes) the directory
            events.append(("second", os.path.isdir(held.path), held.read()))

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)
    events.append(("first", None, None))
    first.__exit__(None, None, None)  # done: removes the directory, then unlocks
    thread.join(10)
    # the second locked the *new* lock file, not the removed one it had waited on
    assert events == [("first", None, None), ("second", True, None)]
    assert not os.path.exists(path)


def test_a_dead_processs_lock_is_taken_over(tmp_path):
    path = str(tmp_path / "w0.5-x.partial")
    os.makedirs(path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with open(os.path.join(path, "lock"), "w") as f:
        f.write(dead.stdout)  # the PID of a process that is gone (its flock went with it)
    _fake_checkpoint(path, 2)
    with pytest.raises(KeyError):  # a failing call keeps its checkpoints
        with PartialCall(path, wait=False) as held:
            with open(held.lock_path) as f:
                assert f.read().strip() == str(os.getpid())
            raise KeyError("boom")
    assert os.path.isdir(os.path.join(path, "checkpoint-2"))
    with pytest.raises(KeyError):  # without checkpoints, a failed call leaves nothing behind
        with PartialCall(path) as held:
            shutil.rmtree(os.path.join(path, "checkpoint-2"))
            raise KeyError("boom")
    assert not os.path.exists(path)


def test_unreadable_checkpoints_are_skipped_with_a_warning(tmp_path):
    path = str(tmp_path / "w0.5-x.partial")
    with PartialCall(path) as held:
        _fake_checkpoint(path, 2)
        _fake_checkpoint(path, 4)
        _fake_checkpoint(path, 6, readable=False)
        assert [s for s, _ in held.checkpoints()] == [6, 4, 2]
        with pytest.warns(RuntimeWarning, match=r"checkpoint-6.*unreadable.*removed"):
            assert held.latest_readable() == (4, os.path.join(path, "checkpoint-4"))
        assert [s for s, _ in held.checkpoints()] == [4, 2]
        os.remove(os.path.join(path, "checkpoint-4", "optimizer.pt"))
        with open(os.path.join(path, "checkpoint-2", "trainer_state.json"), "w") as f:
            f.write("{")
        with pytest.warns(RuntimeWarning, match="unreadable"):
            assert held.latest_readable() is None  # start over
        assert held.checkpoints() == []


def test_orphan_removal_keeps_the_work_directory(tmp_path):
    final = str(tmp_path / "w0.5-x")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    os.makedirs(f"{final}.tmp-{dead.stdout.strip()}-123")
    _fake_checkpoint(final + PARTIAL, 2)
    _remove_orphans(final)
    assert os.listdir(tmp_path) == [os.path.basename(final + PARTIAL)]


# -- a killed call resumes (slow: a subprocess and three short calls) ---------------------


def paced_coverage(prompts, completions, **kw):
    """Coverage, slowed down (0.25 s per training step), so that a call can be killed mid-way."""
    time.sleep(0.25)
    return Coverage()(prompts, completions, **kw)


def paced_oracle(run_dir, **config):
    return make_oracle(run_dir, rewards=[Brevity(3), paced_coverage], config={**RESUMABLE, **config})


def _kill_after_checkpoint(run_dir, w, step, **config):
    """Start ``paced_oracle(run_dir, **config)(w)`` in a subprocess; SIGKILL it once ``checkpoint-<step>``
    is written; return the call's work directory."""
    code = (
        "import torch; torch.set_num_threads(1)\n"
        "from tests.llm.test_checkpoints import paced_oracle\n"
        f"paced_oracle({run_dir!r}, **{config!r})({w!r})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True)
    calls = os.path.join(run_dir, "calls")
    deadline = time.monotonic() + 120
    done = False
    try:
        while not done and time.monotonic() < deadline and proc.poll() is None:
            names = os.listdir(calls) if os.path.isdir(calls) else []
            # trainer_state.json is the last file Trainer writes into a checkpoint
            written = [os.path.join(calls, n, f"checkpoint-{step}", "trainer_state.json") for n in names]
            done = any(os.path.isfile(p) for p in written)
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert done, f"the call never wrote checkpoint-{step} (exit status {proc.returncode})"
    (partial,) = [n for n in os.listdir(calls) if n.endswith(PARTIAL)]
    assert not os.path.exists(os.path.join(calls, partial[: -len(PARTIAL)], "solution.json"))  # killed mid-call
    return os.path.join(calls, partial)


def _adapter(sol):
    from safetensors.torch import load_file

    return load_file(os.path.join(sol.policy, "adapter_model.safetensors"))


def _assert_same_call(resumed, whole, max_steps=RESUMABLE["max_steps"]):
    """The resumed call trained exactly the uninterrupted one: adapter weights, per-step logs, values.

    Bit for bit: Trainer saves and restores the optimiser, scheduler and the random states of
    Python, numpy and torch with each checkpoint, TRL's sampler is seeded, and on a CPU the tiny
    model's arithmetic is deterministic.  Only the end-of-training summary ``train_loss`` (the mean
    over the steps run in *this* process) and the timings differ.
    """
    a, b = _adapter(resumed), _adapter(whole)
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    steps = [read_json(s.info["train_log"]) for s in (resumed, whole)]
    per_step = [[{k: v for k, v in h.items() if k != "step_time"} for h in log if "loss" in h] for log in steps]
    assert [h["step"] for h in per_step[0]] == list(range(1, max_steps + 1))
    assert per_step[0] == per_step[1]
    assert np.array_equal(resumed.values, whole.values) and np.array_equal(resumed.stderr, whole.stderr)


@pytest.mark.slow
def test_a_killed_call_resumes_from_its_latest_checkpoint(tmp_path):
    w = [0.5, 0.5]
    killed = str(tmp_path / "killed")
    partial = _kill_after_checkpoint(killed, w, step=4)
    newest, before = [s for s, _ in PartialCall(partial).checkpoints()]  # the last two are kept: (4, 2) or later
    assert newest >= 4 and before == newest - RESUMABLE["checkpoint_steps"]
    damaged = str(tmp_path / "damaged")  # the same kill, with the newest checkpoint damaged
    shutil.copytree(killed, damaged)
    damaged_partial = os.path.join(damaged, "calls", os.path.basename(partial))
    with open(os.path.join(damaged_partial, f"checkpoint-{newest}", "adapter_model.safetensors"), "r+b") as f:
        f.truncate(16)

    resumed = paced_oracle(killed)(w)
    assert resumed.info["cached"] is False and resumed.info["resumed_from_step"] == newest
    assert resumed.info["resumed_from_step"] >= RESUMABLE["checkpoint_steps"]
    assert np.all((0 <= resumed.values) & (resumed.values <= 1)) and resumed.stderr.shape == (2,)
    calls = os.listdir(os.path.join(killed, "calls"))
    assert calls == [os.path.basename(os.path.dirname(resumed.policy))]  # work and orphaned tmp dirs are gone

    with pytest.warns(RuntimeWarning, match=f"checkpoint-{newest}.*unreadable"):
        fallback = paced_oracle(damaged)(w)
    assert fallback.info["resumed_from_step"] == before

    whole = paced_oracle(str(tmp_path / "whole"))(w)
    assert whole.info["resumed_from_step"] is None
    _assert_same_call(resumed, whole)
    _assert_same_call(fallback, whole)


@pytest.mark.slow
def test_a_resumed_warm_started_call_keeps_its_own_initial_point(tmp_path):
    run = str(tmp_path / "warm")
    first = paced_oracle(run, warm_start=True)([1.0, 0.0])
    partial = _kill_after_checkpoint(run, [0.5, 0.5], step=2, warm_start=True)
    with open(os.path.join(partial, "call.json")) as f:
        assert json.load(f)["warm_start_from"] == first.policy
    oracle = paced_oracle(run, warm_start=True)
    nearer = oracle([0.6, 0.4])  # now the nearest completed call to (0.5, 0.5)
    assert nearer.info["warm_start_from"] == first.policy
    resumed = oracle([0.5, 0.5])
    assert resumed.info["resumed_from_step"] >= 2
    assert resumed.info["warm_start_from"] == first.policy  # the initial point it had already trained from
    assert oracle([0.45, 0.55]).info["warm_start_from"] != first.policy  # a fresh call takes the nearest
