"""The run store: every oracle result is persisted the moment it arrives.

SQLite in the run directory (WAL journal, ``synchronous=NORMAL``, one committed row per
result), keyed by the exact bytes of the weight vector.  A store remembers the oracle's
fingerprint and the run's parameters and refuses to be reused by a different oracle or
different parameters, so that results are never silently mixed.  Killing the process (even
with SIGKILL) loses at most the calls in flight; an operating-system crash or power loss can
lose the newest rows (they are recomputed on resume) but cannot corrupt the database.

The file is data, never code (no pickle): values and standard errors are float64 bytes,
``info`` is JSON, and a policy is stored as

* raw bytes with a JSON header (dtype, shape) for a NumPy array of numbers or strings (never
  an object array);
* JSON for ``None``, strings, numbers, lists and dicts that survive a JSON round trip;
* a file written by the oracle's own ``save_policy(policy, directory)`` hook under
  ``policies/`` next to the store (read back with ``load_policy(path)``; the path must stay
  inside that directory), when the store was opened with the oracle;
* otherwise not at all: the row keeps its values, a :class:`RuntimeWarning` says so, and a
  resumed run gets ``policy=None`` for that weight.

Everything read back is checked again like a fresh result (finite values of the right
length; :func:`palmopt.executors.run_calls` also checks ``d`` and ``value_range``); a damaged,
foreign or legacy (pickle-based) file is refused with a :class:`StoreCorruptError` that names
the file.  A lock file (``store.sqlite.lock``, holding the owner's PID) keeps two processes
from running into the same store at once (:class:`RunLock`).
"""

import contextlib
import json
import os
import sqlite3
import threading
import time
import warnings

import numpy as np

from .oracle import Solution

__all__ = [
    "RunStore",
    "RunLock",
    "StoreError",
    "StoreCorruptError",
    "StoreLockedError",
    "StoreMismatchError",
    "open_store",
]

STORE_FILE = "store.sqlite"
FORMAT = "palmopt.store/2"
POLICY_DIR = "policies"


class StoreMismatchError(ValueError):
    """The store was made by another oracle or with other parameters."""


class StoreError(RuntimeError):
    """The run store cannot be used (see the subclasses)."""


class StoreCorruptError(StoreError):
    """The store file is damaged, foreign, or holds a value that fails the checks."""


class StoreLockedError(StoreError):
    """Another live process holds the run's lock."""

    def __init__(self, message, pid=None):
        super().__init__(message)
        self.pid = pid


# -- the lock ---------------------------------------------------------------------------------------

_HELD = {}  # realpath of a lock file -> [fd, count]: re-entrant within one process
_HELD_GUARD = threading.Lock()


def lock_path(path):
    """The lock file of the store at ``path`` (a run directory or a ``.sqlite`` file)."""
    return _store_file(path) + ".lock"


def _store_file(path):
    path = os.fspath(path)
    if os.path.isdir(path) or not path.endswith(".sqlite"):
        return os.path.join(path, STORE_FILE)
    return path


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class RunLock:
    """An exclusive, re-entrant (within this process) lock on a run store.

    ``fcntl.flock`` on ``<store>.lock``, which holds the owner's PID.  The operating system
    drops the lock when its process dies, so a lock file left by a dead process (a stale
    lock) is simply taken over.  Where ``fcntl`` is missing, ``O_EXCL`` creation with a PID
    is used instead, and a file whose PID is no longer alive is removed.

    Parameters
    ----------
    path : str
        A run directory or a ``.sqlite`` store file.
    wait : bool or float
        ``False``: refuse at once with :class:`StoreLockedError` naming the owner's PID;
        ``True``: wait for the owner to finish; a number: wait at most that many seconds.
    """

    def __init__(self, path, wait=False):
        self.path = lock_path(path)
        self.wait = wait
        self._key = None

    def acquire(self):
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        key = os.path.realpath(self.path)
        with _HELD_GUARD:
            if key in _HELD:
                _HELD[key][1] += 1
                self._key = key
                return self
        deadline = None if self.wait is True else (time.monotonic() + float(self.wait or 0.0))
        while True:
            fd = self._try(key)
            if fd is not None:
                break
            if deadline is not None and time.monotonic() >= deadline:
                pid = self._owner()
                who = f"process {pid}" if pid else "another process"
                raise StoreLockedError(
                    f"the run store {_store_file_of_lock(self.path)!r} is in use by {who} (lock file "
                    f"{self.path!r}); wait for it to finish (palmopt run --wait), or use another run directory.",
                    pid,
                )
            time.sleep(0.05)
        with _HELD_GUARD:
            _HELD[key] = [fd, 1]
        self._key = key
        return self

    def _try(self, key):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self._try_excl()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def _try_excl(self):  # pragma: no cover - not POSIX
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pid = self._owner()
            if pid is not None and not _pid_alive(pid):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)  # stale: its process is gone
            return None
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def _owner(self):
        try:
            with open(self.path) as f:
                return int(f.read(32).strip() or 0) or None
        except (OSError, ValueError):
            return None

    def release(self):
        if self._key is None:
            return
        key, self._key = self._key, None
        with _HELD_GUARD:
            entry = _HELD.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _HELD[key]
        fd = entry[0]
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            os.close(fd)
            with contextlib.suppress(OSError):
                os.remove(self.path)
            return
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _store_file_of_lock(path):
    return path[: -len(".lock")]


