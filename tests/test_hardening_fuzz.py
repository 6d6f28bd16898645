"""Issue #12, hardening: fuzzing the command line and Portfolio.load.

Every input either works or fails with one of the anticipated errors (exit 2 for usage, 1 for
run-time, argparse's SystemExit(2)); never a traceback, and Portfolio.load never reads a file
outside its directory.
"""

import copy
import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from palmopt import Portfolio
from palmopt.cli import main

from .test_hardening import _HookRecorder

FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip

NUMBERS = ["0.5", "0.9", "1", "0", "-0.1", "nan", "inf", "abc", "1e-9", "5e-324", "", "2.5", "1e-17"]
DIMS = ["1", "2", "3", "0", "-1", "2.5", "200", "1000000", "x", ""]
ORACLES = ["random", "demo", "many-policies", "nope", "no_such_mod_q:f", "palmopt:nothing", ":", "a:", "tests.slow_oracle:make"]
ORACLE_ARGS = ["d=2", "d=2.5", "foo=1", "n_states=3", "x", "=1", "seed=-1", "gamma=0.5", "d=0", "d=", "gamma=nan",
               "delay=abc", "fail_at=2", "n_arms=4"]  # fmt: skip


def _options(pairs):
    return st.lists(st.sampled_from(pairs), max_size=4).map(lambda chosen: [t for pair in chosen for t in pair])


def _cover_argv():
    opts = _options(
        [("--d", d) for d in DIMS]
        + [("--eps", x) for x in NUMBERS]
        + [("--delta", x) for x in NUMBERS]
        + [("--kind", k) for k in ("palm", "additive", "bad")]
        + [("--max-points", m) for m in ("1", "0", "10", "x")]
        + [("--json",), ("--out", "OUT.npz")]
    )
    return opts.map(lambda o: ["cover", *o])


def _run_argv():
    opts = _options(
        [("--oracle", o) for o in ORACLES]
        + [("--oracle-arg", a) for a in ORACLE_ARGS]
        + [("--eps", x) for x in NUMBERS]
        + [("--delta", x) for x in NUMBERS[:4]]
        + [("--executor", e) for e in ("serial", "thread", "gpu")]
        + [("--timeout", t) for t in ("1", "0", "-1", "x")]
        + [("--workers", w) for w in ("1", "0", "x")]
        + [("--prune", p) for p in ("greedy", "none", "bad")]
    )
    return opts.map(lambda o: ["run", *o, "--quiet", "--out", "OUT"])


@FUZZ
@given(argv=st.one_of(_cover_argv(), _run_argv()), slot=st.integers(0, 3))
@example(argv=["cover", "--d", "200", "--eps", "0.1"], slot=0)
@example(argv=["cover", "--d", "1000000", "--eps", "0.5", "--kind", "additive"], slot=0)
@example(argv=["cover", "--d", "3", "--eps", "1e-9"], slot=0)
@example(argv=["cover", "--d", "2", "--eps", "5e-324", "--delta", "0.5"], slot=0)
@example(argv=["run", "--oracle", "random", "--oracle-arg", "d=2.5", "--eps", "0.5", "--out", "OUT"], slot=1)
@example(argv=["run", "--oracle", "random", "--oracle-arg", "d=2", "--eps", "0.5", "--quiet", "--out", "OUT"], slot=1)
@example(argv=["run", "--oracle", "tests.slow_oracle:make", "--oracle-arg", "fail_at=2", "--eps", "0.5",
               "--quiet", "--out", "OUT"], slot=2)  # fmt: skip
def test_the_cli_answers_every_argument_list_with_an_exit_code(tmp_path, capsys, argv, slot):
    out = str(tmp_path / f"out{slot}")
    argv = [out + a[3:] if a.startswith("OUT") else a for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        assert exc.code == 2, argv
        capsys.readouterr()
        return
    err = capsys.readouterr().err
    assert code in (0, 1, 2), argv
    assert "Traceback" not in err
    if code == 2 or err.strip():  # an error: exactly one line (exit 1 may also be a status that is not success)
        assert len(err.strip().splitlines()) == 1 and "error:" in err, (argv, err)


@FUZZ
@given(pairs=st.lists(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12), max_size=4),
       name=st.sampled_from(["random", "demo", "tests.slow_oracle:make", None]))  # fmt: skip
def test_oracle_argument_parsing_is_total(pairs, name):
    from oracles.registry import parse_args

    try:
        out = parse_args(pairs, name)
    except ValueError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(out, dict) and len(out) == len(pairs)
    if name == "random":
        assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in out.values())


# -- Portfolio.load on mutated manifests -------------------------------------------------------------



JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**20) | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["../x.npy", "/etc/hostname", "policies/p0.npy", "policies/../../x.npy", "values", "policy_0"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["path", "array", "handle", "x"]),
                                                                 inner, max_size=2),
    max_leaves=6,
)  # fmt: skip
KEYS = ["format", "method", "status", "eps", "delta", "n_oracle_calls", "policies", "certificate", "info"]
PATHS = ["../x.npy", "/etc/hostname", "policies/p0.npy", "policies/../../x.npy", "policies/../../../x.npy",
         "values", "weights", "policy_0", "policies", ".", ""]  # fmt: skip
#: a policy entry: mostly well-formed ({kind: value}), sometimes anything
ENTRY = st.one_of(
    st.builds(lambda k, v: {k: v}, st.sampled_from(["path", "array", "handle", "x"]), st.sampled_from(PATHS)),
    JSON,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "x.npy").write_bytes(b"outside")
    W = np.eye(3)
    Portfolio(values=W, weights=W, policies=[np.array([0]), np.array([1]), np.array([2])], eps=0.1).save(
        root / "p", oracle=_HookRecorder()
    )
    return root, json.loads((root / "p" / "portfolio.json").read_text())


@FUZZ
@given(edits=st.lists(st.one_of(st.tuples(st.sampled_from(KEYS), st.booleans(), JSON),
                                st.tuples(st.sampled_from(["policies.0", "policies.1"]), st.just(False), ENTRY)),
                      min_size=1, max_size=3))  # fmt: skip
@example(edits=[("policies.1", False, {"path": "../x.npy"})])
@example(edits=[("policies.0", False, {"path": "/etc/hostname"})])
def test_portfolio_load_on_mutated_manifests(saved, edits):
    root, original = saved
    manifest = copy.deepcopy(original)
    for key, delete, value in edits:
        if key.startswith("policies."):
            i = int(key.split(".")[1])
            if isinstance(manifest.get("policies"), list) and i < len(manifest["policies"]):
                manifest["policies"][i] = value
        elif delete:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    (root / "p" / "portfolio.json").write_text(json.dumps(manifest))
    hooks = _HookRecorder()
    try:
        p = Portfolio.load(root / "p", oracle=hooks)
    except (ValueError, FileNotFoundError) as exc:
        assert "portfolio" in str(exc)
    else:
        assert len(p) == 3
    inside = os.path.realpath(root / "p")
    assert all(os.path.commonpath([inside, os.path.realpath(r)]) == inside for r in hooks.read), hooks.read
    (root / "p" / "portfolio.json").write_text(json.dumps(original))
