"""Resumable runs: the run store, SIGKILL mid-run, an oracle that fails at the k-th call."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

import palmopt
from palmopt.store import RunStore, StoreMismatchError

from .slow_oracle import SlowOracle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stored_rows(run_dir):
    path = os.path.join(run_dir, "store.sqlite")
    if not os.path.exists(path):
        return 0
    try:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def stored_keys(run_dir):
    with sqlite3.connect(os.path.join(run_dir, "store.sqlite")) as db:
        return {bytes(k).hex() for (k,) in db.execute("SELECT key FROM results")}


def test_sigkill_mid_run_then_resume(tmp_path):
    run_dir, log = str(tmp_path / "run"), str(tmp_path / "calls.log")
    cmd = [
        sys.executable, "-m", "palmopt.cli", "run", "--oracle", "tests.slow_oracle:make",
        "--oracle-arg", "delay=0.01", "--oracle-arg", f"log={log}", "--eps", "0.3", "--out", run_dir, "--quiet",
    ]  # fmt: skip
    errors = open(tmp_path / "stderr.txt", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors)
    deadline = time.time() + 120
    while stored_rows(run_dir) < 40 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    errors.close()
    done_before = stored_rows(run_dir)
    persisted = stored_keys(run_dir)
    assert done_before >= 40

    rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    with open(log) as f:
        calls = f.read().split()
    repeated = {c for c in calls if calls.count(c) > 1}
    # only the call in flight at the kill (returned by the oracle, not yet committed) may run again
    assert len(calls) - len(set(calls)) <= 1, "more than the call in flight was repeated"
    assert not repeated & persisted, "a call whose result was in the store was repeated"
    resumed = palmopt.Portfolio.load(os.path.join(run_dir, "portfolio"))
    fresh = palmopt.palm(SlowOracle(), 0.3, progress=False)
    np.testing.assert_array_equal(resumed.values, fresh.values)
    np.testing.assert_array_equal(resumed.weights, fresh.weights)
    assert resumed.info["n_new_calls"] == fresh.n_oracle_calls - done_before


def test_oracle_failing_at_the_kth_call_keeps_the_first_k_minus_1(tmp_path):
    k = 25
    with pytest.raises(palmopt.OracleError, match=r"RuntimeError at w = \[.*simulated trainer crash") as info:
        palmopt.palm(SlowOracle(fail_at=k), 0.3, store=str(tmp_path), progress=False)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert stored_rows(str(tmp_path)) == k - 1
    oracle = SlowOracle()
    p = palmopt.palm(oracle, 0.3, store=str(tmp_path), progress=False)
    assert oracle.calls == p.n_oracle_calls - (k - 1)
    np.testing.assert_array_equal(p.values, palmopt.palm(SlowOracle(), 0.3, progress=False).values)


def test_failure_in_a_pool_keeps_every_finished_call(tmp_path):
    pool = palmopt.PoolExecutor("thread", max_workers=3)
    with pytest.raises(palmopt.OracleError):
        palmopt.palm(SlowOracle(fail_at=30), 0.3, store=str(tmp_path), progress=False, executor=pool)
    pool.shutdown()
    # calls 1..29 started before the failing one (the counter is locked); each had finished or
    # was in flight, and calls in flight are awaited and stored: none of the 29 is lost
    assert stored_rows(str(tmp_path)) >= 29


def test_store_refuses_another_oracle_or_other_parameters(tmp_path):
    palmopt.palm(SlowOracle(), 0.4, store=str(tmp_path), progress=False)
    with pytest.raises(StoreMismatchError, match="was made by oracle"):
        palmopt.palm(SlowOracle(seed=4), 0.4, store=str(tmp_path), progress=False)
    with pytest.raises(StoreMismatchError, match="other parameters.*eps"):
        palmopt.palm(SlowOracle(), 0.35, store=str(tmp_path), progress=False)


def test_store_roundtrip_and_order(tmp_path):
    with RunStore(str(tmp_path), "fp", {"a": 1}) as store:
        for i in range(5):
            store.put(np.array([i / 4, 1 - i / 4]), palmopt.Solution(values=[i / 4, 0.5], policy=np.arange(i), info={"i": i}))
        assert len(store) == 5
        items = store.items()
    assert [s.info["i"] for _, s in items] == list(range(5))
    np.testing.assert_array_equal(items[3][1].policy, np.arange(3))
    with RunStore(str(tmp_path), "fp", {"a": 1}) as store:
        assert store.get(np.array([0.25, 0.75])).values.tolist() == [0.25, 0.5]
        assert store.get(np.array([0.3, 0.7])) is None