# -- policies as data -------------------------------------------------------------------------------


#: dtype kinds a stored policy array may have: numbers, booleans, fixed-width strings (never objects).
_ARRAY_KINDS = "biufc?US"


def _array_bytes(a):
    """An array as ``{"dtype": ..., "shape": [...]}\n`` + its C-order bytes (decoded without pickle)."""
    a = np.ascontiguousarray(a)
    header = json.dumps({"dtype": a.dtype.str, "shape": list(a.shape)}).encode()
    return header + b"\n" + a.tobytes()


def _array_from_bytes(blob):
    header, sep, data = blob.partition(b"\n")
    meta = json.loads(header) if sep else None
    if not isinstance(meta, dict) or not isinstance(meta.get("dtype"), str) or not isinstance(meta.get("shape"), list):
        raise ValueError("the policy array has no valid header")
    dtype = np.dtype(meta["dtype"])
    shape = meta["shape"]
    if dtype.kind not in _ARRAY_KINDS or dtype.hasobject or dtype.fields or dtype.itemsize == 0:
        raise ValueError(f"the policy array has dtype {meta['dtype']!r}, which a store never holds")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise ValueError(f"the policy array has shape {shape!r}")
    if int(np.prod(shape, dtype=object)) * dtype.itemsize != len(data):
        raise ValueError("the policy array's bytes do not match its shape")
    a = np.frombuffer(data, dtype=dtype).reshape(shape)
    a.setflags(write=False)
    return a


