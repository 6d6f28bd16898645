"""Executors that run oracle calls in this process: :class:`SerialExecutor` (the default) and
:class:`PoolExecutor` (a local thread or process pool), and :func:`resolve_executor`, which
turns what a user passes as ``executor=`` into an executor object.

Per-call timeouts (``timeout=`` seconds) are enforced where a running call can be stopped:

* the serial executor, in the main thread of a POSIX process (``SIGALRM`` interrupts the
  call at the next Python bytecode or interruptible system call);
* the process pool (the same alarm inside each worker; a call that does not return within
  ``2 * timeout + 5`` s even so -- stuck in C code -- is given up and the workers are killed).

A thread cannot be stopped, so the thread pool refuses ``timeout`` (``ValueError``), and so
does any other executor object.  A call that times out fails with an
:class:`~palmopt.oracle.OracleError` naming its weight.
"""

import concurrent.futures as cf
import pickle
import queue
import signal
import threading
import time

from ..oracle import OracleError

__all__ = ["SerialExecutor", "PoolExecutor", "CallTimeout", "resolve_executor"]


class CallTimeout(OracleError):
    """An oracle call did not finish within the executor's ``timeout``."""


class _Alarm(BaseException):
    """Raised by the SIGALRM handler; a BaseException so that an oracle's ``except Exception``
    (and the checking wrapper) cannot swallow it."""


def _check_timeout(timeout):
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"`timeout` must be None or a number of seconds; got {timeout!r}.")
    timeout = float(timeout)
    if not (timeout > 0 and timeout < 1e7):
        raise ValueError(f"`timeout` must be a positive number of seconds; got {timeout}.")
    return timeout


def _alarm_usable():
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _on_alarm(signum, frame):
    raise _Alarm()


def _timed_out(args, timeout):
    w = args[0] if args else None
    try:
        import numpy as np

        shown = np.asarray(w, dtype=float).tolist()
    except Exception:  # noqa: BLE001 - only for the message
        w, shown = None, repr(w)
    return CallTimeout(f"oracle call at w = {shown} did not finish within the timeout of {timeout:g} s", w)


def _call_with_timeout(fn, timeout, args, kwargs):
    """Run ``fn(*args, **kwargs)``, interrupted by SIGALRM after ``timeout`` seconds (main thread only)."""
    if timeout is None or not _alarm_usable():
        return fn(*args, **kwargs)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Alarm:
        raise _timed_out(args, timeout) from None
    finally:
        signal.signal(signal.SIGALRM, previous)


