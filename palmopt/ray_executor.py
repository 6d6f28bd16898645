"""Oracle calls as Ray tasks: :class:`RayExecutor`, a distributed engine for
:func:`palmopt.executors.run_calls`.

Each submitted call becomes one Ray task (``num_cpus``/``num_gpus`` reserved per call,
retried by Ray after a failure) and is returned as a :class:`concurrent.futures.Future`,
so every algorithm that takes ``executor=`` runs on a Ray cluster unchanged.  Results travel
back to the driver, which persists each one in the run store as it arrives; the workers
never touch the store.

Ray is an optional dependency (``pip install "palmopt[ray]"``): it is imported when a
:class:`RayExecutor` is made, never when :mod:`palmopt` is imported.

Cancellation.  Each task first asks a small per-executor actor (the *gate*) whether it may
start; :meth:`_RayFuture.cancel` asks the same actor to withdraw it.  The actor answers both
in one order, so ``future.cancel()`` has the meaning it has for
:class:`concurrent.futures.ThreadPoolExecutor`: it returns True, and the oracle is never
called, for a task that has not started (Ray also drops it from its queue with
``ray.cancel``), and False for one that has started, which runs to completion (retries
included) and delivers its result.  This is what :func:`~palmopt.executors.run_calls`
relies on after a failure: pending calls are cancelled, running ones are awaited and
persisted.  A plain ``ray.cancel`` would instead interrupt running tasks and lose their work.
"""

import concurrent.futures as cf
import numbers
import threading
import traceback
from collections.abc import Mapping

__all__ = ["RayExecutor"]

_RAY_MISSING = (
    "RayExecutor needs Ray, an optional dependency of palmopt: install it with "
    "`pip install \"palmopt[ray]\"` (or `pip install ray`)."
)