def _json_roundtrips(x):
    try:
        text = json.dumps(x, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError):
        return None
    return text if json.loads(text) == x and type(json.loads(text)) is type(x) else None


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
    oracle : optional
        The oracle, for its ``save_policy``/``load_policy`` hooks (policies that are neither
        arrays nor JSON).
    wait : bool or float
        What to do when another process holds the store's lock (see :class:`RunLock`).

    Raises
    ------
    StoreMismatchError
        The store belongs to another oracle or other parameters.
    StoreCorruptError
        The file is not a palmopt run store, is damaged, or was written by a palmopt that
        pickled policies (such a file is never read).
    StoreLockedError
        Another live process is using the store.

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

    def __init__(self, path, fingerprint, params, *, oracle=None, wait=False):
        path = os.fspath(path)
        if os.path.isdir(path) or not path.endswith(".sqlite"):
            os.makedirs(path, exist_ok=True)
        path = _store_file(path)
        self.path = path
        self.fingerprint = str(fingerprint)
        self.params = json.loads(json.dumps(params, sort_keys=True, default=str))
        self._oracle = oracle
        self._db = None
        self._warned = set()
        self._lock = RunLock(path, wait=wait).acquire()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _corrupt(self, what, exc=None):
        detail = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        return StoreCorruptError(
            f"the run store {self.path!r} {what}{detail}; nothing was changed. Move the file away (or restore "
            f"it from a backup) and rerun to recompute, or use another run directory."
        )

    def _open(self):
        path = self.path
        existed = os.path.exists(path) and os.path.getsize(path) > 0
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise self._corrupt("is not an SQLite database (damaged, or another kind of file)", exc) from None
        if existed and tables and not {"meta", "results"} <= tables:
            raise self._corrupt(f"is an SQLite database but not a palmopt run store (tables {sorted(tables)})")
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL: a committed row survives the death of the process
            # (SIGKILL); an operating-system crash can lose the newest commits (recomputed on
            # resume) but never corrupts the database.  Commits are not fsynced, so one commit
            # per result costs a single write().
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            meta = dict(self._db.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as exc:
            raise self._corrupt("cannot be read", exc) from None
        if not meta:
            if "results" in tables:
                raise self._corrupt("has results but no metadata")
            with self._db:  # one transaction
                self._db.execute("BEGIN")
                self._db.execute(
                    "CREATE TABLE results (seq INTEGER PRIMARY KEY AUTOINCREMENT, key BLOB UNIQUE, weight TEXT, "
                    "solution_values BLOB, stderr BLOB, policy_kind TEXT, policy BLOB, info TEXT)"
                )
                self._db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("format", FORMAT),
                        ("fingerprint", self.fingerprint),
                        ("params", json.dumps(self.params, sort_keys=True)),
                    ],
                )
            return
        if meta.get("format") != FORMAT:
            if "format" not in meta and "fingerprint" in meta:
                raise self._corrupt(
                    "was written by an older palmopt that pickled policies; it is never read, because unpickling "
                    "a file can run code"
                )
            raise self._corrupt(f"has format {meta.get('format')!r}, not {FORMAT!r}")
        if "fingerprint" not in meta or "params" not in meta:
            raise self._corrupt("has incomplete metadata")
        if meta["fingerprint"] != self.fingerprint:
            raise StoreMismatchError(
                f"the run store {path!r} was made by oracle {meta['fingerprint']!r}, not {self.fingerprint!r}; "
                f"use another run directory (results of different oracles are never mixed)."
            )
        try:
            old = json.loads(meta["params"])
        except ValueError as exc:
            raise self._corrupt("has unreadable parameters", exc) from None
        if not isinstance(old, dict):
            raise self._corrupt("has unreadable parameters")
        if old != self.params:
            diff = {k: (old.get(k), self.params.get(k)) for k in set(old) | set(self.params) if old.get(k) != self.params.get(k)}
            raise StoreMismatchError(
                f"the run store {path!r} was made with other parameters (stored vs requested: {diff}); "
                f"use another run directory or the original parameters."
            )

    @staticmethod
    def _key(w):
        return np.ascontiguousarray(w, dtype=np.float64).tobytes()

    # -- writing ------------------------------------------------------------------------------

    def _encode_policy(self, w, policy):
        if policy is None:
            return "none", None
        if isinstance(policy, np.ndarray) and policy.dtype.kind in _ARRAY_KINDS and not policy.dtype.fields:
            return "array", _array_bytes(policy)
        if isinstance(policy, np.generic):
            policy = policy.item()
        text = _json_roundtrips(policy)
        if text is not None:
            return "json", text.encode()
        saver = getattr(self._oracle, "save_policy", None)
        if callable(saver):
            root = os.path.join(os.path.dirname(self.path), POLICY_DIR)
            stored = os.fspath(saver(policy, root))
            rel = os.path.relpath(os.path.realpath(stored), os.path.realpath(root))
            if rel.startswith(os.pardir) or os.path.isabs(rel):
                raise ValueError(f"save_policy wrote {stored!r}, outside {root!r}; it must write inside the directory.")
            return "hook", rel.encode()
        kind = type(policy).__name__
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(
                f"the run store {self.path!r} cannot store policies of type {kind} (not an array or JSON, and the "
                f"oracle has no save_policy hook): their values are stored, and a resumed run gets policy=None "
                f"for those weights.",
                RuntimeWarning,
                stacklevel=3,
            )
        return "dropped", None

    def _row(self, w, solution):
        kind, blob = self._encode_policy(w, solution.policy)
        stderr = None if solution.stderr is None else np.asarray(solution.stderr, dtype=np.float64).tobytes()
        return (
            self._key(w),
            json.dumps(np.asarray(w, dtype=float).tolist()),
            np.asarray(solution.values, dtype=np.float64).tobytes(),
            stderr,
            kind,
            blob,
            json.dumps(dict(solution.info), default=str),
        )

    _INSERT = (
        "INSERT OR REPLACE INTO results (key, weight, solution_values, stderr, policy_kind, policy, info) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)"
    )

    def put(self, w, solution):
        """Persist one result (committed immediately)."""
        self._db.execute(self._INSERT, self._row(w, solution))

    def put_many(self, pairs):
        """Persist ``(w, solution)`` pairs in one transaction (one commit)."""
        rows = [self._row(w, s) for w, s in pairs]
        if not rows:
            return
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(self._INSERT, rows)

    # -- reading ------------------------------------------------------------------------------

    def _solution(self, row):
        key, values, stderr, kind, policy, info = row
        w = None
        with contextlib.suppress(Exception):
            w = np.frombuffer(bytes(key), dtype=np.float64).tolist()
        where = f"holds a damaged row (weight {w})"
        try:
            if not isinstance(values, bytes) or len(values) == 0 or len(values) % 8:
                raise ValueError("values are not float64 bytes")
            if len(bytes(key)) != len(values):
                raise ValueError("the weight and the values differ in length")
            v = np.frombuffer(values, dtype=np.float64)
            if not np.all(np.isfinite(v)):
                raise ValueError(f"non-finite values {v.tolist()}")
            se = None
            if stderr is not None:
                if not isinstance(stderr, bytes) or len(stderr) != len(values):
                    raise ValueError("stderr is not float64 bytes of the values' length")
                se = np.frombuffer(stderr, dtype=np.float64)
                if not (np.all(np.isfinite(se)) and se.min() >= 0):
                    raise ValueError(f"stderr {se.tolist()} (must be finite and >= 0)")
            info = json.loads(info) if info is not None else {}
            if not isinstance(info, dict):
                raise ValueError("info is not a JSON object")
            pol = self._decode_policy(kind, policy)
        except (ValueError, TypeError, OSError, RecursionError) as exc:
            raise self._corrupt(where, exc) from None
        return Solution(values=v, policy=pol, info=info, stderr=se)

    def _decode_policy(self, kind, blob):
        if kind in ("none", "dropped"):
            return None
        if kind == "array":
            return _array_from_bytes(bytes(blob))
        if kind == "json":
            return json.loads(bytes(blob).decode())
        if kind == "hook":
            root = os.path.realpath(os.path.join(os.path.dirname(self.path), POLICY_DIR))
            full = os.path.realpath(os.path.join(root, bytes(blob).decode()))
            if os.path.commonpath([root, full]) != root:
                raise ValueError(f"policy path {bytes(blob).decode()!r} leaves {root!r}")
            loader = getattr(self._oracle, "load_policy", None)
            return loader(full) if callable(loader) else full
        raise ValueError(f"unknown policy kind {kind!r}")

    _COLUMNS = "key, solution_values, stderr, policy_kind, policy, info"

    def _query(self, sql, args=()):
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._corrupt("cannot be read", exc) from None

    def get(self, w):
        """The stored solution for ``w``, or ``None``."""
        rows = self._query(f"SELECT {self._COLUMNS} FROM results WHERE key = ?", (self._key(w),))
        return self._solution(rows[0]) if rows else None

    def solutions(self, keys=None):
        """Stored results as a dict ``{weight bytes: Solution}``: all of them (one query), or
        those among ``keys`` (weight bytes) that are stored."""
        if keys is None:
            rows = self._query(f"SELECT {self._COLUMNS} FROM results")
        else:
            keys, rows = list(keys), []
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                rows += self._query(f"SELECT {self._COLUMNS} FROM results WHERE key IN ({marks})", chunk)
        return {bytes(r[0]): self._solution(r) for r in rows}

    def items(self):
        """All ``(weight, solution)`` pairs in the order they arrived."""
        rows = self._query(f"SELECT {self._COLUMNS} FROM results ORDER BY seq")
        return [(np.frombuffer(bytes(r[0]), dtype=np.float64).copy(), self._solution(r)) for r in rows]

    def __len__(self):
        return self._query("SELECT COUNT(*) FROM results")[0][0]

    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None
        if getattr(self, "_lock", None) is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        n = len(self) if self._db is not None else "closed"
        return f"RunStore({self.path!r}, n={n})"


