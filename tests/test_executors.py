"""Serial and pool executors and run_calls: results in row order, identical weights computed
once, the run store answered first, failures that keep finished results and name the weight,
interrupts that are not turned into oracle errors, plain concurrent.futures pools."""

import concurrent.futures as cf
import threading
import time

import numpy as np
import pytest

from palmopt.executors import PoolExecutor, SerialExecutor, resolve_executor, run_calls
from palmopt.oracle import OracleError, Solution, checked
from palmopt.store import RunStore


class Recorder:
    """An oracle (d = 2) that records the weights it is called at, in order; it answers
    ``w[::-1]``, sleeps ``delay(w)`` first, and raises ``fail(w)`` when that is not None."""

    d = 2

    def __init__(self, fail=None, delay=None):
        self.fail, self.delay = fail, delay
        self.calls = []
        self._lock = threading.Lock()

    def fingerprint(self):
        return "recorder"

    def __call__(self, w):
        with self._lock:
            self.calls.append(np.array(w).tolist())
        if self.delay is not None:
            time.sleep(self.delay(w))
        exc = None if self.fail is None else self.fail(w)
        if exc is not None:
            raise exc
        return Solution(values=np.asarray(w)[::-1], policy=f"policy@{np.asarray(w).tolist()}")


def _weights(n):
    t = np.linspace(0.0, 1.0, n)
    return np.column_stack([t, 1.0 - t])


def _failing_at(bad, exc):
    return lambda w: exc if np.array_equal(w, bad) else None


# -- SerialExecutor ----------------------------------------------------------------------------
def test_serial_runs_each_call_when_reached_in_the_order_given():
    ran = []
    ex = SerialExecutor()
    futures = [ex.submit(ran.append, k) for k in range(3)]
    assert ran == [] and not any(f.done() for f in futures)
    it = ex.as_completed(futures[::-1])
    assert next(it) is futures[2] and ran == [2] and futures[2].done() and not futures[0].done()
    assert list(it) == [futures[1], futures[0]] and ran == [2, 1, 0]
    assert list(ex.as_completed(futures)) == futures and ran == [2, 1, 0]  # never twice


def test_serial_sets_an_exception_on_the_future_and_goes_on():
    ex = SerialExecutor()
    boom = ValueError("boom")
    futures = [ex.submit(lambda: (_ for _ in ()).throw(boom)), ex.submit(lambda: 5)]
    assert list(ex.as_completed(futures)) == futures
    assert futures[0].exception() is boom and futures[1].result() == 5


def test_serial_skips_cancelled_calls():
    ran = []
    ex = SerialExecutor()
    futures = [ex.submit(ran.append, k) for k in range(3)]
    assert futures[1].cancel()
    assert list(ex.as_completed(futures)) == futures
    assert ran == [0, 2] and futures[1].cancelled()


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt("stop"), SystemExit(3)])
def test_serial_lets_an_interrupt_through_unchanged(interrupt):
    ran = []

    def call(k):
        ran.append(k)
        if k == 1:
            raise interrupt
        return k

    ex = SerialExecutor()
    futures = [ex.submit(call, k) for k in range(4)]
    seen = []
    with pytest.raises(type(interrupt)) as info:
        for f in ex.as_completed(futures):
            seen.append(f)
    assert info.value is interrupt
    assert seen == futures[:1] and ran == [0, 1]
    assert futures[0].result() == 0
    assert futures[1].done() and futures[1].exception() is interrupt  # settled: nothing hangs on it
    assert all(f.cancelled() for f in futures[2:])


def test_serial_refuses_futures_it_did_not_make():
    with pytest.raises(TypeError, match="its own futures"):
        list(SerialExecutor().as_completed([cf.Future()]))


# -- resolve_executor ----------------------------------------------------------------------------
def test_resolve_executor():
    assert isinstance(resolve_executor(None), SerialExecutor)
    assert isinstance(resolve_executor("serial"), SerialExecutor)
    pool = resolve_executor("thread")
    assert isinstance(pool, PoolExecutor) and repr(pool) == "PoolExecutor(kind='thread')"
    pool.shutdown()
    own = SerialExecutor()
    assert resolve_executor(own) is own
    with cf.ThreadPoolExecutor(1) as plain:
        wrapped = resolve_executor(plain)
        assert isinstance(wrapped, PoolExecutor) and repr(wrapped) == "PoolExecutor(kind='ThreadPoolExecutor')"
        assert wrapped.submit(pow, 2, 5).result(timeout=10) == 32
    for bad, shown in [("gpu", "'gpu'"), (np.zeros(2), "ndarray"), (3, "int")]:
        with pytest.raises(TypeError, match=f"`executor` must be None, 'serial'.*; got {shown}"):
            resolve_executor(bad)
    with pytest.raises(ValueError, match="`kind` must be 'thread' or 'process'; got 'gpu'"):
        PoolExecutor("gpu")


# -- run_calls -------------------------------------------------------------------------------------
@pytest.mark.parametrize("executor", [None, "thread"])
def test_solutions_come_in_row_order(executor):
    W = _weights(5)
    oracle = Recorder(delay=lambda w: 0.05 * (1.0 - w[0]))  # with a pool, the last rows finish first
    solutions, n_new = run_calls(checked(oracle), W, executor=executor, progress=False)
    assert n_new == 5
    np.testing.assert_array_equal([s.values for s in solutions], W[:, ::-1])
    if executor is None:
        assert oracle.calls == W.tolist()  # the serial executor calls in row order