_CANCELLED = "CANCELLED"  # concurrent.futures' state name for a cancelled, not yet notified future

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
        every call a GPU of its own (``CUDA_VISIBLE_DEVICES`` is set for the task).
    max_retries : int >= 0, default 2
        How many times Ray reruns a failed call before reporting the failure: always after a
        system failure (the worker or its node died), and after an exception raised by the
        oracle when ``retry_exceptions`` allows it.
    retry_exceptions : bool or sequence of exception classes, default True
        Which exceptions raised by the oracle are retried: all, none, or those of (or caused
        by an exception of) one of the given classes.  The cause chain is searched because
        palmopt's checked oracle reports every failure as an
        :class:`~oracles.base.OracleError` raised *from* the oracle's own exception; list
        :class:`~oracles.base.OracleError` itself to also retry invalid results.
    address : str, optional
        The cluster to connect to (``"auto"``, ``"ray://head:10001"``, ...) when Ray is not
        initialised yet; by default ``ray.init()`` starts or finds a local instance (it
        honours ``RAY_ADDRESS``).
    init_kwargs : dict, optional
        Further keyword arguments for ``ray.init`` (``runtime_env``, ``num_cpus``, ...).

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

    Exceptions reach the driver as themselves (not as ``RayTaskError``), with their cause
    chain and the remote traceback as a note, so a failing call is reported by
    :func:`~palmopt.executors.run_calls` as an :class:`~oracles.base.OracleError` naming its
    weight, exactly as with the serial executor.  See the module docstring for cancellation.

    Examples
    --------
    >>> import palmopt
    >>> from palmopt.ray_executor import RayExecutor
    >>> oracle = palmopt.as_oracle(lambda w: w, d=2, name="identity")
    >>> with RayExecutor(init_kwargs={"num_cpus": 2}) as ex:  # doctest: +SKIP
    ...     p = palmopt.palm(oracle, 0.2, executor=ex, progress=False)
    """

    def __init__(
        self, num_cpus=1, num_gpus=0, max_retries=2, retry_exceptions=True, address=None, init_kwargs=None
    ):
        self.num_cpus = _check_resource(num_cpus, "num_cpus")
        self.num_gpus = _check_resource(num_gpus, "num_gpus")
        if isinstance(max_retries, bool) or not isinstance(max_retries, numbers.Integral):
            raise TypeError(f"`max_retries` must be an integer; got {max_retries!r} of type {type(max_retries).__name__}.")
        if max_retries < 0:
            raise ValueError(f"`max_retries` must be >= 0; got {max_retries}.")
        self.max_retries = int(max_retries)
        self.retry_exceptions = _check_retry_exceptions(retry_exceptions)
        if address is not None and not isinstance(address, str):
            raise TypeError(f"`address` must be None or a string; got {type(address).__name__}.")
        self.address = address
        if init_kwargs is not None and not isinstance(init_kwargs, Mapping):
            raise TypeError(f"`init_kwargs` must be None or a dict; got {type(init_kwargs).__name__}.")
        if init_kwargs is not None and "address" in init_kwargs:
            raise ValueError("give the cluster as `address=`, not inside `init_kwargs`.")
        self.init_kwargs = dict(init_kwargs or {})
        self._ray = _import_ray()
        self._lock = threading.Lock()
        self._owns_ray = False
        self._job = None  # the Ray job (driver connection) that the gate and the cached callable belong to
        self._gate = None
        self._task = None
        self._fn = self._fn_ref = None
        self._next_key = 0
        self._outstanding = set()

    # -- the executor interface ------------------------------------------------------------
    def submit(self, fn, /, *args, **kwargs):
        """Launch ``fn(*args, **kwargs)`` as a Ray task; returns a :class:`concurrent.futures.Future`."""
        if not callable(fn):
            raise TypeError(f"`fn` must be callable; got {type(fn).__name__}.")
        with self._lock:
            self._connect()
            if fn is not self._fn:
                self._fn, self._fn_ref = fn, self._ray.put(fn)
            key, self._next_key = self._next_key, self._next_key + 1
            ref = self._task.remote(self._gate, key, self._fn_ref, args, kwargs, self.retry_exceptions)
            future = _RayFuture(self, ref, self._gate, key)
            self._outstanding.add(future)
        future.add_done_callback(self._forget)
        return future

    def as_completed(self, futures):
        """Yield ``futures`` as they complete (or are cancelled)."""
        return cf.as_completed(futures)

    def shutdown(self, wait=True, cancel_futures=False):
        """Stop: optionally cancel the calls not yet started, wait for the others, and
        disconnect from Ray if this executor initialised it."""
        with self._lock:
            outstanding = list(self._outstanding)
        if cancel_futures:
            for future in outstanding:
                future.cancel()
        if wait:
            cf.wait(outstanding)
        with self._lock:
            ray = self._ray
            if ray.is_initialized() and self._gate is not None and self._job == _job_id(ray):
                ray.kill(self._gate)
            self._gate = self._task = self._job = None
            self._fn = self._fn_ref = None
            if self._owns_ray and ray.is_initialized():
                ray.shutdown()
            self._owns_ray = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.shutdown()

    def __repr__(self):
        return (
            f"RayExecutor(num_cpus={self.num_cpus:g}, num_gpus={self.num_gpus:g}, max_retries={self.max_retries}, "
            f"retry_exceptions={_retry_repr(self.retry_exceptions)}, address={self.address!r})"
        )

    # -- machinery -------------------------------------------------------------------------
    def _connect(self):
        """Initialise Ray if needed; (re)make the gate and the task for the current job."""
        ray = self._ray
        if not ray.is_initialized():
            ray.init(address=self.address, **self.init_kwargs)
            self._owns_ray = True
        job = _job_id(ray)
        if job != self._job:  # first use, or Ray was restarted under us: nothing old is valid
            self._gate = ray.remote(_Gate).options(num_cpus=0).remote()
            self._fn = self._fn_ref = None
            self._job = job
        if self._task is None:
            retry = self.retry_exceptions
            self._task = ray.remote(_run_call).options(
                num_cpus=self.num_cpus,
                num_gpus=self.num_gpus,
                max_retries=self.max_retries,
                retry_exceptions=[_RetryableFailure] if retry else False,
            )

    def _withdraw(self, key):
        """Ask the gate to withdraw call ``key``: True if it had not started (it never will)."""
        try:
            return self._ray.get(self._gate.cancel.remote(key))
        except self._ray.exceptions.RayError:  # the gate is gone: let the call run
            return False

    def _forget(self, future):
        with self._lock:
            self._outstanding.discard(future)


class _RayFuture(cf.Future):
    """A :class:`concurrent.futures.Future` fed by a Ray ``ObjectRef``; :meth:`cancel`
    withdraws the task if it has not started (see the module docstring)."""

    def __init__(self, executor, ref, gate, key):
        super().__init__()
        self._executor, self._ref, self._gate, self._key = executor, ref, gate, key
        self._cancelling = False
        self._cancel_lock = threading.Lock()
        ref.future().add_done_callback(self._deliver)

    def cancel(self):
        if self.done():
            return self.cancelled()
        self._cancelling = True
        if not self._executor._withdraw(self._key):  # it has started: it runs to completion
            self._cancelling = False
            return False
        self._executor._ray.cancel(self._ref)  # drop it from Ray's queue (it would only return _Skipped)
        return self._mark_cancelled()

    def _mark_cancelled(self):
        with self._cancel_lock:
            if not cf.Future.cancel(self):
                return False
            if self._state == _CANCELLED:
                self.set_running_or_notify_cancel()  # wakes as_completed/wait
            return True

    def _deliver(self, inner):
        """Ray's completion callback: copy the outcome (the original exception, not Ray's wrapper)."""
        ray = self._executor._ray
        exc = inner.exception()
        if exc is None:
            value = inner.result()
            if isinstance(value, _Skipped):
                self._mark_cancelled()
                return
            outcome = (cf.Future.set_result, value)
        else:
            if self._cancelling and isinstance(exc, ray.exceptions.TaskCancelledError):
                self._mark_cancelled()
                return
            cause = getattr(exc, "cause", None) if isinstance(exc, ray.exceptions.RayTaskError) else None
            if isinstance(cause, _RemoteFailure):
                exc = cause.original()
            outcome = (cf.Future.set_exception, exc)
        self._ref = None  # the result now lives here; let Ray free its copy
        try:
            outcome[0](self, outcome[1])
        except cf.InvalidStateError:  # cancelled meanwhile
            pass


# -- inside the workers --------------------------------------------------------------------
class _Gate:
    """Decides, in one order, whether each call starts or is withdrawn (a Ray actor)."""

    def __init__(self):
        self.started, self.withdrawn = set(), set()

    def start(self, key):
        if key in self.withdrawn:
            return False
        self.started.add(key)
        return True

    def cancel(self, key):
        if key in self.started:
            return False
        self.withdrawn.add(key)
        return True


class _Skipped:
    """What a task returns when it was withdrawn before it started."""


def _run_call(gate, key, fn, args, kwargs, retry_exceptions):
    """The Ray task: ask the gate, call ``fn``, ship a failure back in a portable form."""
    import ray

    try:
        go = ray.get(gate.start.remote(key))
    except ray.exceptions.RayError:  # the gate is gone: nobody can withdraw this call any more
        go = True
    if not go:
        return _Skipped()
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        retry = retry_exceptions is True or (
            bool(retry_exceptions) and any(isinstance(e, retry_exceptions) for e in _chain(exc))
        )
        raise (_RetryableFailure if retry else _RemoteFailure)(exc) from None


class _RemoteFailure(Exception):
    """Carries an exception raised in a task back to the driver, with its cause chain and
    traceback, even when the exception itself does not survive pickling."""

    def __init__(self, exc=None, state=None):
        if state is None:
            state = {
                "chain": [_portable(e) for e in _chain(exc)],
                "traceback": "".join(traceback.format_exception(exc)),
            }
        super().__init__(state["traceback"].rstrip().rsplit("\n", 1)[-1])
        self.state = state

    def __reduce__(self):
        return (type(self), (None, self.state))

    def original(self):
        """The exception as raised in the task, ``__cause__`` chain restored, remote traceback as a note."""
        import pickle

        chain = [pickle.loads(data) for data in self.state["chain"]]
        for exc, cause in zip(chain, chain[1:]):
            exc.__cause__ = cause
        chain[0].add_note("Raised in a Ray task; remote traceback:\n" + self.state["traceback"].rstrip())
        return chain[0]


class _RetryableFailure(_RemoteFailure):
    """A failure that ``retry_exceptions`` lets Ray retry."""


def _chain(exc):
    out = []
    while exc is not None and len(out) < _MAX_CHAIN and all(exc is not e for e in out):
        out.append(exc)
        exc = exc.__cause__ if exc.__cause__ is not None or exc.__suppress_context__ else exc.__context__
    return out


def _portable(exc):
    """Pickled bytes that load as a copy of ``exc`` (without its chain), falling back to
    rebuilding it from its class, args and attributes (exceptions whose ``__init__`` does not
    take their ``args``), then to a RuntimeError that describes it."""
    from ray import cloudpickle

    state = {k: v for k, v in vars(exc).items() if k != "__notes__"}
    for candidate in (exc, _Rebuild(type(exc), exc.args, state)):
        try:
            data = cloudpickle.dumps(candidate)
            cloudpickle.loads(data)
            return data
        except Exception:  # noqa: BLE001 - try the next form
            continue
    return cloudpickle.dumps(RuntimeError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"))


class _Rebuild:
    def __init__(self, cls, args, state):
        self.cls, self.args, self.state = cls, args, state

    def __reduce__(self):
        return (_rebuild_exception, (self.cls, self.args, self.state))


def _rebuild_exception(cls, args, state):
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc


# -- small helpers -------------------------------------------------------------------------
def _job_id(ray):
    return ray.get_runtime_context().get_job_id()


def _check_resource(x, name):
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"`{name}` must be a number; got {x!r} of type {type(x).__name__}.")
    if not x >= 0:  # also rejects NaN
        raise ValueError(f"`{name}` must be >= 0; got {x}.")
    return float(x)


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
