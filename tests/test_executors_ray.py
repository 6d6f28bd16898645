"""RayExecutor: the same portfolios as the serial executor, results persisted by the driver,
retries, failures reported as OracleError naming the weight, cancellation of calls not started."""

import concurrent.futures as cf
import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import palmopt
from palmopt.oracle import OracleError, checked
from palmopt.executors import run_calls
from palmopt.store import RunStore

from .slow_oracle import SlowOracle
from .test_runs import stored_rows

# Explicit guard: without the optional `ray` extra every test that needs Ray is skipped, with this reason
# (see the end of the module); the tests of the task options run against a fake `ray` module.
try:
    import ray
except ImportError:
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="the `ray` extra is not installed (pip install 'palmopt[ray]')")

from palmopt.executors import RayExecutor  # noqa: E402
from palmopt.executors.ray import _RemoteFailure  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    """One local Ray instance for the module; workers import ``tests`` from the repository."""
    if ray is None:
        yield None
        return
    context = ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        runtime_env={"env_vars": {"PYTHONPATH": ROOT}},
    )
    yield context
    ray.shutdown()


def _attempts(directory, w):
    path = os.path.join(directory, np.asarray(w, dtype=np.float64).tobytes().hex())
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return len(f.read().split())


class FlakyOracle(SlowOracle):
    """SlowOracle that fails at some weights: the first ``fail_first`` attempts where
    ``w[0] >= flaky_above``, and every attempt at ``always``.  Attempts are counted in files
    (a retried task runs in another process, with a fresh copy of the oracle)."""

    def __init__(self, attempts_dir, *, flaky_above=2.0, fail_first=1, always=None, **kwargs):
        super().__init__(**kwargs)
        self.attempts_dir, self.flaky_above, self.fail_first = str(attempts_dir), flaky_above, fail_first
        self.always = None if always is None else np.asarray(always, dtype=np.float64)

    def __call__(self, w):
        if (self.always is not None and np.array_equal(w, self.always)) or w[0] >= self.flaky_above:
            with open(os.path.join(self.attempts_dir, w.tobytes().hex()), "a") as f:
                f.write("x\n")
            if self.always is not None and np.array_equal(w, self.always):
                raise ConnectionError("the trainer lost its GPU")
            if _attempts(self.attempts_dir, w) <= self.fail_first:
                raise ConnectionError("transient failure")
        return super().__call__(w)


def _sleep_and_log(path, seconds):
    with open(path, "a") as f:
        f.write("started\n")
    time.sleep(seconds)
    return path


def _logged(log):
    with open(log) as f:
        return sorted(set(f.read().split()))


def _stored_keys(run_dir):
    with contextlib.closing(sqlite3.connect(os.path.join(run_dir, "store.sqlite"))) as db:
        return sorted(bytes(key).hex() for (key,) in db.execute("SELECT key FROM results"))


@pytest.fixture(scope="module")
def serial_portfolio():
    return palmopt.palm(SlowOracle(), 0.3, progress=False)


def test_same_portfolio_as_serial_and_persisted_by_the_driver(tmp_path, serial_portfolio, monkeypatch):
    log, puts = str(tmp_path / "calls.log"), []
    put = RunStore.put

    def recording_put(store, w, solution):  # who persists, and how many calls had completed then
        puts.append((os.getpid(), len(_logged(log)) if not puts else None))
        put(store, w, solution)

    monkeypatch.setattr(RunStore, "put", recording_put)
    p = palmopt.palm(SlowOracle(log=log), 0.3, executor=RayExecutor(), store=str(tmp_path / "run"), progress=False)
    np.testing.assert_array_equal(p.values, serial_portfolio.values)
    np.testing.assert_array_equal(p.weights, serial_portfolio.weights)
    assert p.n_oracle_calls == serial_portfolio.n_oracle_calls
    assert stored_rows(str(tmp_path / "run")) == p.n_oracle_calls
    assert {pid for pid, _ in puts} == {os.getpid()} and len(puts) == p.n_oracle_calls  # the driver, once each
    assert puts[0][1] < p.n_oracle_calls // 2  # as results arrive, not at the end
    assert len(_logged(log)) == p.n_oracle_calls  # the workers ran every call once
    again = palmopt.palm(SlowOracle(), 0.3, executor=RayExecutor(), store=str(tmp_path / "run"), progress=False)
    assert again.info["n_new_calls"] == 0  # a rerun resumes from the store
    np.testing.assert_array_equal(again.values, p.values)