def test_identical_weights_are_computed_once():
    W = np.array([[0.5, 0.5], [1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [1.0, 0.0]])
    oracle = Recorder()
    solutions, n_new = run_calls(checked(oracle), W, progress=False)
    assert n_new == 3 and oracle.calls == [[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]]
    assert solutions[2] is solutions[0] and solutions[4] is solutions[1]
    np.testing.assert_array_equal([s.values for s in solutions], W[:, ::-1])


def test_the_store_answers_first_and_new_results_are_persisted(tmp_path):
    W = _weights(4)
    oracle = Recorder()
    with RunStore(str(tmp_path), oracle.fingerprint(), {}) as store:
        store.put(W[1], Solution(values=[0.25, 0.25], policy="from the store"))
        solutions, n_new = run_calls(checked(oracle), np.vstack([W, W[1]]), store=store, progress=False)
        assert n_new == 3 and len(store) == 4
        assert W[1].tolist() not in oracle.calls and len(oracle.calls) == 3
        assert solutions[1].policy == solutions[4].policy == "from the store"
        np.testing.assert_array_equal(solutions[1].values, [0.25, 0.25])
        assert store.get(W[2]).policy == f"policy@{W[2].tolist()}"
        never = Recorder(fail=lambda w: RuntimeError("called"))
        again, n_again = run_calls(checked(never), W, store=store, progress=False)
    assert n_again == 0
    assert [s.policy for s in again] == [s.policy for s in solutions[:4]]


def test_a_failure_keeps_the_finished_results_and_names_the_weight(tmp_path):
    W = _weights(5)
    cause = ConnectionError("the trainer lost its GPU")
    oracle = Recorder(fail=_failing_at(W[2], cause))
    with RunStore(str(tmp_path), oracle.fingerprint(), {}) as store:
        message = r"ConnectionError at w = \[0\.5, 0\.5\]: the trainer lost its GPU"
        with pytest.raises(OracleError, match=message) as info:
            run_calls(checked(oracle), W, store=store, progress=False)
        assert len(store) == 2 and store.get(W[0]) is not None and store.get(W[1]) is not None
    np.testing.assert_array_equal(info.value.weight, W[2])
    assert info.value.__cause__ is cause  # raised as itself, not wrapped a second time
    assert oracle.calls == W[:3].tolist()  # the calls after the failure never ran


def test_an_unchecked_oracle_failure_is_wrapped_with_its_weight():
    W = _weights(3)
    cause = ValueError("bad weight")
    oracle = Recorder(fail=_failing_at(W[1], cause))
    message = r"oracle call failed at w = \[0\.5, 0\.5\]: ValueError\('bad weight'\)"
    with pytest.raises(OracleError, match=message) as info:
        run_calls(oracle, W, progress=False)
    np.testing.assert_array_equal(info.value.weight, W[1])
    assert info.value.__cause__ is cause


def test_a_pool_failure_awaits_and_persists_the_running_calls(tmp_path):
    W = _weights(3)

    def delay(w):  # the others sleep; the failing call waits until all three have started
        if w[0] != 0:
            return 0.3
        deadline = time.monotonic() + 10
        while len(oracle.calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.001)
        return 0.0

    oracle = Recorder(fail=_failing_at(W[0], RuntimeError("early crash")), delay=delay)
    with cf.ThreadPoolExecutor(3) as pool, RunStore(str(tmp_path), "recorder", {}) as store:
        with pytest.raises(OracleError, match="early crash") as info:
            run_calls(checked(oracle), W, executor=pool, store=store, progress=False)
        assert len(store) == 2  # both calls running at the failure were awaited and kept
    np.testing.assert_array_equal(info.value.weight, W[0])


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_propagates_unchanged_and_keeps_the_finished_results(tmp_path, interrupt):
    W = _weights(4)
    raised = interrupt()
    oracle = Recorder(fail=_failing_at(W[2], raised))
    with RunStore(str(tmp_path), oracle.fingerprint(), {}) as store:
        with pytest.raises(interrupt) as info:
            run_calls(checked(oracle), W, store=store, progress=False)
        assert info.value is raised and not isinstance(info.value, OracleError)
        assert len(store) == 2 and store.get(W[2]) is None
    assert oracle.calls == W[:3].tolist()


def test_an_interrupt_in_a_pool_worker_is_not_an_oracle_error():
    W = _weights(3)
    raised = SystemExit(2)
    with pytest.raises(SystemExit) as info:
        run_calls(checked(Recorder(fail=_failing_at(W[1], raised))), W, executor="thread", progress=False)
    assert info.value is raised


def test_a_plain_thread_pool_is_accepted_and_left_running():
    W = _weights(6)
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        solutions, n_new = run_calls(checked(Recorder()), W, executor=pool, progress=False)
        assert n_new == 6
        np.testing.assert_array_equal([s.values for s in solutions], W[:, ::-1])
        assert pool.submit(pow, 3, 2).result(timeout=10) == 9  # not shut down by run_calls


def test_a_pool_made_from_a_name_is_shut_down(monkeypatch):
    shut = []
    monkeypatch.setattr(PoolExecutor, "shutdown", lambda self, wait=True, cancel_futures=False: shut.append(self.kind))
    run_calls(checked(Recorder()), _weights(2), executor="thread", progress=False)
    assert shut == ["thread"]


def test_when_persisting_fails_no_further_call_starts():
    W = _weights(5)
    put_failed = threading.Event()

    class BrokenStore:
        def solutions(self):
            return {}

        def put(self, w, solution):
            put_failed.set()
            raise OSError("disk full")

    def delay(w):  # the first call returns at once; the next one runs on well past the failure
        if len(oracle.calls) == 1:
            return 0.0
        put_failed.wait(10)
        return 0.3

    oracle = Recorder(delay=delay)
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        with pytest.raises(OSError, match="disk full"):
            run_calls(checked(oracle), W, executor=pool, store=BrokenStore(), progress=False)
    assert len(oracle.calls) == 2  # the first result, and the call already running when it arrived
