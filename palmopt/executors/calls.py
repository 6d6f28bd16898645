"""The one place where algorithms call the oracle: :func:`run_calls`."""

import numpy as np
from tqdm.auto import tqdm

from ..oracle import OracleError

from .local import resolve_executor

__all__ = ["run_calls"]


def run_calls(oracle, W, *, executor=None, store=None, progress=True, desc="oracle calls"):
    """Solutions of the (checked) ``oracle`` at each row of ``W``, in the order of the rows.

    Identical rows are computed once.  Rows already in ``store`` are not recomputed; new
    results are persisted as they arrive.  Returns ``(solutions, n_new)``, where ``n_new`` is
    the number of oracle calls made.

    On the first failing call, the calls not started are cancelled, the calls already running
    are awaited and persisted, and the failure is raised as an
    :class:`~palmopt.oracle.OracleError` naming its weight (an ``OracleError`` raised by the
    oracle as itself; a ``KeyboardInterrupt`` or ``SystemExit`` unchanged).  An executor that
    ``run_calls`` made from a name (``None``, ``"serial"``, ``"thread"``, ``"process"``) is
    shut down before it returns; an executor object passed in is left running.

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
    stored = {} if store is None else store.solutions()
    first = {}  # dedupe identical weights: key -> first row
    for i, w in enumerate(W):
        key = w.tobytes()
        if first.setdefault(key, i) == i:
            solutions[i] = stored.get(key)
    todo = [i for i in first.values() if solutions[i] is None]
    bar = tqdm(total=len(first), initial=len(first) - len(todo), desc=desc, disable=not progress, leave=False)
    futures = {}  # future -> row
    failed = None  # (row, exception) of the first failing call
    try:
        for i in todo:
            futures[executor.submit(oracle, W[i])] = i
        for future in executor.as_completed(futures):
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
            if store is not None:
                store.put(W[i], solutions[i])
            bar.update(1)
    except BaseException:  # interrupted, or the store failed: start nothing more
        for other in futures:
            other.cancel()
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
