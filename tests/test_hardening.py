"""Issue #12, hardening: one test (or more) per row.  Files on disk are untrusted data, every bad
input gets a specific error, and nothing computed so far is lost.

Planted payloads are harmless: they would only create a marker file in ``tmp_path``, and each
test asserts that the marker was NOT created.
"""

import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import palmopt
from palmopt import Portfolio, bounds, lattice, nets
from palmopt.cli import main
from palmopt.executors import CallTimeout, PoolExecutor, SerialExecutor, run_calls
from palmopt.oracle import OracleError, Solution, as_oracle, checked
from palmopt.store import RunLock, RunStore, StoreCorruptError, StoreLockedError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RANDOM_RUN = ["run", "--oracle", "random", "--oracle-arg", "n_states=4", "--eps", "0.3", "--quiet"]


class _Plant:
    """Unpickling this creates ``path`` (the harmless stand-in for arbitrary code)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _rows(run_dir):
    path = os.path.join(run_dir, "store.sqlite")
    if not os.path.exists(path):
        return 0
    try:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.Error:
        return 0


def _communicate(proc, timeout, group=True):
    """``proc.communicate(timeout=...)``; on a timeout the process (group) is killed, so that
    nothing is left running, and the test fails."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.communicate()
        pytest.fail(f"the process did not exit within {timeout} s")


