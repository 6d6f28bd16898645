"""Where oracle calls run: a ``concurrent.futures``-shaped interface (``submit``,
``as_completed``), so that a distributed engine plugs in without touching the algorithms.

* :class:`SerialExecutor` (the default) runs each call when its result is consumed, in order;
* :class:`PoolExecutor` runs calls on a local thread or process pool;
* :class:`RayExecutor` runs calls as Ray tasks, on this machine or a cluster (Ray is imported
  when one is made, never when this package is imported);
* a per-call ``timeout`` is enforced by the serial executor (main thread, POSIX) and the
  process pool, and refused by the thread pool (a thread cannot be stopped);
* an executor may also offer ``completed_batches(futures)`` (lists of futures that finished
  together), which :func:`run_calls` commits to the store in one transaction each;
* any object with ``submit(fn, *args)`` returning futures and ``as_completed(futures)``
  works, and a plain :class:`concurrent.futures.Executor` is wrapped.

:func:`run_calls` is the one place where algorithms call the oracle: it answers from the run
store first, persists every result as it arrives, and on a failure keeps every result that
completed before raising the error (which names the weight); on Ctrl-C it stores every
finished call, cancels the rest and re-raises ``KeyboardInterrupt``.

Modules: :mod:`~palmopt.executors.local` (serial and pool executors),
:mod:`~palmopt.executors.calls` (:func:`run_calls`), :mod:`~palmopt.executors.ray`
(:class:`RayExecutor`).
"""

import importlib

from .calls import run_calls
from .local import CallTimeout, PoolExecutor, SerialExecutor, resolve_executor

__all__ = ["CallTimeout", "SerialExecutor", "PoolExecutor", "RayExecutor", "resolve_executor", "run_calls"]


def __getattr__(name):  # PEP 562: RayExecutor's module is loaded on first use
    if name == "RayExecutor":
        value = importlib.import_module(f"{__name__}.ray").RayExecutor
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
