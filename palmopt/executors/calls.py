"""The one place where algorithms call the oracle: :func:`run_calls`."""

import time

import numpy as np
from tqdm.auto import tqdm

from ..oracle import OracleError
from ..store import RunStore, check_stored

from .local import resolve_executor

__all__ = ["run_calls"]


def run_calls(oracle, W, *, executor=None, store=None, progress=True, desc="oracle calls"):
    """Solutions of the (checked) ``oracle`` at each row of ``W``, in the order of the rows.

    Identical rows are computed once.  Rows already in ``store`` are not recomputed; new
    results are persisted as they arrive.  Returns ``(solutions, n_new)``, where ``n_new`` is
    the number of oracle calls made.

    Stored results are checked again like fresh ones (shape, finite, ``value_range``,
    stderr): a store that fails the checks raises :class:`~palmopt.store.StoreCorruptError`.

    On the first failing call, the calls not started are cancelled, the calls already running
    are awaited and persisted, and the failure is raised as an
    :class:`~palmopt.oracle.OracleError` naming its weight (an ``OracleError`` raised by the
    oracle as itself; a ``KeyboardInterrupt`` or ``SystemExit`` unchanged).  An executor that
    ``run_calls`` made from a name (``None``, ``"serial"``, ``"thread"``, ``"process"``) is
    shut down before it returns; an executor object passed in is left running.

    On an interrupt (Ctrl-C), a timeout or a failing store, every call that has finished is
    persisted (even those a pool finished ahead of this loop), the calls not started are
    cancelled, a process pool made here is stopped at once, and the exception is re-raised.

    Examples
    --------
    >>> import numpy as np
    >>> from palmopt.executors import run_calls
    >>> from palmopt.oracle import as_oracle, checked
    >>> oracle = checked(as_oracle(lambda w: w[::-1], d=2, name="swap"))
    >>> W = np.array([[0.25, 0.75], [1.0, 0.0], [0.25, 0.75]])
    >>> solutions, n_new = run_calls(oracle, W, progress=False)
    >>> [s.values.tolist() for s in solutions], n_new
    ([[0.75, 0.25], [0.0, 1.0], [0.75, 0.25]], 2)
    """
    owned = executor is None or isinstance(executor, str)
    executor = resolve_executor(executor)
    W = np.asarray(W, dtype=np.float64)
    solutions = [None] * len(W)
    if store is None:
        stored = {}
    elif isinstance(store, RunStore) and len(W) <= 4096:  # only the rows asked for (lazy PALM asks one at a time)
        stored = store.solutions({w.tobytes() for w in W})
    else:
        stored = store.solutions()
    where = "the run store" if store is None else f"the run store {getattr(store, 'path', store)!r}"
    first = {}  # dedupe identical weights: key -> first row
    for i, w in enumerate(W):
        key = w.tobytes()
        if first.setdefault(key, i) == i and key in stored:
            solutions[i] = check_stored(oracle, w, stored[key], where)  # read back: checked like a fresh result
    todo = [i for i in first.values() if solutions[i] is None]
    bar = tqdm(total=len(first), initial=len(first) - len(todo), desc=desc, disable=not progress, leave=False)
    futures = {}  # future -> row
    persisted = set()  # futures whose result is in `solutions` (and the store)
    failed = None  # (row, exception) of the first failing call
    try:
        for i in todo:
            futures[executor.submit(oracle, W[i])] = i
        for batch in _batches(executor, futures):  # what finished together is committed together
            arrived = []
            for future in batch:
                if future.cancelled():
                    continue
                exc = future.exception()
                if exc is not None:
                    if failed is None:
                        failed = (futures[future], exc)
                        for other in futures:
                            other.cancel()
                    continue
                i = futures[future]
                solutions[i] = future.result()
                arrived.append(future)
            if store is not None and arrived:
                if len(arrived) > 1 and hasattr(store, "put_many"):
                    store.put_many([(W[futures[f]], solutions[futures[f]]) for f in arrived])
                else:
                    for f in arrived:
                        store.put(W[futures[f]], solutions[futures[f]])
                        persisted.add(f)
            persisted.update(arrived)
            bar.update(len(arrived))
    except BaseException:  # interrupted, timed out, or the store failed: start nothing more
        for other in futures:
            other.cancel()
        _await_briefly(futures)
        _keep_finished(futures, persisted, W, store)
        if owned and hasattr(executor, "terminate"):
            executor.terminate()  # a process pool's running calls are stopped, not awaited
        raise
    finally:
        bar.close()
        if owned:
            executor.shutdown(wait=False, cancel_futures=True)
    if failed is not None:
        i, exc = failed
        if isinstance(exc, OracleError) or not isinstance(exc, Exception):
            raise exc
        raise OracleError(f"oracle call failed at w = {W[i].tolist()}: {exc!r}", W[i]) from exc
    for i, w in enumerate(W):  # duplicates share their first row's solution
        solutions[i] = solutions[first[w.tobytes()]]
    return solutions, len(todo)


def _batches(executor, futures):
    """Lists of futures that completed together (``completed_batches`` where the executor has
    it: a pool whose calls are fast then commits many results at once), else one at a time."""
    batches = getattr(executor, "completed_batches", None)
    if callable(batches):
        return batches(futures)
    return ([f] for f in executor.as_completed(futures))


#: Seconds an interrupted run_calls waits for calls already running in a pool to deliver.
INTERRUPT_GRACE = 1.0


def _await_briefly(futures):
    """Give calls that are running (in a pool) a moment to deliver their result, so that a
    result in transit is kept; a second Ctrl-C ends the wait."""
    running = [f for f in futures if f.running()]
    deadline = time.monotonic() + INTERRUPT_GRACE
    try:  # polling: no future's lock is held while waiting, whatever interrupts the wait
        while running and time.monotonic() < deadline:
            time.sleep(0.01)
            running = [f for f in running if not f.done()]
    except KeyboardInterrupt:
        pass


def _keep_finished(futures, persisted, W, store):
    """After an interrupt: persist, in one transaction, every call that finished but was not
    consumed yet (a pool runs ahead of the loop that stores its results)."""
    if store is None:
        return
    pairs = []
    for future, i in futures.items():
        if future in persisted or not future.done() or future.cancelled():
            continue
        try:
            if future.exception(timeout=0) is None:
                pairs.append((W[i], future.result(timeout=0)))
        except BaseException:  # noqa: BLE001 - a call that did not finish well is not kept
            continue
    if not pairs:
        return
    try:
        if hasattr(store, "put_many"):
            store.put_many(pairs)
        else:
            for w, solution in pairs:
                store.put(w, solution)
    except Exception:  # noqa: BLE001 - the store itself failed: the original error is the one to report
        pass