def _one_line_error(err):
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- row 1: a run store is never unpickled ---------------------------------------------------------
def test_row1_a_legacy_pickle_store_is_refused_and_never_unpickled(tmp_path, capsys):
    run, marker = tmp_path / "run", tmp_path / "PWNED"
    run.mkdir()
    with sqlite3.connect(run / "store.sqlite") as db:  # the old schema: a pickled policy per row
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("CREATE TABLE results (seq INTEGER PRIMARY KEY AUTOINCREMENT, key BLOB UNIQUE, weight TEXT, "
                   "solution_values BLOB, policy BLOB, info TEXT)")  # fmt: skip
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("fingerprint", "x"), ("params", "{}")])
        w = np.array([1.0, 0.0, 0.0])
        db.execute("INSERT INTO results (key, weight, solution_values, policy, info) VALUES (?, ?, ?, ?, ?)",
                   (w.tobytes(), "[1, 0, 0]", np.zeros(3).tobytes(), pickle.dumps(_Plant(str(marker))), "{}"))  # fmt: skip
    assert main(RANDOM_RUN + ["--out", str(run)]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert "store.sqlite" in err and "pickled policies" in err and "never read" in err
    assert not marker.exists()


def test_row1_a_planted_row_in_a_current_store_is_never_unpickled(tmp_path):
    marker = tmp_path / "PWNED"
    oracle = checked(as_oracle(lambda w: w, d=2, name="identity"))
    W = np.array([[1.0, 0.0], [0.0, 1.0]])
    with RunStore(tmp_path, oracle.fingerprint(), {}) as store:
        store.put(W[0], Solution(values=W[0], policy=np.arange(3)))
    payload = pickle.dumps(np.array([_Plant(str(marker))], dtype=object))
    for kind, blob in [
        ("array", b'{"dtype": "|O", "shape": [1]}\n' + payload),  # an object array: refused by its dtype
        ("array", b'{"dtype": "<i8", "shape": [1000]}\n' + payload),  # bytes that do not match the shape
        ("npy", payload),  # no such kind
        ("pickle", pickle.dumps(_Plant(str(marker)))),
    ]:
        with sqlite3.connect(tmp_path / "store.sqlite") as db:
            db.execute("UPDATE results SET policy_kind = ?, policy = ?", (kind, blob))
        with RunStore(tmp_path, oracle.fingerprint(), {}) as store:
            with pytest.raises(StoreCorruptError, match=r"store\.sqlite.*damaged row"):
                run_calls(oracle, W, store=store, progress=False)
    assert not marker.exists()


def test_row1_policies_are_stored_as_data_and_dropped_with_a_warning(tmp_path):
    with RunStore(tmp_path, "fp", {}) as store:
        store.put(np.array([1.0, 0.0]), Solution(values=[0.1, 0.2], policy=np.arange(4), stderr=[0.01, 0.02]))
        store.put(np.array([0.0, 1.0]), Solution(values=[0.3, 0.4], policy={"adapter": "dir/a", "step": 3}))
        with pytest.warns(RuntimeWarning, match="cannot store policies of type object.*policy=None"):
            store.put(np.array([0.5, 0.5]), Solution(values=[0.5, 0.6], policy=object()))
    with RunStore(tmp_path, "fp", {}) as store:
        a, b, c = (store.get(np.array(w)) for w in ([1.0, 0.0], [0.0, 1.0], [0.5, 0.5]))
    np.testing.assert_array_equal(a.policy, np.arange(4))
    np.testing.assert_array_equal(a.stderr, [0.01, 0.02])
    assert b.policy == {"adapter": "dir/a", "step": 3} and b.stderr is None
    assert c.policy is None and c.values.tolist() == [0.5, 0.6]


def test_row1_policies_through_the_oracle_hooks_resume(tmp_path):
    from oracles.tabular.instances import random_momdp

    mdp = random_momdp(4, 3, 3, rng=0)
    fresh = palmopt.palm(mdp, 0.3, store=str(tmp_path), progress=False)
    resumed = palmopt.palm(mdp, 0.3, store=str(tmp_path), progress=False)
    assert resumed.info["n_new_calls"] == 0
    for a, b in zip(fresh.policies, resumed.policies):
        np.testing.assert_array_equal(a, b)


# -- row 2: certify never imports what run.json names ----------------------------------------------
def test_row2_certify_never_imports_the_oracle_that_run_json_names(tmp_path, capsys):
    run, marker = tmp_path / "run", tmp_path / "PWNED"
    assert main(RANDOM_RUN + ["--out", str(run)]) == 0
    manifest = json.loads((run / "run.json").read_text())
    manifest["oracle"] = {"name": "subprocess:getoutput", "args": {"cmd": f"touch {marker}"}}
    (run / "run.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["certify", str(run)]) == 2
    err = _one_line_error(capsys.readouterr().err)
    assert "'subprocess:getoutput'" in err and "never imports" in err and "--trust-run-config" in err
    assert main(["certify", str(run), "--oracle", "os:system"]) == 2  # another name than the run's: refused too
    assert "not --oracle 'os:system'" in capsys.readouterr().err
    assert not marker.exists()


def test_row2_a_module_oracle_given_again_or_trusted_is_certified(tmp_path, capsys):
    run = tmp_path / "run"
    cmd = ["run", "--oracle", "tests.slow_oracle:make", "--eps", "0.4", "--quiet", "--out", str(run)]
    assert main(cmd) == 0
    assert main(["certify", str(run)]) == 2
    assert main(["certify", str(run), "--oracle", "tests.slow_oracle:make", "--json"]) == 0
    assert main(["certify", str(run), "--trust-run-config", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert json.loads(out[-1])["holds"]


# -- row 3: manifest paths stay inside the portfolio -----------------------------------------------
class _HookRecorder:
    """An oracle's policy hooks that record every path they are asked to read."""

    def __init__(self):
        self.read = []

    def save_policy(self, policy, directory):
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"p{int(policy[0])}.npy")
        np.save(path, np.asarray(policy), allow_pickle=False)
        return path

    def load_policy(self, path):
        self.read.append(path)
        return np.load(path, allow_pickle=False)


def _hooked_portfolio(k=2):
    W = np.eye(2) if k == 2 else nets.uniform(2, k)
    return Portfolio(values=W, weights=W, policies=[np.array([i]) for i in range(k)])


@pytest.mark.parametrize("bad", ["../outside.npy", "/etc/hostname", "policies/../../outside.npy"])
def test_row3_load_refuses_policy_paths_outside_the_directory(tmp_path, bad):
    (tmp_path / "outside.npy").write_bytes(b"secret")
    hooks = _HookRecorder()
    path = _hooked_portfolio().save(tmp_path / "p", oracle=hooks)
    manifest = json.loads((tmp_path / "p" / "portfolio.json").read_text())
    manifest["policies"][1] = {"path": bad}
    (tmp_path / "p" / "portfolio.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"portfolio\.json.*policy 1 path .* leaves the portfolio directory"):
        Portfolio.load(path, oracle=hooks)
    assert hooks.read == [os.path.realpath(tmp_path / "p" / "policies" / "p0.npy")]  # only the inside one


def test_row3_a_symlink_out_of_the_directory_is_refused(tmp_path):
    hooks = _HookRecorder()
    path = _hooked_portfolio().save(tmp_path / "p", oracle=hooks)
    os.remove(tmp_path / "p" / "policies" / "p1.npy")
    (tmp_path / "elsewhere.npy").write_bytes(b"x")
    os.symlink(tmp_path / "elsewhere.npy", tmp_path / "p" / "policies" / "p1.npy")
    with pytest.raises(ValueError, match="leaves the portfolio directory"):
        Portfolio.load(path, oracle=hooks)


# -- row 5: stored values are checked again on resume ------------------------------------------------
@pytest.mark.parametrize(
    "values,stderr,match",
    [
        ([2.0, 0.5], None, r"outside the oracle's range \[0, 1\]"),
        ([np.nan, 0.5], None, "non-finite values"),
        ([0.5, 0.5, 0.5], None, "differ in length"),
        ([0.5, 0.5], [-0.1, 0.0], r"stderr \[-0\.1, 0\.0\]"),
        ([0.5, 0.5], [np.inf, 0.0], "stderr"),
    ],
)
def test_row5_values_read_back_are_checked_like_fresh_ones(tmp_path, values, stderr, match):
    oracle = checked(as_oracle(lambda w: w, d=2, name="identity"))
    W = np.array([[0.25, 0.75], [1.0, 0.0]])
    with RunStore(tmp_path, oracle.fingerprint(), {}) as store:
        store.put(W[0], Solution(values=[0.75, 0.25]))
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        blob = None if stderr is None else np.array(stderr, dtype=float).tobytes()
        db.execute("UPDATE results SET solution_values = ?, stderr = ?", (np.array(values, dtype=float).tobytes(), blob))
    with RunStore(tmp_path, oracle.fingerprint(), {}) as store:
        with pytest.raises(StoreCorruptError, match=match) as info:
            run_calls(oracle, W, store=store, progress=False)
    assert "store.sqlite" in str(info.value) and "0.25" in str(info.value)


# -- rows 6 and 7: bounded work, no OverflowError ------------------------------------------------------
@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: nets.cover(3, 0.1, 1e-17), "delta=1e-17 is too small"),
        (lambda: nets.cover(3, 1e-9), "eps=1e-09 is too small"),
        (lambda: nets.cover(2, 5e-324, 0.5), "is too small"),
        (lambda: nets.cover(3, 1e-6), "levels per coordinate"),
        (lambda: nets.cover(3, 1e-7, 0.5), "levels per coordinate"),
        (lambda: bounds.net_size(3, 2e-6), "levels per coordinate"),
        (lambda: bounds.levels(4, 0.3, 1e-300), "too small"),
        (lambda: nets.cover(3, 0.1, 1e-17, kind="additive"), r"8\.88e\+33 points"),
        (lambda: nets.cover(2, 0.1, 5e-324, kind="additive"), "resolution"),
        (lambda: nets.cover(200, 0.1), r"at most 6\.55e\+373"),
        (lambda: bounds.net_size(100, 0.001), r"about 10\^393\.9 steps"),
        (lambda: nets.cover(10**6, 0.1), "more than 10,000 digits"),
        (lambda: nets.cover(10**6, 0.1, kind="additive"), "more than 10"),
        (lambda: bounds.upper_bound(10**5, 0.01), "more than 10,000 digits"),
        (lambda: lattice.size(10**5, 10**5), "digits"),
        (lambda: lattice.finest(1, 10), "d=1"),
        (lambda: nets.uniform(3, 10**6), "nets.random"),
    ],
)
def test_rows6_7_size_computations_refuse_fast_and_clearly(call, match):
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        call()
    assert time.perf_counter() - t0 < 1.0


def test_row7_huge_integers_are_formatted_without_float():
    assert bounds.fmt_int(17776) == "17,776"
    assert bounds.fmt_int(10**5000 * 7 + 1) == "7.00e+5000"  # past float and past str()'s digit limit
    assert bounds.fmt_int(999_999_999) == "9.99e+8"


def test_rows6_7_cli_cover_refuses_in_one_line(capsys):
    assert main(["cover", "--d", "200", "--eps", "0.1"]) == 2
    assert "at most 6.55e+373" in _one_line_error(capsys.readouterr().err)
    assert main(["cover", "--d", "3", "--eps", "0.1", "--delta", "1e-17"]) == 2
    assert "too small" in _one_line_error(capsys.readouterr().err)


# -- rows 8 and 9: Ctrl-C ------------------------------------------------------------------------------
@pytest.mark.parametrize("executor", ["serial", "thread", "process"])
def test_row8_ctrl_c_stops_promptly_and_stores_every_finished_call(tmp_path, executor):
    run, log = str(tmp_path / "run"), str(tmp_path / "calls.log")
    cmd = [sys.executable, "-m", "palmopt.cli", "run", "--oracle", "tests.slow_oracle:make",
           "--oracle-arg", "delay=0.005", "--oracle-arg", f"log={log}", "--eps", "0.1", "--out", run,
           "--quiet", "--executor", executor]  # fmt: skip
    cmd += ["--workers", "2"] if executor != "serial" else []
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    deadline = time.time() + 60
    while _rows(run) < 100 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.fail(proc.communicate()[1])
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    t0 = time.time()
    _, err = _communicate(proc, 30)
    assert time.time() - t0 < 8, f"took {time.time() - t0:.1f} s to stop"
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    with open(log) as f:
        finished = f.read().split()
    with sqlite3.connect(os.path.join(run, "store.sqlite")) as db:
        stored = {bytes(k).hex() for (k,) in db.execute("SELECT key FROM results")}
    assert stored <= set(finished)
    in_flight = 1 if executor == "serial" else 2 + 1  # the workers' calls and the one queued for them
    assert len(set(finished) - stored) <= in_flight, "more than the calls in flight were lost"
    assert len(set(finished)) < 17776 // 2  # it did stop early (the net has thousands of points)


def test_row8_ctrl_c_does_not_wait_for_long_calls_in_a_thread_pool(tmp_path):
    run = str(tmp_path / "run")
    cmd = [sys.executable, "-m", "palmopt.cli", "run", "--oracle", "tests.slow_oracle:make", "--oracle-arg",
           "delay=30", "--eps", "0.3", "--out", run, "--quiet", "--executor", "thread", "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(run, "store.sqlite")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the two workers are inside their 30 s calls
    os.killpg(proc.pid, signal.SIGINT)
    t0 = time.time()
    _, err = _communicate(proc, 40)
    assert time.time() - t0 < 8 and proc.returncode == 130 and "interrupted" in err, err


def test_row9_ctrl_c_in_the_library_is_a_keyboard_interrupt_not_an_oracle_error(tmp_path):
    code = (
        "import palmopt, sys\n"
        "from tests.slow_oracle import SlowOracle\n"
        f"palmopt.palm(SlowOracle(delay=0.005, log={str(tmp_path / 'log')!r}), 0.1, store={str(tmp_path)!r}, "
        "progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while _rows(str(tmp_path)) < 50 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = _communicate(proc, 30, group=False)
    assert err.strip().splitlines()[-1] == "KeyboardInterrupt", err
    assert "OracleError" not in err and proc.returncode != 0
    assert _rows(str(tmp_path)) >= 50


def test_row8_an_interrupt_keeps_results_a_pool_finished_ahead_of_the_loop(tmp_path):
    W = np.column_stack([np.linspace(0, 1, 40), 1 - np.linspace(0, 1, 40)])

    class Fast:
        d = 2

        def fingerprint(self):
            return "fast"

        def __call__(self, w):
            return Solution(values=w[::-1])

    class InterruptingStore(RunStore):
        """Ctrl-C while persisting the second batch of results: by then the pool is far ahead."""

        interrupted = False

        def _maybe_interrupt(self):
            if len(self) >= 1 and not self.interrupted:
                self.interrupted = True
                time.sleep(0.2)  # the pool finishes the rest meanwhile
                raise KeyboardInterrupt

        def put(self, w, solution):
            self._maybe_interrupt()
            super().put(w, solution)

        def put_many(self, pairs):
            self._maybe_interrupt()
            super().put_many(pairs)

    with InterruptingStore(tmp_path, "fast", {}) as store:
        with pytest.raises(KeyboardInterrupt):
            run_calls(checked(Fast()), W, executor="thread", store=store, progress=False)
        assert len(store) == 40  # every finished call, the one whose put was interrupted included


# -- row 10: a refused run writes nothing -------------------------------------------------------------
def test_row10_a_refused_run_writes_nothing_and_the_corrected_run_proceeds(tmp_path, capsys):
    out = tmp_path / "X"
    base = ["run", "--oracle", "random", "--oracle-arg", "n_states=4", "--quiet", "--out", str(out)]
    assert main(base + ["--eps", "1"]) == 2
    assert "`eps` must be in (0, 1); got 1.0" in _one_line_error(capsys.readouterr().err)
    assert not out.exists()
    assert main(base + ["--eps", "0.001"]) == 2  # refused inside palm (the net is too large): no results
    assert "max_points" in capsys.readouterr().err
    assert not out.exists()
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"oracle": {"name": "demo", "args": {}}, "eps": 0.5}))  # no results
    assert main(base + ["--eps", "0.3"]) == 0
    assert json.loads((out / "run.json").read_text())["eps"] == 0.3
    assert main(base + ["--eps", "0.2"]) == 2  # now the directory holds results of another run
    assert "holds a run with other settings" in capsys.readouterr().err