def test_a_transient_failure_is_retried(tmp_path):
    oracle = FlakyOracle(tmp_path, flaky_above=0.9, fail_first=1)
    p = palmopt.palm(oracle, 0.4, executor=RayExecutor(max_retries=2), progress=False)
    serial = palmopt.palm(SlowOracle(), 0.4, progress=False)
    np.testing.assert_array_equal(p.values, serial.values)
    np.testing.assert_array_equal(p.weights, serial.weights)
    flaky = [np.frombuffer(bytes.fromhex(name)) for name in os.listdir(tmp_path)]
    assert len(flaky) >= 3
    assert [_attempts(tmp_path, w) for w in flaky] == [2] * len(flaky)


def test_a_call_that_always_fails_is_retried_then_reported_with_its_weight(tmp_path):
    bad = np.array([0.2, 0.3, 0.5])
    W = np.array([[1.0, 0.0, 0.0], bad, [0.0, 1.0, 0.0]])
    oracle = checked(FlakyOracle(tmp_path / "attempts", always=bad))
    (tmp_path / "attempts").mkdir()
    with RunStore(str(tmp_path / "run"), oracle.fingerprint(), {}) as store:
        with pytest.raises(OracleError, match=r"ConnectionError at w = \[0\.2, 0\.3, 0\.5\]: the trainer lost its GPU") as info:
            run_calls(oracle, W, executor=RayExecutor(max_retries=2), store=store, progress=False)
        assert len(store) == 2  # the other calls finished and were persisted
    np.testing.assert_array_equal(info.value.weight, bad)
    assert isinstance(info.value.__cause__, ConnectionError)  # the chain survives the trip back
    assert "Raised in a Ray task" in info.value.__notes__[0]
    assert _attempts(tmp_path / "attempts", bad) == 1 + 2


def test_a_failure_cancels_calls_not_started_and_keeps_every_finished_one(tmp_path):
    attempts, run_dir, log = tmp_path / "attempts", tmp_path / "run", str(tmp_path / "calls.log")
    attempts.mkdir()
    bad = np.array([0.0, 0.0, 1.0])  # the net's first point: submitted first
    oracle = FlakyOracle(attempts, always=bad, delay=0.01, log=log)
    with pytest.raises(OracleError, match="the trainer lost its GPU"):
        palmopt.palm(oracle, 0.4, executor=RayExecutor(max_retries=0), store=str(run_dir), progress=False)
    assert _attempts(attempts, bad) == 1
    done = _logged(log)  # every call that ran was awaited and persisted; the others never ran
    assert _stored_keys(run_dir) == done
    p = palmopt.palm(SlowOracle(), 0.4, executor=RayExecutor(), store=str(run_dir), progress=False)
    assert 0 < len(done) < p.n_oracle_calls - 1
    assert p.info["n_new_calls"] == p.n_oracle_calls - len(done)


def test_retry_exceptions_selects_by_the_cause_chain(tmp_path):
    W = np.array([[0.95, 0.05, 0.0], [0.92, 0.0, 0.08]])
    oracle = checked(FlakyOracle(tmp_path, flaky_above=0.9, fail_first=1))
    with pytest.raises(OracleError, match="transient failure"):
        run_calls(oracle, W[:1], executor=RayExecutor(retry_exceptions=[ValueError]), progress=False)
    assert _attempts(tmp_path, W[0]) == 1  # not retried
    solutions, n_new = run_calls(oracle, W[1:], executor=RayExecutor(retry_exceptions=[OSError]), progress=False)
    assert n_new == 1 and _attempts(tmp_path, W[1]) == 2  # ConnectionError is an OSError: retried


def test_cancel_withdraws_calls_not_started_and_lets_running_ones_finish(tmp_path):
    ex = RayExecutor(max_in_flight=2)
    logs = [str(tmp_path / f"call{i}.log") for i in range(6)]
    futures = [ex.submit(_sleep_and_log, log, 1.0) for log in logs]
    deadline = time.time() + 30
    while not futures[1].running() and time.time() < deadline:
        time.sleep(0.01)
    assert [f.running() for f in futures] == [True, True, False, False, False, False]
    assert [f.cancel() for f in futures] == [False, False, True, True, True, True]
    finished = list(ex.as_completed(futures))
    assert len(finished) == 6 and finished[-1] in futures[:2]  # the cancelled ones come out at once
    assert [f.result() for f in futures[:2]] == logs[:2]
    assert [os.path.exists(log) for log in logs] == [True, True, False, False, False, False]  # never ran
    ex.shutdown()
    assert ray.is_initialized()  # it did not start Ray, so it leaves it running


