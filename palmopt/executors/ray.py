"""Oracle calls as Ray tasks: :class:`RayExecutor`, a distributed engine for
:func:`palmopt.executors.run_calls`.

Each submitted call becomes one Ray task (``num_cpus``/``num_gpus`` reserved per call,
retried by Ray after a failure) and is returned as a :class:`concurrent.futures.Future`,
so every algorithm that takes ``executor=`` runs on a Ray cluster unchanged.  Results travel
back to the driver, which persists each one in the run store as it arrives; the workers
never touch the store.

Ray is an optional dependency (``pip install "palmopt[ray]"``): it is imported when a
:class:`RayExecutor` is made, never when :mod:`palmopt` is imported.

Slots and cancellation.  The executor hands a call to Ray only when a slot is free: at most
``max_in_flight`` calls are in Ray at a time, by default as many as the cluster's CPUs (or
GPUs) can run at once, re-read every few seconds so that an autoscaling cluster is used as
it grows.  The others wait in the driver, so ``future.cancel()`` means what it means for
:class:`concurrent.futures.ThreadPoolExecutor`: True, and the oracle is never called, for a
call still waiting (``future.running()`` is False); False for a call handed to Ray, which
runs to completion (retries included) and delivers its result.  This is what
:func:`~palmopt.executors.run_calls` relies on after a failure: calls not started are
cancelled, running ones are awaited and persisted.  palmopt never calls ``ray.cancel``, which
would interrupt running calls and lose their work.  The window also keeps Ray's queue and
object store small when a net has a million points.
"""

import collections
import concurrent.futures as cf
import functools
import math
import pickle
import threading
import time
import traceback
from collections.abc import Mapping

from ..tolerances import INTEGER_ROUNDING
from ..validation import check_count, check_real

__all__ = ["RayExecutor"]

_RAY_MISSING = (
    "RayExecutor needs Ray, an optional dependency of palmopt: install it with "
    "`pip install \"palmopt[ray]\"` (or `pip install ray`)."
)

#: Seconds between two readings of the cluster's size (default ``max_in_flight``).
_RESIZE_SECONDS = 5.0
#: How deep the cause chain of a remote exception is carried back to the driver.
_MAX_CHAIN = 8


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ImportError(_RAY_MISSING) from exc
    return ray