# -- row 11: typed oracle arguments --------------------------------------------------------------------
@pytest.mark.parametrize(
    "arg,message",
    [
        ("d=2.5", "oracle argument d='2.5' for 'random': must be an integer."),
        ("d=abc", "oracle argument d='abc' for 'random': must be an integer."),
        ("gamma=x", "oracle argument gamma='x' for 'random': must be a number."),
        ("gamma=inf", "must be a finite number"),
        ("foo=1", "unknown oracle argument 'foo' for 'random'; valid: d, gamma, n_actions, n_states, seed."),
        ("novalue", "oracle arguments must look like key=value; got 'novalue'."),
    ],
)
def test_row11_oracle_arguments_are_parsed_by_their_declared_types(tmp_path, capsys, arg, message):
    out = tmp_path / "X"
    assert main(["run", "--oracle", "random", "--oracle-arg", arg, "--eps", "0.3", "--out", str(out)]) == 2
    assert message in _one_line_error(capsys.readouterr().err)
    assert not out.exists()


def test_row11_typed_values_reach_the_factory():
    from oracles.registry import check_args, from_spec, parse_args

    assert parse_args(["d=2", "gamma=0.5", "seed=7"], "random") == {"d": 2, "gamma": 0.5, "seed": 7}
    assert from_spec("random", **parse_args(["d=2", "n_states=3"], "random")).d == 2
    assert parse_args(["delay=0.5", "log=a=b"], "tests.slow_oracle:make") == {"delay": 0.5, "log": "a=b"}
    with pytest.raises(ValueError, match="must be of type int"):
        check_args("random", {"d": 2.0})
    with pytest.raises(ValueError, match="given twice"):
        parse_args(["d=2", "d=3"], "random")