def check_stored(oracle, w, solution, where="the run store"):
    """Check a stored ``solution`` for ``w`` as a fresh oracle result is checked: values (and
    stderr) of shape ``(oracle.d,)``, finite, values in ``oracle.value_range``.  Raises
    :class:`StoreCorruptError` naming the store and the weight."""
    from .tolerances import RANGE_ATOL

    d = getattr(oracle, "d", None)
    lo, hi = getattr(oracle, "value_range", None) or (-np.inf, np.inf)  # checked oracles declare one
    v, se = solution.values, solution.stderr
    problem = None
    if d is not None and v.shape != (d,):
        problem = f"values of shape {v.shape}, expected ({d},)"
    elif not np.all(np.isfinite(v)):
        problem = f"non-finite values {v.tolist()}"
    elif v.size and (v.min() < lo - RANGE_ATOL or v.max() > hi + RANGE_ATOL):
        problem = f"values {v.tolist()} outside the oracle's range [{lo:g}, {hi:g}]"
    elif se is not None and (se.shape != v.shape or not np.all(np.isfinite(se)) or se.min() < 0):
        problem = f"stderr {se.tolist()} (must be finite, >= 0, one per value)"
    if problem is not None:
        raise StoreCorruptError(
            f"{where} holds a result that fails the oracle checks at w = {np.asarray(w).tolist()}: {problem}; "
            f"the file was altered or damaged. Move it away and rerun to recompute, or use another run directory."
        )
    return solution


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
        inner = getattr(oracle, "oracle", oracle)  # the hooks live on the oracle a CheckedOracle wraps
        with RunStore(os.fspath(store), oracle.fingerprint(), params, oracle=inner) as opened:
            yield opened
    else:
        raise TypeError(f"`store` must be None, a path or a RunStore; got {type(store).__name__}.")