class RayExecutor:
    """Run oracle calls as Ray tasks, on this machine or on a Ray cluster.

    Parameters
    ----------
    num_cpus, num_gpus : float >= 0, default 1 and 0
        Resources that Ray reserves for each call (fractions allowed); ``num_gpus=1`` gives
        every call a GPU of its own (Ray sets ``CUDA_VISIBLE_DEVICES`` for the task).
    max_retries : int >= 0, default 2
        How many times Ray reruns a failed call before reporting the failure: always after a
        system failure (the worker or its node died), and after an exception raised by the
        oracle when ``retry_exceptions`` allows it.
    retry_exceptions : bool or sequence of exception classes, default True
        Which exceptions raised by the oracle are retried: all, none, or those of (or caused
        by an exception of) one of the given classes.  The cause chain is searched because
        palmopt's checked oracle reports every failure as an
        :class:`~palmopt.oracle.OracleError` raised *from* the oracle's own exception; list
        :class:`~palmopt.oracle.OracleError` itself to also retry invalid results.
    address : str, optional
        The cluster to connect to (``"auto"``, ``"ray://head:10001"``, ...) when Ray is not
        initialised yet; by default ``ray.init()`` starts a local instance (or joins the one
        that ``RAY_ADDRESS`` names).
    init_kwargs : dict, optional
        Further keyword arguments for ``ray.init`` (``runtime_env``, ``num_cpus``, ...).
    max_in_flight : int >= 1, optional
        At most this many calls in Ray at a time (see Notes); by default as many as the
        cluster can run at once, ``min(CPUs / num_cpus, GPUs / num_gpus)``.
    max_calls : int >= 0, optional
        Calls a Ray worker process runs before it exits (Ray's ``max_calls``; ``0``: no
        limit).  Default: ``1`` when calls reserve a GPU (``num_gpus > 0``), so every
        fine-tune starts in a fresh process and GPU memory that a library keeps cached (CUDA
        context, allocator pools, compiled kernels) cannot accumulate from one call to the
        next; ``0`` otherwise (worker reuse is cheap for CPU calls).

    Raises
    ------
    ImportError
        Ray is not installed.
    TypeError, ValueError
        Invalid arguments.

    Notes
    -----
    Ray is initialised at the first :meth:`submit`, and only if it is not initialised
    already (then ``address`` and ``init_kwargs`` are not used); :meth:`shutdown` disconnects
    only from a Ray instance that this executor initialised.  The callable is shipped to the
    cluster once per distinct object (``ray.put``), so a large oracle is not copied per call;
    the workers must be able to import its module (install the package on the cluster, or
    ship it with ``init_kwargs={"runtime_env": {"py_modules": [...]}}``).

    Calls wait in the driver until one of ``max_in_flight`` slots is free, so that
    ``future.cancel()`` withdraws exactly the calls not yet started (see the module
    docstring).  A ``max_in_flight`` larger than what the cluster can run only lets some
    calls wait in Ray's queue instead, where they can no longer be withdrawn.

    Exceptions reach the driver as themselves (not as ``RayTaskError``), with their cause
    chain and the remote traceback as a note, so a failing call is reported by
    :func:`~palmopt.executors.run_calls` as an :class:`~palmopt.oracle.OracleError` naming its
    weight, exactly as with the serial executor.  An exception of the chain that cannot be
    pickled arrives as a RuntimeError that names its class and message.

    Examples
    --------
    >>> import palmopt
    >>> from palmopt.executors import RayExecutor
    >>> oracle = palmopt.as_oracle(lambda w: w, d=2, name="identity")
    >>> with RayExecutor(init_kwargs={"num_cpus": 2}) as ex:  # doctest: +SKIP
    ...     p = palmopt.palm(oracle, 0.2, executor=ex, progress=False)
    """

    def __init__(
        self,
        num_cpus=1,
        num_gpus=0,
        max_retries=2,
        retry_exceptions=True,
        address=None,
        init_kwargs=None,
        *,
        max_in_flight=None,
        max_calls=None,
    ):
        self.num_cpus = check_real(num_cpus, "num_cpus")
        self.num_gpus = check_real(num_gpus, "num_gpus")
        self.max_retries = check_count(max_retries, "max_retries", minimum=0)
        self.retry_exceptions = _check_retry_exceptions(retry_exceptions)
        if address is not None and not isinstance(address, str):
            raise TypeError(f"`address` must be None or a string; got {type(address).__name__}.")
        self.address = address
        if init_kwargs is not None and not isinstance(init_kwargs, Mapping):
            raise TypeError(f"`init_kwargs` must be None or a dict; got {type(init_kwargs).__name__}.")
        if init_kwargs is not None and "address" in init_kwargs:
            raise ValueError("give the cluster as `address=`, not inside `init_kwargs`.")
        self.init_kwargs = dict(init_kwargs or {})
        self.max_in_flight = None if max_in_flight is None else check_count(max_in_flight, "max_in_flight")
        self.max_calls = None if max_calls is None else check_count(max_calls, "max_calls", minimum=0)
        self._ray = _import_ray()
        self._cond = threading.Condition()  # guards everything below
        self._owns_ray = False
        self._job = None  # the Ray job (driver connection) that the task and the cached callable belong to
        self._task = None
        self._fn = self._fn_ref = None
        self._waiting = collections.deque()  # calls not yet handed to Ray
        self._in_flight = 0
        self._outstanding = set()
        self._slots, self._slots_read = 1, -math.inf
        self._dispatcher = None

    # -- the executor interface ------------------------------------------------------------
    def submit(self, fn, /, *args, **kwargs):
        """Queue ``fn(*args, **kwargs)`` for a Ray task; returns a :class:`concurrent.futures.Future`."""
        if not callable(fn):
            raise TypeError(f"`fn` must be callable; got {type(fn).__name__}.")
        with self._cond:
            self._connect()
            if fn is not self._fn:
                self._fn, self._fn_ref = fn, self._ray.put(fn)
            call = _Call((self._task, self._fn_ref, args, kwargs))
            self._waiting.append(call)
            self._outstanding.add(call)
            if self._dispatcher is None:
                self._dispatcher = threading.Thread(target=self._dispatch, name="palmopt-ray-dispatch", daemon=True)
                self._dispatcher.start()
            self._cond.notify_all()
        call.add_done_callback(self._forget)
        return call

    def as_completed(self, futures):
        """Yield ``futures`` as they complete (or are cancelled)."""
        return cf.as_completed(futures)

    def shutdown(self, wait=True, cancel_futures=False):
        """Optionally cancel the calls not yet started, optionally wait for the others, and
        disconnect from Ray if this executor initialised it.  A later :meth:`submit` starts
        afresh."""
        with self._cond:
            waiting, outstanding = list(self._waiting), list(self._outstanding)
        if cancel_futures:
            for call in waiting:
                call.cancel()
        if wait:
            cf.wait(outstanding)
        with self._cond:
            self._task = self._job = None
            self._fn = self._fn_ref = None
            self._slots_read = -math.inf
            owned, self._owns_ray = self._owns_ray, False
        if owned and self._ray.is_initialized():
            self._ray.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.shutdown()

    def __repr__(self):
        extra = "" if self.max_in_flight is None else f", max_in_flight={self.max_in_flight}"
        extra += "" if self.max_calls is None else f", max_calls={self.max_calls}"
        return (
            f"RayExecutor(num_cpus={self.num_cpus:g}, num_gpus={self.num_gpus:g}, max_retries={self.max_retries}, "
            f"retry_exceptions={_retry_repr(self.retry_exceptions)}, address={self.address!r}{extra})"
        )

    # -- machinery (``self._cond`` held where noted) ---------------------------------------
    def _connect(self):
        """Initialise Ray if needed; (re)make the remote task for the current job.  Lock held."""
        ray = self._ray
        if not ray.is_initialized():
            ray.init(address=self.address, **self.init_kwargs)
            self._owns_ray = True
        job = ray.get_runtime_context().get_job_id()
        if job != self._job:  # first use, or Ray was restarted under us: nothing old is valid
            self._fn = self._fn_ref = None
            self._slots_read = -math.inf
            self._job = job
        if self._task is None:
            options = self.task_options()
            # max_calls is a property of the worker, set in ray.remote() (``.options()`` refuses it)
            self._task = ray.remote(max_calls=options.pop("max_calls"))(_run_call).options(**options)

    def task_options(self):
        """The Ray options of every call's task: ``max_calls`` (given to ``ray.remote``) and the
        ``.options()`` (``num_cpus``, ``num_gpus``, ``max_retries``, ``retry_exceptions``)."""
        max_calls = self.max_calls if self.max_calls is not None else (1 if self.num_gpus > 0 else 0)
        return {
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "max_retries": self.max_retries,
            "retry_exceptions": [_RetryableFailure] if self.retry_exceptions else False,
            "max_calls": max_calls,
        }

    def _free_slot(self):
        """Whether another call may be handed to Ray now.  Lock held."""
        if self.max_in_flight is not None:
            return self._in_flight < self.max_in_flight
        now = time.monotonic()
        if now - self._slots_read > _RESIZE_SECONDS:
            total = self._ray.cluster_resources()
            slots = math.inf
            for need, have in ((self.num_cpus, total.get("CPU", 0.0)), (self.num_gpus, total.get("GPU", 0.0))):
                if need > 0:
                    slots = min(slots, math.floor(have / need + INTEGER_ROUNDING))
            self._slots, self._slots_read = max(slots, 1), now
        return self._in_flight < self._slots

    def _dispatch(self):
        """The dispatcher thread: hands waiting calls to Ray as slots free up; ends when none
        wait.  If Ray itself fails (it was shut down, say), the waiting calls fail with it."""
        try:
            self._dispatch_waiting()
        except BaseException as exc:  # noqa: BLE001 - handed to the callers through the futures
            with self._cond:
                stranded = list(self._waiting)
                self._waiting.clear()
                self._dispatcher = None
            for call in stranded:
                if call.claim():
                    call.set_exception(exc)

    def _dispatch_waiting(self):
        while True:
            with self._cond:
                while True:
                    if not self._waiting:
                        self._dispatcher = None
                        return
                    if self._waiting[0].cancelled() or self._free_slot():
                        break
                    self._cond.wait(timeout=_RESIZE_SECONDS)
                call = self._waiting.popleft()
                if not call.claim():  # cancelled while waiting
                    continue
                self._in_flight += 1
            task, fn_ref, args, kwargs = call.payload
            call.payload = None
            try:
                ref = task.remote(fn_ref, args, kwargs, self.retry_exceptions)
                ref.future().add_done_callback(functools.partial(self._deliver, call))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                self._release()
                call.set_exception(exc)

    def _deliver(self, call, inner):
        """Ray's completion callback: free the slot, then pass on the outcome (the original
        exception, not Ray's wrapper)."""
        self._release()
        exc = inner.exception()
        if exc is None:
            call.set_result(inner.result())
            return
        cause = getattr(exc, "cause", None) if isinstance(exc, self._ray.exceptions.RayTaskError) else None
        call.set_exception(cause.original() if isinstance(cause, _RemoteFailure) else exc)

    def _release(self):
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def _forget(self, call):
        with self._cond:
            self._outstanding.discard(call)