# -- row 12: every anticipated error is one line with the right exit code ------------------------------
def test_row12_anticipated_errors_print_one_line(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("")
    cases = [
        (RANDOM_RUN + ["--out", str(afile / "run")], 2, "is a file, not a directory"),
        (["run", "--oracle", "no_such_module_x:make", "--eps", "0.3", "--out", str(tmp_path / "a")], 2,
         "cannot import module 'no_such_module_x'"),
        (["run", "--oracle", "tests.slow_oracle:make", "--oracle-arg", "fail_at=3", "--eps", "0.3", "--quiet",
          "--out", str(tmp_path / "b")], 1, "simulated trainer crash"),
        (["cover", "--d", "2", "--eps", "0.1", "--out", str(afile / "net.npz")], 2, "does not exist"),
        (["run", "--oracle", "random", "--eps", "0.3", "--executor", "thread", "--timeout", "1",
          "--out", str(tmp_path / "c")], 2, "--timeout cannot be enforced with --executor thread"),
        (["certify", str(tmp_path / "nothing")], 2, "no run directory"),
    ]  # fmt: skip
    for argv, code, text in cases:
        assert main(argv) == code, argv
        assert text in _one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()

    palm_module = sys.modules["palmopt.palm"]  # (the attribute palmopt.palm is the function)

    for exc, code, text in [
        (PermissionError(13, "Permission denied", str(tmp_path / "ro")), 1, "Permission denied"),
        (sqlite3.OperationalError("disk I/O error"), 1, "disk I/O error"),
        (MemoryError(), 1, "out of memory"),
        (OracleError("the trainer died", None), 1, "the trainer died"),
        (StoreCorruptError("store broken"), 1, "store broken"),
    ]:

        def boom(*args, exc=exc, **kwargs):
            raise exc

        monkeypatch.setattr(palm_module, "palm", boom)
        assert main(RANDOM_RUN + ["--out", str(tmp_path / "d")]) == code
        assert text in _one_line_error(capsys.readouterr().err)
    with pytest.raises(StoreCorruptError):  # --debug: the traceback (the last error planted above)
        main(["--debug"] + RANDOM_RUN + ["--out", str(tmp_path / "d")])
    with pytest.raises(StoreCorruptError):
        main(RANDOM_RUN + ["--out", str(tmp_path / "d"), "--debug"])


# -- row 13: corrupt or foreign stores -----------------------------------------------------------------
def test_row13_corrupt_and_foreign_store_files_are_named(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "store.sqlite").write_bytes(b"this is not a database at all" * 100)
    assert main(RANDOM_RUN + ["--out", str(run)]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert str(run / "store.sqlite") in err and "not an SQLite database" in err and "Move the file away" in err

    other = tmp_path / "other"
    other.mkdir()
    with sqlite3.connect(other / "store.sqlite") as db:
        db.execute("CREATE TABLE photos (name TEXT)")
    assert main(RANDOM_RUN + ["--out", str(other)]) == 1
    assert "not a palmopt run store (tables ['photos'])" in _one_line_error(capsys.readouterr().err)
    with sqlite3.connect(other / "store.sqlite") as db:  # left untouched
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["photos"]


def test_row13_a_nan_in_the_store_is_reported_as_such(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(RANDOM_RUN + ["--out", str(run)]) == 0
    with sqlite3.connect(run / "store.sqlite") as db:
        db.execute("UPDATE results SET solution_values = ? WHERE seq = 4", (np.array([np.nan, 0.5, 0.5]).tobytes(),))
    capsys.readouterr()
    assert main(RANDOM_RUN + ["--out", str(run)]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert "store.sqlite" in err and "non-finite values [nan, 0.5, 0.5]" in err and "covered by no column" not in err


# -- row 14: one run per directory at a time ------------------------------------------------------------
def _hold_lock(path, seconds):
    code = (
        "import sys, time\nfrom palmopt.store import RunLock\n"
        f"lock = RunLock({str(path)!r}).acquire()\nprint('locked', flush=True)\ntime.sleep({seconds})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_row14_a_second_run_into_the_same_directory_is_refused_or_waits(tmp_path, capsys):
    run = tmp_path / "run"
    holder = _hold_lock(run, 30)
    try:
        assert main(RANDOM_RUN + ["--out", str(run)]) == 1
        err = _one_line_error(capsys.readouterr().err)
        assert f"in use by process {holder.pid}" in err and "--wait" in err
        assert not (run / "run.json").exists()
        with pytest.raises(StoreLockedError) as info:
            RunStore(run, "fp", {})
        assert info.value.pid == holder.pid
        threading.Timer(1.0, holder.kill).start()
        t0 = time.time()
        assert main(RANDOM_RUN + ["--out", str(run), "--wait"]) == 0  # waits for the holder, then runs
        assert time.time() - t0 >= 0.9
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_row14_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (run / "store.sqlite.lock").write_text(dead.stdout)  # its owner is gone: no lock is held
    assert main(RANDOM_RUN + ["--out", str(run)]) == 0
    with RunLock(run), RunLock(run):  # re-entrant within one process
        pass


# -- row 15: per-call timeouts --------------------------------------------------------------------------
class _Hang:
    d = 2

    def fingerprint(self):
        return "hang"

    def __call__(self, w):
        if w[0] == 0.5:
            time.sleep(60)
        return Solution(values=w[::-1])


def test_row15_a_hanging_call_times_out_with_the_serial_executor(tmp_path):
    W = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.25, 0.75]])
    t0 = time.perf_counter()
    with RunStore(tmp_path, "hang", {}) as store:
        with pytest.raises(CallTimeout, match=r"w = \[0\.5, 0\.5\] did not finish within the timeout of 0\.5 s"):
            run_calls(checked(_Hang()), W, executor=SerialExecutor(timeout=0.5), store=store, progress=False)
        assert len(store) == 2  # the finished calls are kept
    assert time.perf_counter() - t0 < 5
    assert isinstance(CallTimeout("x", None), OracleError)


def test_row15_a_hanging_call_times_out_in_a_process_pool(tmp_path):
    pool = PoolExecutor("process", max_workers=2, timeout=1.0)
    W = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    t0 = time.perf_counter()
    with RunStore(tmp_path, "slow", {}) as store:
        with pytest.raises(OracleError, match=r"w = \[0\.5, 0\.5\] did not finish within the timeout of 1 s"):
            run_calls(checked(_SleepAtHalf()), W, executor=pool, store=store, progress=False)
        assert len(store) == 2
    pool.terminate()
    assert time.perf_counter() - t0 < 20


class _SleepAtHalf:  # module-level, picklable
    d = 2

    def fingerprint(self):
        return "slow"

    def __call__(self, w):
        if w[0] == 0.5:
            time.sleep(60)
        return Solution(values=w[::-1])


def test_row15_executors_that_cannot_stop_a_call_refuse_a_timeout():
    with pytest.raises(ValueError, match="thread executor cannot enforce `timeout`"):
        PoolExecutor("thread", timeout=1)
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="`timeout` must be a positive number"):
            SerialExecutor(timeout=bad)
    result = []
    thread = threading.Thread(target=lambda: result.append(pytest.raises(ValueError, SerialExecutor, timeout=1)))
    thread.start()
    thread.join()
    assert "main thread" in str(result[0].value)


# -- row 16: portfolio files --------------------------------------------------------------------------
def test_row16_a_baseline_saves_strict_json(tmp_path):
    from oracles.registry import from_spec

    p = palmopt.baselines.uniform(from_spec("random", n_states=4), 3)
    assert np.isnan(p.eps)
    p.save(tmp_path / "p")

    def no_constants(name):
        raise AssertionError(f"{name} in the manifest")

    json.loads((tmp_path / "p" / "portfolio.json").read_text(), parse_constant=no_constants)
    q = Portfolio.load(tmp_path / "p")
    assert np.isnan(q.eps) and np.isnan(q.delta) and q.method == "uniform"


def test_row16_saving_over_a_larger_portfolio_leaves_no_stale_policy_files(tmp_path):
    hooks = _HookRecorder()
    _hooked_portfolio(5).save(tmp_path / "p", oracle=hooks)
    assert len(os.listdir(tmp_path / "p" / "policies")) == 5
    _hooked_portfolio(2).save(tmp_path / "p", oracle=hooks)
    assert sorted(os.listdir(tmp_path / "p" / "policies")) == ["p0.npy", "p1.npy"]
    assert len(Portfolio.load(tmp_path / "p", oracle=hooks)) == 2
    assert sorted(os.listdir(tmp_path)) == ["p"]  # no temporary directories left behind
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match="not a portfolio"):
        _hooked_portfolio(2).save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_row16_a_failed_save_leaves_the_previous_portfolio_intact(tmp_path):
    hooks = _HookRecorder()
    _hooked_portfolio(5).save(tmp_path / "p", oracle=hooks)

    class DiskFull(_HookRecorder):
        def save_policy(self, policy, directory):
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        _hooked_portfolio(2).save(tmp_path / "p", oracle=DiskFull())
    assert len(Portfolio.load(tmp_path / "p", oracle=hooks)) == 5
    assert sorted(os.listdir(tmp_path)) == ["p"]


