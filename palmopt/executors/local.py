"""Executors that run oracle calls in this process: :class:`SerialExecutor` (the default) and
:class:`PoolExecutor` (a local thread or process pool), and :func:`resolve_executor`, which
turns what a user passes as ``executor=`` into an executor object."""

import concurrent.futures as cf

__all__ = ["SerialExecutor", "PoolExecutor", "resolve_executor"]


class _Deferred(cf.Future):
    """A call submitted to a :class:`SerialExecutor`; it runs when ``as_completed`` reaches it."""

    def __init__(self, fn, args, kwargs):
        super().__init__()
        self.call = (fn, args, kwargs)  # None once the call has run (or been skipped)


class SerialExecutor:
    """Runs each submitted call in the calling thread when :meth:`as_completed` reaches it, in
    the order given.

    An :class:`Exception` raised by a call is set on its future.  Anything else
    (``KeyboardInterrupt``, ``SystemExit``) leaves ``as_completed`` at once, unchanged: the
    call's future fails with it and the calls not reached yet are cancelled.

    Examples
    --------
    >>> from palmopt.executors import SerialExecutor
    >>> ex = SerialExecutor()
    >>> futures = [ex.submit(pow, 2, k) for k in range(4)]
    >>> futures[0].done()  # nothing runs before as_completed asks for it
    False
    >>> [f.result() for f in ex.as_completed(futures)]
    [1, 2, 4, 8]
    """

    def submit(self, fn, /, *args, **kwargs):
        return _Deferred(fn, args, kwargs)

    def as_completed(self, futures):
        futures = list(futures)
        for n, future in enumerate(futures):
            if not isinstance(future, _Deferred):
                raise TypeError(f"SerialExecutor.as_completed takes its own futures; got {type(future).__name__}.")
            call, future.call = future.call, None
            if call is not None and future.set_running_or_notify_cancel():
                fn, args, kwargs = call
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
                    future.set_exception(exc)
                except BaseException as exc:
                    future.set_exception(exc)  # settled: nothing waits on it forever
                    for later in futures[n + 1 :]:
                        later.cancel()
                    raise
                else:
                    future.set_result(result)
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
        pool = cf.ThreadPoolExecutor if kind == "thread" else cf.ProcessPoolExecutor
        self.kind = kind
        self._pool = pool(max_workers=max_workers)

    @classmethod
    def _around(cls, pool):
        """A PoolExecutor that runs calls on ``pool``, a :class:`concurrent.futures.Executor`."""
        self = cls.__new__(cls)
        self.kind, self._pool = type(pool).__name__, pool
        return self

    def submit(self, fn, /, *args, **kwargs):
        return self._pool.submit(fn, *args, **kwargs)

    def as_completed(self, futures):
        return cf.as_completed(futures)

    def shutdown(self, wait=True, cancel_futures=False):
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __repr__(self):
        return f"PoolExecutor(kind={self.kind!r})"


def resolve_executor(executor):
    """None | "serial" | "thread" | "process" | executor object -> executor object.

    An executor object has ``submit(fn, *args)`` returning futures and ``as_completed(futures)``;
    a plain :class:`concurrent.futures.Executor` (which has no ``as_completed``) is wrapped in a
    :class:`PoolExecutor`.
    """
    if executor is None:
        return SerialExecutor()
    if isinstance(executor, str):
        if executor == "serial":
            return SerialExecutor()
        if executor in ("thread", "process"):
            return PoolExecutor(executor)
    elif hasattr(executor, "submit") and hasattr(executor, "as_completed"):
        return executor
    elif isinstance(executor, cf.Executor):
        return PoolExecutor._around(executor)
    got = repr(executor) if isinstance(executor, str) else type(executor).__name__
    raise TypeError(
        f"`executor` must be None, 'serial', 'thread', 'process' or an object with submit/as_completed; got {got}."
    )