class _Call(cf.Future):
    """One call: waiting in the driver (PENDING), handed to Ray (RUNNING), or done.

    A cancelled call must reach its waiters (``as_completed``, ``wait``) at once, not when the
    dispatcher gets to it; ``concurrent.futures`` tells them from
    ``set_running_or_notify_cancel``, which may run only once per future.  ``_settle`` runs it
    exactly once, from whichever of :meth:`cancel` and :meth:`claim` comes first.
    """

    def __init__(self, payload):
        super().__init__()
        self.payload = payload
        self._settle_lock = threading.Lock()
        self._settled = False

    def cancel(self):
        if not super().cancel():  # running or done
            return False
        self._settle()  # tell the waiters, unless the dispatcher already did
        return True

    def claim(self):
        """PENDING -> RUNNING (True); False for a cancelled call (its waiters are told)."""
        return self._settle()

    def _settle(self):
        with self._settle_lock:
            if self._settled:
                return False
            self._settled = True
            return self.set_running_or_notify_cancel()


# -- inside the workers --------------------------------------------------------------------
def _run_call(fn, args, kwargs, retry_exceptions):
    """The Ray task: call ``fn``; ship a failure back in a portable form."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        retry = retry_exceptions is True or (
            bool(retry_exceptions) and any(isinstance(e, retry_exceptions) for e in _chain(exc))
        )
        raise (_RetryableFailure if retry else _RemoteFailure).of(exc) from None


class _RemoteFailure(Exception):
    """What a task raises when ``fn`` fails; Ray carries it to the driver, where
    :meth:`original` rebuilds the exception that ``fn`` raised.

    Ray pickles an exception without its ``__cause__``, so each exception of the chain is
    pickled on its own, and the remote traceback is kept as text.  An exception that pickles
    by itself -- :class:`~palmopt.oracle.OracleError` does, with its weight -- comes back as a
    copy; one that does not (an ``__init__`` that does not take its ``args``, an unpicklable
    attribute, a class the driver cannot import) comes back as a RuntimeError naming its class
    and message.
    """

    def __init__(self, links, traceback_text):
        super().__init__(traceback_text.rsplit("\n", 1)[-1])
        self.links = links  # [(pickled exception or None, "module.Class: message")], first to last cause
        self.traceback_text = traceback_text

    def __reduce__(self):
        return (type(self), (self.links, self.traceback_text))

    @classmethod
    def of(cls, exc):
        from ray import cloudpickle

        links = []
        for e in _chain(exc):
            try:
                data = cloudpickle.dumps(e)
                cloudpickle.loads(data)
            except Exception:  # noqa: BLE001 - described instead
                data = None
            links.append((data, f"{type(e).__module__}.{type(e).__qualname__}: {e}"))
        return cls(links, "".join(traceback.format_exception(exc)).rstrip())

    def original(self):
        """The first exception, its ``__cause__`` chain restored, the remote traceback as a note."""
        chain = [_load(data, description) for data, description in self.links]
        for exc, cause in zip(chain, chain[1:]):
            exc.__cause__ = cause
        chain[0].add_note("Raised in a Ray task; remote traceback:\n" + self.traceback_text)
        return chain[0]


def _load(data, description):
    if data is not None:
        try:
            return pickle.loads(data)
        except Exception:  # noqa: BLE001 - described instead
            pass
    return RuntimeError(description)


class _RetryableFailure(_RemoteFailure):
    """A failure that ``retry_exceptions`` lets Ray retry."""


def _chain(exc):
    out = []
    while exc is not None and len(out) < _MAX_CHAIN and all(exc is not e for e in out):
        out.append(exc)
        exc = exc.__cause__ if exc.__cause__ is not None or exc.__suppress_context__ else exc.__context__
    return out


def _check_retry_exceptions(retry):
    if isinstance(retry, bool):
        return retry
    if isinstance(retry, type):
        retry = (retry,)
    try:
        classes = tuple(retry)
    except TypeError:
        classes = None
    if classes is None or not classes or not all(isinstance(c, type) and issubclass(c, BaseException) for c in classes):
        raise TypeError(
            f"`retry_exceptions` must be True, False or a non-empty sequence of exception classes; got {retry!r}."
        )
    return classes


def _retry_repr(retry):
    if isinstance(retry, bool):
        return repr(retry)
    return "[" + ", ".join(c.__name__ for c in retry) + "]"