def test_row16_a_certificate_with_non_finite_fields_round_trips(tmp_path):
    T = np.eye(2)
    cert = palmopt.certify(T, T)
    p = Portfolio(values=T, weights=T, certificate=cert)
    p.save(tmp_path / "p")
    json.loads((tmp_path / "p" / "portfolio.json").read_text(), parse_constant=lambda c: 1 / 0)
    q = Portfolio.load(tmp_path / "p")
    assert q.certificate.holds == cert.holds and q.certificate.eps_star == cert.eps_star


# -- row 17: numba's cache on a read-only install -------------------------------------------------------
NUMBA_PROBE = r"""
import os, sys, tempfile
import numba.core.caching as c
tmp = os.path.realpath(tempfile.gettempdir())
def guarded(orig):
    def ensure(self):  # a read-only install and an unwritable HOME: only the temporary directory is writable
        if not os.path.realpath(self.get_cache_path()).startswith(tmp):
            raise OSError(30, "Read-only file system (simulated)")
        return orig(self)
    return ensure
for cls in {c._CacheLocator, c.UserWideCacheLocator, *c.CacheImpl._locator_classes}:
    if "ensure_cache_path" in vars(cls):
        cls.ensure_cache_path = guarded(vars(cls)["ensure_cache_path"])
if sys.argv[1] == "plain":
    from numba import njit
    @njit(cache=True)
    def g(x):
        return x + 1
    print(g(1))
else:
    import palmopt, palmopt._kernels as k
    print(k.CACHE, os.environ.get("NUMBA_CACHE_DIR"), len(palmopt.lattice.points(3, 4)))
"""


