"""Where oracle calls run: a ``concurrent.futures``-shaped interface (``submit``,
``as_completed``) so that a distributed engine plugs in without touching the algorithms.

* :class:`SerialExecutor` (the default) runs each call when its result is consumed, in order;
* :class:`PoolExecutor` runs calls on a local thread or process pool;
* any object with ``submit(fn, *args)`` returning futures and ``as_completed(futures)``
  works, and a plain :class:`concurrent.futures.Executor` is wrapped.

:func:`run_calls` is the one place where algorithms call the oracle: it answers from the run
store first, persists every result as it arrives, and on a failure keeps every result that
completed before re-raising the error (which names the weight).
"""

import concurrent.futures as cf

import numpy as np
from tqdm.auto import tqdm

from palmopt.oracle import OracleError

__all__ = ["SerialExecutor", "PoolExecutor", "resolve_executor", "run_calls"]


class SerialExecutor:
    """Runs each submitted call lazily, when :meth:`as_completed` reaches it."""

    def submit(self, fn, /, *args, **kwargs):
        future = cf.Future()
        future._palmopt_call = (fn, args, kwargs)
        return future

    def as_completed(self, futures):
        for future in list(futures):
            if future.set_running_or_notify_cancel():
                fn, args, kwargs = future._palmopt_call
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                    future.set_exception(exc)
            yield future

    def shutdown(self, wait=True, cancel_futures=False):
        pass

    def __repr__(self):
        return "SerialExecutor()"


class PoolExecutor:
    """A local pool: ``kind="thread"`` (oracles that release the GIL or wait on I/O) or
    ``"process"`` (CPU-bound Python oracles; the oracle must be picklable)."""

    def __init__(self, kind="thread", max_workers=None):
        if kind not in ("thread", "process"):
            raise ValueError(f"`kind` must be 'thread' or 'process'; got {kind!r}.")
        self.kind = kind
        pool = cf.ThreadPoolExecutor if kind == "thread" else cf.ProcessPoolExecutor
        self._pool = pool(max_workers=max_workers)

    def submit(self, fn, /, *args, **kwargs):
        return self._pool.submit(fn, *args, **kwargs)

    def as_completed(self, futures):
        return cf.as_completed(futures)

    def shutdown(self, wait=True, cancel_futures=False):
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __repr__(self):
        return f"PoolExecutor(kind={self.kind!r})"


def resolve_executor(executor):
    """None | "serial" | "thread" | "process" | executor object -> executor object."""
    if executor is None or executor == "serial":
        return SerialExecutor()
    if executor in ("thread", "process"):
        return PoolExecutor(executor)
    if hasattr(executor, "submit") and hasattr(executor, "as_completed"):
        return executor
    if isinstance(executor, cf.Executor):
        wrapped = PoolExecutor.__new__(PoolExecutor)
        wrapped.kind, wrapped._pool = type(executor).__name__, executor
        return wrapped
    raise TypeError(
        f"`executor` must be None, 'serial', 'thread', 'process' or an object with submit/as_completed; "
        f"got {type(executor).__name__}."
    )


def run_calls(oracle, W, *, executor=None, store=None, progress=True, desc="oracle calls"):
    """Solutions of the (checked) ``oracle`` at each row of ``W``.

    Rows already in ``store`` are not recomputed; new results are persisted as they arrive.
    Returns ``(solutions, n_new)``.  On the first failing call, pending calls are cancelled,
    calls already running are awaited and persisted, and the failure is raised as an
    :class:`~palmopt.oracle.OracleError` naming its weight.
    """
    executor = resolve_executor(executor)
    W = np.asarray(W, dtype=np.float64)
    solutions = [None] * len(W)
    stored = {} if store is None else store.solutions()
    first = {}  # dedupe identical weights: key -> first row
    for i, w in enumerate(W):
        key = w.tobytes()
        if first.setdefault(key, i) == i:
            solutions[i] = stored.get(key)
    todo = [i for i in first.values() if solutions[i] is None]
    bar = tqdm(total=len(first), initial=len(first) - len(todo), desc=desc, disable=not progress, leave=False)
    futures = {executor.submit(oracle, W[i]): i for i in todo}
    error = None
    try:
        for future in executor.as_completed(futures):
            if future.cancelled():
                continue
            exc = future.exception()
            if exc is not None:
                if error is None:
                    error = exc
                    for other in futures:
                        other.cancel()
                continue
            i = futures[future]
            solutions[i] = future.result()
            if store is not None:
                store.put(W[i], solutions[i])
            bar.update(1)
    finally:
        bar.close()
    if error is not None:
        if isinstance(error, OracleError):
            raise error
        w = W[futures[next(f for f in futures if f.done() and not f.cancelled() and f.exception() is error)]]
        raise OracleError(f"oracle call failed at w = {w.tolist()}: {error!r}", w) from error
    for i, w in enumerate(W):  # duplicates share their first row's solution
        solutions[i] = solutions[first[w.tobytes()]]
    return solutions, len(todo)
