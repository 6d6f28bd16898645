"""oracles.llm.experiment: strict config checks (fast) and one smoke run per shipped config (slow)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("trl", reason="oracles.llm needs the `llm` extra (torch, transformers, trl, peft)")

from oracles.llm.experiment import load_config, run  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = {name: os.path.join(ROOT, "examples", "configs", f"{name}.toml") for name in ("gsm8k", "safety", "helpful_assistants")}


def _toml(tmp_path, text, name="bad.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _with(path, old, new, tmp_path):
    with open(path) as f:
        text = f.read()
    assert old in text, old
    return _toml(tmp_path, text.replace(old, new, 1))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shipped_configs_are_valid(name):
    spec, path = load_config(CONFIGS[name])
    assert path == CONFIGS[name] and spec["experiment"]["name"] == name
    assert len(spec["rewards"]) == (3 if name == "helpful_assistants" else 2)
    assert os.path.isfile(os.path.join(ROOT, spec["data"]["smoke_path"]))


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("seed = 0", "seed = 0\nsede = 1", r"unknown key experiment\.sede \(did you mean 'seed'\?\)"),
        ('family = "qwen2"', "", r"missing required key model\.family"),
        ("eps = 0.05", 'eps = "small"', r"experiment\.eps must be float"),
        ('"soups", "mix"]', '"soups", "mx"]', r"unknown method 'mx' \(did you mean 'mix'\?\)"),
        ("max_steps = 200", "max_step = 200", r"\[grpo\]: unknown GRPOOracleConfig key\(s\): 'max_step'"),
        ('kind = "brevity"', 'kind = "shortness"', r"rewards\[1\]\.kind must be one of"),
        ("max_length = 512\n", "", r"missing required key rewards\[1\]\.max_length"),
        ('family = "qwen2"', 'family = "gpt9"', r"model\.family must be one of"),
        ("[smoke]", "[smok]", r"unknown section \[smok\] \(did you mean 'smoke'\?\)"),
        ("max_calls = 4, k = 3", "max_calls = 4, kk = 3", r"unknown key smoke\.experiment\.kk"),
        ("delta = 0.02", "delta = 1.5", r"experiment\.delta must be in \[0, 1\)"),
        ("seed = 0", "seed = 0\nbatch = 0", r"experiment\.batch must be >= 1"),
        ("seed = 0", "seed = 0\nbatch = 2.0", r"experiment\.batch must be int"),
    ],
)
def test_bad_configs_raise_one_value_error_naming_key_and_file(tmp_path, old, new, message):
    path = _with(CONFIGS["gsm8k"], old, new, tmp_path)
    with pytest.raises(ValueError, match=message) as err:
        run(path, smoke=True, out=str(tmp_path / "out"))
    assert str(err.value).startswith(path)
    assert not os.path.exists(tmp_path / "out")  # nothing was built or trained


def test_unreadable_configs(tmp_path):
    with pytest.raises(ValueError, match="no such config file"):
        load_config(str(tmp_path / "missing.toml"))
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(_toml(tmp_path, "[experiment\nname = 1"))
    with pytest.raises(ValueError, match=r"missing required section \[rewards\]"):
        load_config({"experiment": {}, "model": {}, "data": {}, "grpo": {}})


def _check_report(report, out, name):
    with open(os.path.join(out, "report.json")) as f:
        on_disk = json.load(f)
    assert on_disk["rows"] == json.loads(json.dumps(report["rows"]))
    methods = [r["method"] for r in report["rows"]]
    assert methods == ["adaptive", "palm", "uniform", "random", "soups", "mix"]
    for r in report["rows"]:
        assert r["oracle_calls"] >= 1 and r["size"] >= 1 and r["device_seconds"] > 0 and r["tokens_generated"] > 0
        cert = r["certificate"]
        assert {"kind", "holds", "eps_star", "delta_star", "assumptions"} <= set(cert)
        assert {"oracle_error", "oracle error"} & set(cert["assumptions"])  # ours, or the core's own wording
    assert report["rows"][0]["certificate"]["kind"] == "black-box"
    with open(os.path.join(out, "report.md")) as f:
        table = f.read()
    assert table.count("\n| ") == 1 + len(methods) and name in table


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_smoke_run(tmp_path, name):
    out = str(tmp_path / name)
    t0 = time.perf_counter()
    report = run(CONFIGS[name], smoke=True, out=out)
    seconds = time.perf_counter() - t0
    assert seconds < 180, f"the {name} smoke run took {seconds:.0f} s (budget: 3 min on 2 cores)"
    assert report["smoke"] and report["d"] == (3 if name == "helpful_assistants" else 2)
    _check_report(report, out, name)
    again = run(CONFIGS[name], smoke=True, out=out)  # a rerun resumes: nothing is trained again
    assert again["rows"] == report["rows"]


@pytest.mark.slow
def test_smoke_run_resumes_after_sigkill(tmp_path):
    out = str(tmp_path / "killed")
    code = (
        "import torch; torch.set_num_threads(1)\n"
        "from oracles.llm.experiment import run\n"
        f"run({CONFIGS['gsm8k']!r}, smoke=True, out={out!r})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True)
    calls = os.path.join(out, "oracle", "calls")
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            done = [d for d in os.listdir(calls)] if os.path.isdir(calls) else []
            if sum(os.path.isfile(os.path.join(calls, d, "solution.json")) for d in done) >= 2:
                break
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not os.path.isfile(os.path.join(out, "report.json"))
    stamps = {
        d: os.path.getmtime(os.path.join(calls, d, "solution.json"))
        for d in os.listdir(calls)
        if os.path.isfile(os.path.join(calls, d, "solution.json"))
    }
    assert len(stamps) >= 2
    report = run(CONFIGS["gsm8k"], smoke=True, out=out)
    _check_report(report, out, "gsm8k")
    for d, t in stamps.items():  # the calls finished before the kill were not trained again
        assert os.path.getmtime(os.path.join(calls, d, "solution.json")) == t
    assert not [d for d in os.listdir(calls) if ".tmp-" in d]  # the call in flight left nothing behind


# -- where the calls run: --executor serial | ray ------------------------------------------------

ALL_METHODS = 'methods = ["adaptive", "palm", "uniform", "random", "soups", "mix"]'


def test_executor_options_that_do_not_fit_are_refused_before_anything_is_built(tmp_path, capsys):
    from palmopt.cli import main

    out = str(tmp_path / "out")
    config = CONFIGS["gsm8k"]
    cases = [
        (["--ray-address", "auto"], "--ray-address needs --executor ray (got --executor serial)"),
        (["--executor", "serial", "--gpus-per-call", "1"], "--gpus-per-call needs --executor ray"),
        (["--executor", "ray", "--ray-address", " "], "--ray-address must name a cluster"),
        (["--executor", "ray", "--gpus-per-call", "-1"], "argument --gpus-per-call: must be >= 0 GPUs; got '-1'"),
        (["--executor", "ray", "--gpus-per-call", "nan"], "argument --gpus-per-call: must be finite"),
        (["--executor", "dask"], "argument --executor: invalid choice: 'dask'"),
    ]
    for extra, message in cases:
        try:
            code = main(["experiment", config, "--smoke", "--out", out, *extra])
        except SystemExit as exc:  # argparse's own refusals
            code = exc.code
        assert code == 2, extra
        assert message in capsys.readouterr().err, extra
    # a call launched on 2 processes needs 2 GPUs of its own
    two = _with(config, "gradient_checkpointing = true\n", "gradient_checkpointing = true\nprocesses = 2\n", tmp_path)
    assert main(["experiment", two, "--smoke", "--out", out, "--executor", "ray", "--gpus-per-call", "1"]) == 2
    assert "`gpus_per_call` (1) is below [grpo] processes (2)" in capsys.readouterr().err
    # the same checks in the Python API
    with pytest.raises(ValueError, match=r"`ray_address` needs executor='ray'; got executor=None"):
        run(config, smoke=True, out=out, ray_address="auto")
    with pytest.raises(ValueError, match=r"`executor` must be 'serial' or 'ray' when given by name; got 'dask'"):
        run(config, smoke=True, out=out, executor="dask")
    with pytest.raises(TypeError, match=r"`executor` must be None, 'serial', 'ray' or an executor"):
        run(config, smoke=True, out=out, executor=4)
    with pytest.raises(ValueError, match=r"`gpus_per_call` must be a finite number >= 0; got -0.5"):
        run(config, smoke=True, out=out, executor="ray", gpus_per_call=-0.5)
    assert not os.path.exists(out)  # nothing was built or trained


@pytest.mark.slow
def test_smoke_run_on_ray_workers_then_a_serial_rerun_repeats_no_call(tmp_path):
    ray = pytest.importorskip("ray", reason="--executor ray needs the `ray` extra")
    assert not ray.is_initialized()
    path = _with(CONFIGS["gsm8k"], ALL_METHODS, 'methods = ["adaptive", "uniform"]\nbatch = 2', tmp_path)
    out = str(tmp_path / "ray")
    t0 = time.perf_counter()
    report = run(path, smoke=True, out=out, executor="ray")  # a local Ray instance, no GPU: num_gpus=0
    seconds = time.perf_counter() - t0
    assert not ray.is_initialized()  # the instance it started is shut down
    assert report["executor"].startswith("RayExecutor(num_cpus=1, num_gpus=0,"), report["executor"]
    assert [r["method"] for r in report["rows"]] == ["adaptive", "uniform"]
    for r in report["rows"]:
        assert r["oracle_calls"] >= 1 and r["size"] >= 1 and r["device_seconds"] > 0 and r["tokens_generated"] > 0
    assert report["rows"][0]["oracle_calls"] >= 2  # the first round of batch = 2: both unit weights
    # every call was made in a Ray worker and written to the oracle's run directory
    calls = os.path.join(out, "oracle", "calls")
    logged = []
    for method in ("adaptive", "uniform"):
        with open(os.path.join(out, "methods", f"{method}.calls.jsonl")) as f:
            logged += [json.loads(line) for line in f]
    assert len(logged) == report["rows"][0]["oracle_calls"] + 3  # uniform: k = 3 weights (smoke), all logged
    for rec in logged:
        assert rec["pid"] != os.getpid()
        assert os.path.dirname(rec["policy"]).startswith(calls + os.sep)
        assert os.path.isfile(os.path.join(os.path.dirname(rec["policy"]), "solution.json"))
    stamps = {d: os.path.getmtime(os.path.join(calls, d, "solution.json")) for d in os.listdir(calls)}
    assert len(stamps) == len({tuple(rec["w"]) for rec in logged})  # calls at equal weights are shared
    # a serial rerun from scratch of both methods answers every call from the stores
    for method in ("adaptive", "uniform"):
        os.remove(os.path.join(out, "methods", f"{method}.json"))
    again = run(path, smoke=True, out=out)
    assert again["executor"] == "serial"
    keys = ("method", "oracle_calls", "size", "weights", "values", "device_seconds", "tokens_generated")
    assert [[r[k] for k in keys] for r in again["rows"]] == [[r[k] for k in keys] for r in report["rows"]]
    assert {d: os.path.getmtime(os.path.join(calls, d, "solution.json")) for d in os.listdir(calls)} == stamps
    assert seconds < 180, f"the Ray smoke run took {seconds:.0f} s"


def test_a_config_cannot_name_code_to_import(tmp_path):
    """A classifier reward's ``model`` is a name or a path: a ``module:function`` factory would let a
    config file choose code to run (in every process of a multi-process call, too)."""
    path = _with(CONFIGS["safety"], 'model = "PKU-Alignment/beaver-7b-v1.0-reward"', 'model = "os:system"', tmp_path)
    with pytest.raises(ValueError, match=r"rewards\[0\]\.model must be a model name or a local path"):
        run(path, smoke=False, out=str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")  # refused before anything was built