def test_row17_import_works_when_no_numba_cache_location_is_writable(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(NUMBA_PROBE)
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "HOME": "/nonexistent"}
    env.pop("NUMBA_CACHE_DIR", None)
    plain = subprocess.run([sys.executable, str(probe), "plain"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert plain.returncode != 0 and "no locator available" in plain.stderr  # the simulation bites numba
    ours = subprocess.run([sys.executable, str(probe), "palmopt"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert ours.returncode == 0, ours.stderr
    cache, where, size = ours.stdout.split()
    assert cache == "True" and where.startswith(str(tmp_path / "tmp")) and size == str(lattice.size(3, 4))
    assert (os.stat(where).st_mode & 0o777) == 0o700


# -- row 18: durability -----------------------------------------------------------------------------------
def test_row18_the_store_syncs_in_wal_mode(tmp_path):
    with RunStore(tmp_path, "fp", {}) as store:
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] in (1, 2)  # NORMAL or FULL, never OFF
        store.put_many([(np.array([1.0, 0.0]), Solution(values=[0.0, 1.0]))] * 3)
        assert len(store) == 1


# -- row 19: an unpicklable oracle with the process executor ---------------------------------------------
def test_row19_an_unpicklable_oracle_with_the_process_executor_says_so():
    oracle = checked(as_oracle(lambda w: w, d=2, name="local-lambda"))
    with pytest.raises(TypeError, match="process executor .* cannot be pickled .* executor='thread'") as info:
        run_calls(oracle, np.eye(2), executor="process", progress=False)
    assert "oracle call failed" not in str(info.value)