def test_cancel_and_claim_settle_a_call_exactly_once():
    """The dispatcher's claim and a user's cancel race; exactly one wins, and a cancelled call
    is seen by waiters at once (no cluster needed)."""
    from palmopt.executors.ray import _Call

    for _ in range(200):
        call, start, out = _Call(None), threading.Barrier(2), {}
        threads = [
            threading.Thread(target=lambda: (start.wait(), out.__setitem__("claim", call.claim()))),
            threading.Thread(target=lambda: (start.wait(), out.__setitem__("cancel", call.cancel()))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert out["claim"] != out["cancel"]
        assert call.running() is out["claim"] and call.cancelled() is out["cancel"]
        if out["cancel"]:
            assert list(cf.as_completed([call], timeout=1)) == [call]
            assert call.cancel() and not call.claim()  # settled once: repeating is harmless
        else:
            assert not call.cancel()


def test_calls_wait_for_a_free_slot(tmp_path):
    """The default window is what the cluster can run: 2 CPUs, 1 CPU per call."""
    ex = RayExecutor()
    futures = [ex.submit(_sleep_and_log, str(tmp_path / f"call{i}.log"), 0.5) for i in range(5)]
    time.sleep(0.3)
    assert sum(f.running() for f in futures) == 2
    assert [f.result(timeout=30) for f in futures] == [str(tmp_path / f"call{i}.log") for i in range(5)]


def test_adaptive_in_batched_rounds_matches_serial():
    from palmopt.adaptive import adaptive

    serial = adaptive(SlowOracle(), 0.05, batch=3, progress=False)
    distributed = adaptive(SlowOracle(), 0.05, batch=3, executor=RayExecutor(), progress=False)
    np.testing.assert_array_equal(distributed.values, serial.values)
    np.testing.assert_array_equal(distributed.weights, serial.weights)
    assert distributed.n_oracle_calls == serial.n_oracle_calls


CLUSTER_DRIVER = """
import sys, numpy as np, palmopt, ray
from palmopt.executors import RayExecutor
from tests.slow_oracle import SlowOracle
ex = RayExecutor(address=sys.argv[1])
p = palmopt.palm(SlowOracle(), 0.5, executor=ex, progress=False)
assert ray.is_initialized()
ex.shutdown()
assert not ray.is_initialized()  # it connected, so it disconnects
np.save(sys.argv[2], p.values)
"""


def test_a_driver_points_it_at_a_running_cluster(ray_instance, tmp_path):
    address = ray_instance.address_info["gcs_address"]
    out = str(tmp_path / "values.npy")
    run = subprocess.run(
        [sys.executable, "-c", CLUSTER_DRIVER, address, out], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    np.testing.assert_array_equal(np.load(out), palmopt.palm(SlowOracle(), 0.5, progress=False).values)
    assert ray.is_initialized()  # the cluster outlives that driver


class NeedsTwoArgs(Exception):
    """Pickles but does not unpickle: its ``__init__`` does not take its ``args``."""

    def __init__(self, code, detail):
        super().__init__(f"code {code}: {detail}")


def _raise_a_chain(w):
    try:
        try:
            raise NeedsTwoArgs(7, "disk full")
        except NeedsTwoArgs as exc:
            raise ConnectionError("lost the trainer") from exc
    except ConnectionError as exc:
        raise OracleError(f"oracle raised ConnectionError at w = {w.tolist()}", w) from exc


def test_the_failure_transport_restores_the_chain_and_describes_what_does_not_pickle():
    w = np.array([0.25, 0.75])
    try:
        _raise_a_chain(w)
    except OracleError as exc:
        failure = _RemoteFailure.of(exc)
    back = ray.cloudpickle.loads(ray.cloudpickle.dumps(failure)).original()
    assert type(back) is OracleError and str(back) == "oracle raised ConnectionError at w = [0.25, 0.75]"
    np.testing.assert_array_equal(back.weight, w)  # OracleError travels with its weight
    assert type(back.__cause__) is ConnectionError and str(back.__cause__) == "lost the trainer"
    root = back.__cause__.__cause__
    assert type(root) is RuntimeError and str(root) == f"{__name__}.NeedsTwoArgs: code 7: disk full"
    assert root.__cause__ is None
    note = back.__notes__[0]
    assert note.startswith("Raised in a Ray task; remote traceback:") and "NeedsTwoArgs: code 7: disk full" in note


def test_a_remote_chain_reaches_the_driver_through_ray():
    w = np.array([0.25, 0.75])
    ex = RayExecutor(max_retries=0)
    exc = ex.submit(_raise_a_chain, w).exception(timeout=60)
    ex.shutdown()
    assert type(exc) is OracleError and "w = [0.25, 0.75]" in str(exc)
    np.testing.assert_array_equal(exc.weight, w)
    assert type(exc.__cause__) is ConnectionError
    assert type(exc.__cause__.__cause__) is RuntimeError and "NeedsTwoArgs: code 7" in str(exc.__cause__.__cause__)
    assert "Raised in a Ray task" in exc.__notes__[0]


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="`num_gpus` must be a finite number >= 0; got -1"):
        RayExecutor(num_gpus=-1)
    with pytest.raises(TypeError, match="`max_retries` must be an integer"):
        RayExecutor(max_retries=1.5)
    with pytest.raises(TypeError, match="`retry_exceptions` must be True, False or"):
        RayExecutor(retry_exceptions=["ValueError"])
    with pytest.raises(TypeError, match="`init_kwargs` must be None or a dict"):
        RayExecutor(init_kwargs=[("num_cpus", 2)])
    with pytest.raises(ValueError, match="`max_in_flight` must be >= 1; got 0"):
        RayExecutor(max_in_flight=0)
    with pytest.raises(TypeError, match="`max_in_flight` must be an integer"):
        RayExecutor(max_in_flight=2.0)
    with pytest.raises(TypeError, match="`num_cpus` must be a real number; got True"):
        RayExecutor(num_cpus=True)
    with pytest.raises(ValueError, match="`num_cpus` must be a finite number >= 0; got nan"):
        RayExecutor(num_cpus=float("nan"))
    with pytest.raises(ValueError, match="`max_retries` must be >= 0; got -1"):
        RayExecutor(max_retries=-1)
    assert repr(RayExecutor(num_gpus=1, retry_exceptions=[OSError])) == (
        "RayExecutor(num_cpus=1, num_gpus=1, max_retries=2, retry_exceptions=[OSError], address=None)"
    )


def test_missing_ray_is_reported_with_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install \"palmopt\[ray\]\""):
        RayExecutor()


def test_importing_palmopt_does_not_import_ray():
    code = (
        "import sys, palmopt, palmopt.executors, palmopt.executors.ray\n"
        "assert palmopt.RayExecutor is palmopt.executors.RayExecutor is palmopt.executors.ray.RayExecutor\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
        "palmopt.executors.RayExecutor()  # making one is what imports it\n"
        "assert 'ray' in sys.modules\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]


# -- the task options, against a fake `ray` (run without the extra) -----------------------


class _FakeRay:
    """The few `ray` functions that making the remote task touches; records the task's options."""

    def __init__(self):
        self.options = None

    def is_initialized(self):
        return True

    def get_runtime_context(self):
        return type("Ctx", (), {"get_job_id": lambda self: "job-1"})()

    def remote(self, **remote_kwargs):
        fake = self

        class Task:
            def options(self, **kwargs):
                fake.options = {**remote_kwargs, **kwargs}
                return self

        return lambda fn: Task()


@pytest.mark.parametrize(
    "kwargs, max_calls",
    [({"num_gpus": 1}, 1), ({"num_gpus": 0.5}, 1), ({}, 0), ({"num_gpus": 1, "max_calls": 3}, 3), ({"max_calls": 2}, 2)],
)
def test_gpu_calls_get_a_fresh_worker_each(monkeypatch, kwargs, max_calls):
    fake = _FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    ex = RayExecutor(**kwargs)
    with ex._cond:
        ex._connect()
    assert fake.options == ex.task_options()
    assert fake.options["max_calls"] == max_calls  # one fine-tune per GPU worker process: no memory carried over
    assert fake.options["num_gpus"] == kwargs.get("num_gpus", 0) and fake.options["max_retries"] == 2
    with pytest.raises(ValueError, match="`max_calls` must be >= 0"):
        RayExecutor(max_calls=-1)
    if "max_calls" in kwargs:
        assert f"max_calls={max_calls}" in repr(ex)


class PidOracle:
    """Says which worker process answered (in ``info``)."""

    d = 2

    def fingerprint(self):
        return "pid-oracle"

    def __call__(self, w):
        from palmopt.oracle import Solution

        return Solution(values=w, info={"pid": os.getpid()})


def test_with_max_calls_1_every_call_runs_in_a_fresh_worker():
    W = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    with RayExecutor(max_calls=1, max_in_flight=1) as ex:
        sols, _ = run_calls(checked(PidOracle()), W, executor=ex, progress=False)
    pids = [s.info["pid"] for s in sols]
    assert len(set(pids)) == 3 and os.getpid() not in pids


_WITHOUT_RAY = {"test_gpu_calls_get_a_fresh_worker_each", "test_missing_ray_is_reported_with_the_extra"}
for _name, _test in list(globals().items()):
    if _name.startswith("test_") and callable(_test) and _name not in _WITHOUT_RAY:
        globals()[_name] = needs_ray(_test)
