"""The run store: every oracle result is persisted the moment it arrives.

SQLite in the run directory (WAL journal, one committed row per result), keyed by the exact
bytes of the weight vector.  A store remembers the oracle's fingerprint and the run's
parameters and refuses to be reused by a different oracle or different parameters, so that
results are never silently mixed.  Killing the process (even with SIGKILL) loses at most the
calls in flight.
"""

import contextlib
import json
import os
import pickle
import sqlite3

import numpy as np

from .oracle import Solution

__all__ = ["RunStore", "StoreMismatchError", "open_store"]

STORE_FILE = "store.sqlite"


class StoreMismatchError(ValueError):
    """The store was made by another oracle or with other parameters."""


class RunStore:
    """A persistent map from weight vectors to oracle :class:`~palmopt.oracle.Solution` objects.

    Parameters
    ----------
    path : str
        A run directory (the store is ``path/store.sqlite``) or a ``.sqlite`` file.
    fingerprint : str
        Identifies the oracle and its parameters (``oracle.fingerprint()``).
    params : dict
        The run's parameters (JSON-serialisable); must match on reuse.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from palmopt.oracle import Solution
    >>> from palmopt.store import RunStore
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with RunStore(tmp, "demo-oracle", {"eps": 0.1}) as store:
    ...         store.put(np.array([0.5, 0.5]), Solution(values=[0.3, 0.4]))
    ...     with RunStore(tmp, "demo-oracle", {"eps": 0.1}) as store:
    ...         print(len(store), store.get(np.array([0.5, 0.5])).values)
    1 [0.3 0.4]
    """

    def __init__(self, path, fingerprint, params):
        if os.path.isdir(path) or not path.endswith(".sqlite"):
            os.makedirs(path, exist_ok=True)
            path = os.path.join(path, STORE_FILE)
        self.path = path
        self.fingerprint = str(fingerprint)
        self.params = json.loads(json.dumps(params, sort_keys=True, default=str))
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL without fsync: a committed row survives the death of the process (SIGKILL), which
        # is what resuming needs; only an operating-system crash could lose the newest rows.
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS results (seq INTEGER PRIMARY KEY AUTOINCREMENT, key BLOB UNIQUE, "
            "weight TEXT, solution_values BLOB, policy BLOB, info TEXT)"
        )
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        if not meta:
            self._db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("fingerprint", self.fingerprint), ("params", json.dumps(self.params, sort_keys=True))],
            )
            return
        if meta["fingerprint"] != self.fingerprint:
            self.close()
            raise StoreMismatchError(
                f"the run store {path!r} was made by oracle {meta['fingerprint']!r}, not {self.fingerprint!r}; "
                f"use another run directory (results of different oracles are never mixed)."
            )
        old = json.loads(meta["params"])
        if old != self.params:
            diff = {k: (old.get(k), self.params.get(k)) for k in set(old) | set(self.params) if old.get(k) != self.params.get(k)}
            self.close()
            raise StoreMismatchError(
                f"the run store {path!r} was made with other parameters (stored vs requested: {diff}); "
                f"use another run directory or the original parameters."
            )

    @staticmethod
    def _key(w):
        return np.ascontiguousarray(w, dtype=np.float64).tobytes()

    def get(self, w):
        """The stored solution for ``w``, or ``None``."""
        row = self._db.execute(
            "SELECT solution_values, policy, info FROM results WHERE key = ?", (self._key(w),)
        ).fetchone()
        return None if row is None else self._solution(row)

    def put(self, w, solution):
        """Persist one result (committed immediately)."""
        self._db.execute(
            "INSERT OR REPLACE INTO results (key, weight, solution_values, policy, info) VALUES (?, ?, ?, ?, ?)",
            (
                self._key(w),
                json.dumps(np.asarray(w, dtype=float).tolist()),
                np.asarray(solution.values, dtype=np.float64).tobytes(),
                pickle.dumps(solution.policy),
                json.dumps(dict(solution.info), default=str),
            ),
        )

    @staticmethod
    def _solution(row):
        values, policy, info = row
        return Solution(values=np.frombuffer(values, dtype=np.float64), policy=pickle.loads(policy), info=json.loads(info))

    def solutions(self):
        """All stored results as a dict ``{weight bytes: Solution}`` (one query)."""
        rows = self._db.execute("SELECT key, solution_values, policy, info FROM results").fetchall()
        return {bytes(r[0]): self._solution(r[1:]) for r in rows}

    def items(self):
        """All ``(weight, solution)`` pairs in the order they arrived."""
        rows = self._db.execute("SELECT weight, solution_values, policy, info FROM results ORDER BY seq").fetchall()
        return [(np.array(json.loads(r[0])), self._solution(r[1:])) for r in rows]

    def __len__(self):
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self):
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"RunStore({self.path!r}, n={len(self)})"


@contextlib.contextmanager
def open_store(store, oracle, params):
    """Context manager: ``None`` | path | RunStore -> RunStore or None.

    A store opened here from a path is closed on exit; a RunStore passed in stays open (and
    must belong to the same oracle).
    """
    if store is None:
        yield None
    elif isinstance(store, RunStore):
        if store.fingerprint != oracle.fingerprint():
            raise StoreMismatchError(
                f"the run store {store.path!r} belongs to oracle {store.fingerprint!r}, not {oracle.fingerprint()!r}."
            )
        yield store
    elif isinstance(store, (str, os.PathLike)):
        with RunStore(os.fspath(store), oracle.fingerprint(), params) as opened:
            yield opened
    else:
        raise TypeError(f"`store` must be None, a path or a RunStore; got {type(store).__name__}.")