def _worker_init():
    """Pool workers leave Ctrl-C to the parent, which stores what finished and stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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

    Parameters
    ----------
    timeout : float, optional
        Seconds a call may run; a call that takes longer fails with
        :class:`CallTimeout` (an :class:`~palmopt.oracle.OracleError`).  Needs the main thread
        of a POSIX process (``SIGALRM``).

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

    def __init__(self, timeout=None):
        self.timeout = _check_timeout(timeout)
        if self.timeout is not None and not _alarm_usable():
            raise ValueError(
                "the serial executor enforces `timeout` with SIGALRM, which needs the main thread of a POSIX "
                "process; use PoolExecutor('process', timeout=...) instead."
            )

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
                    result = _call_with_timeout(fn, self.timeout, args, kwargs)
                except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
                    future.set_exception(exc)
                except BaseException as exc:  # KeyboardInterrupt, SystemExit: never an oracle failure
                    future.set_exception(exc)  # settled: nothing waits on it forever
                    for later in futures[n + 1 :]:
                        later.cancel()
                    raise
                else:
                    future.set_result(result)
            yield future

    def shutdown(self, wait=True, cancel_futures=False):
        pass

    def terminate(self):
        pass

    def __repr__(self):
        return "SerialExecutor()" if self.timeout is None else f"SerialExecutor(timeout={self.timeout:g})"


class PoolExecutor:
    """A local pool: ``kind="thread"`` (oracles that release the GIL or wait on I/O) or
    ``"process"`` (CPU-bound Python oracles; the oracle must be picklable, which
    :meth:`submit` checks once per oracle object with a clear ``TypeError``).

    ``timeout`` (seconds per call) is supported by the process pool only: a thread cannot be
    stopped.  Workers of a process pool ignore Ctrl-C: the parent stores every finished call,
    then stops them (:meth:`terminate`).
    """

    def __init__(self, kind="thread", max_workers=None, *, timeout=None):
        if kind not in ("thread", "process"):
            raise ValueError(f"`kind` must be 'thread' or 'process'; got {kind!r}.")
        self.timeout = _check_timeout(timeout)
        if self.timeout is not None and kind == "thread":
            raise ValueError(
                "the thread executor cannot enforce `timeout` (a running thread cannot be stopped); use the "
                "process executor (PoolExecutor('process', timeout=...)) or the serial one."
            )
        self.kind = kind
        if kind == "thread":
            self._pool = cf.ThreadPoolExecutor(max_workers=max_workers)
        else:
            self._pool = cf.ProcessPoolExecutor(max_workers=max_workers, initializer=_worker_init)
        self._picklable = set()  # ids of callables known to pickle
        self._started = {}  # future -> (monotonic time first seen running, args): the timeout backstop

    @classmethod
    def _around(cls, pool):
        """A PoolExecutor that runs calls on ``pool``, a :class:`concurrent.futures.Executor`."""
        self = cls.__new__(cls)
        self.kind, self._pool, self.timeout = type(pool).__name__, pool, None
        self._picklable, self._started = set(), {}
        return self

    def _check_picklable(self, fn):
        if not isinstance(self._pool, cf.ProcessPoolExecutor) or id(fn) in self._picklable:
            return
        try:
            pickle.dumps(fn)
        except Exception as exc:  # noqa: BLE001 - pickling raises many kinds
            raise TypeError(
                f"the process executor sends the oracle to worker processes, but {fn!r} cannot be pickled "
                f"({type(exc).__name__}: {exc}); use executor='thread' or 'serial', or make the oracle picklable "
                f"(a module-level class or function; no lambdas, closures, locks or open files)."
            ) from None
        self._picklable.add(id(fn))

    def submit(self, fn, /, *args, **kwargs):
        self._check_picklable(fn)
        if self.timeout is not None:
            future = self._pool.submit(_call_with_timeout, fn, self.timeout, args, kwargs)
            self._started[future] = (None, args)
            return future
        return self._pool.submit(fn, *args, **kwargs)

    def as_completed(self, futures):
        if self.timeout is None:
            return cf.as_completed(futures)
        return (f for batch in self.completed_batches(futures) for f in batch)

    def completed_batches(self, futures):
        """Yield lists of ``futures`` that completed together, so that a caller can persist fast
        results in one transaction.  With a ``timeout``, a call still running ``2 * timeout + 5``
        s after it was seen running (the alarm inside the worker did not stop it) makes this
        raise :class:`CallTimeout` after killing the workers.

        Completion is signalled through done-callbacks into a queue: no lock of a future is held
        while waiting, so a Ctrl-C at any moment leaves the pool able to shut down (waiting with
        ``concurrent.futures.wait`` on thousands of futures takes all their locks each round).
        """
        futures = list(futures)
        arrived = queue.SimpleQueue()
        for future in futures:
            future.add_done_callback(arrived.put)
        pending = set(futures)
        limit = None if self.timeout is None else 2 * self.timeout + 5.0
        while pending:
            try:
                batch = [arrived.get(timeout=0.2)]
            except queue.Empty:
                batch = []
            while True:
                try:
                    batch.append(arrived.get_nowait())
                except queue.Empty:
                    break
            batch = [f for f in batch if f in pending]
            if batch:
                pending.difference_update(batch)
                for future in batch:
                    self._started.pop(future, None)
                yield batch
            if limit is None:
                continue
            now = time.monotonic()
            for future in pending:
                seen, args = self._started.get(future, (None, ()))
                if seen is None:
                    if future.running():
                        self._started[future] = (now, args)
                elif now - seen > limit:
                    self.terminate()
                    raise _timed_out(args, self.timeout)

    def shutdown(self, wait=True, cancel_futures=False):
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def terminate(self):
        """Stop now: cancel queued calls and, for a process pool, kill the workers (running calls
        are lost; a thread pool's running calls finish on their own)."""
        processes = dict(getattr(self._pool, "_processes", None) or {})
        self._pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes.values():
            try:
                proc.terminate()
            except Exception:  # noqa: BLE001 - already gone
                pass
        for proc in processes.values():
            proc.join(timeout=5)
            if proc.is_alive():  # pragma: no cover - SIGTERM ignored
                proc.kill()

    def __repr__(self):
        extra = "" if self.timeout is None else f", timeout={self.timeout:g}"
        return f"PoolExecutor(kind={self.kind!r}{extra})"


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

