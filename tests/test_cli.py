import json
import os

import palmopt
from palmopt.cli import main
from palmopt.demo import run_demo


def test_cover_json(capsys):
    assert main(["cover", "--d", "3", "--eps", "0.05", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["size"] == 17776 and report["bound"] >= 17776 and report["lower_bound"] >= 1


def test_cover_writes_the_net(tmp_path, capsys):
    out = str(tmp_path / "net.npz")
    assert main(["cover", "--d", "2", "--eps", "0.05", "--out", out]) == 0
    assert "145" in capsys.readouterr().out
    import numpy as np

    assert np.load(out)["points"].shape == (145, 2)


def test_usage_errors_exit_2(capsys):
    assert main(["cover", "--d", "3", "--eps", "1.5"]) == 2
    assert "`eps` must be in (0, 1); got 1.5" in capsys.readouterr().err


def test_run_then_certify(tmp_path, capsys):
    run = str(tmp_path / "run")
    args = ["run", "--oracle", "random", "--oracle-arg", "n_states=4", "--eps", "0.2", "--out", run, "--quiet"]
    assert main(args + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["size"] >= 1 and report["n_new_calls"] > 0
    assert main(args + ["--json"]) == 0  # resumed: no new call
    assert json.loads(capsys.readouterr().out)["n_new_calls"] == 0
    assert main(["certify", run, "--json"]) == 0
    cert = json.loads(capsys.readouterr().out)
    assert cert["holds"] and cert["status"] == "success"
    # a much stricter target fails, as a dense sample confirms independently: exit code 1
    from oracles.registry import from_spec

    front = from_spec("random", n_states=4).reference_front()
    U = palmopt.Portfolio.load(os.path.join(run, "portfolio")).values
    W = palmopt.cover(U.shape[1], 0.01, kind="additive").points
    sampled = ((1 - 0.001) * (W @ front.T).max(axis=1) - 0.001 - (W @ U.T).max(axis=1)).max()
    assert sampled > 0
    assert main(["certify", run, "--eps", "0.001", "--delta", "0.001"]) == 1


def test_demo_small(tmp_path, capsys):
    out = str(tmp_path / "demo")
    assert run_demo(out=out, eps=0.2, delta=0.2, progress=False) == 0
    text = capsys.readouterr().out
    assert "PALM" in text and "uniform weights" in text and "random weights" in text
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    palm_row = summary["methods"][0]
    assert palm_row["holds"] and palm_row["size"] == summary["portfolio_size"]
    assert all(m["size"] <= summary["portfolio_size"] for m in summary["methods"][:3])
    adaptive_row = summary["methods"][3]
    assert adaptive_row["holds"] and adaptive_row["oracle_calls"] < summary["oracle_calls"]
    assert os.path.getsize(os.path.join(out, "simplex.png")) > 10_000


# -- palmopt experiment: delegates to oracles.llm.experiment.run ----------------------------------
def _fake_experiment(monkeypatch, run):
    import sys
    import types

    module = types.ModuleType("oracles.llm.experiment")
    module.run = run
    monkeypatch.setitem(sys.modules, "oracles.llm.experiment", module)


def test_experiment_delegates_with_its_arguments(tmp_path, capsys, monkeypatch):
    calls = []

    def run(config, *, smoke, out):
        calls.append((config, smoke, out))
        return {"status": "success", "members": 3}

    _fake_experiment(monkeypatch, run)
    out = str(tmp_path / "exp")
    assert main(["experiment", "configs/toy.yaml", "--smoke", "--out", out, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"status": "success", "members": 3}
    assert main(["experiment", "configs/toy.yaml"]) == 0
    assert "members: 3" in capsys.readouterr().out
    assert calls == [("configs/toy.yaml", True, out), ("configs/toy.yaml", False, None)]


def test_experiment_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import sys

    import pytest

    def run(config, *, smoke, out):
        raise ValueError(f"config {config!r}: `steps` must be >= 1; got 0")

    _fake_experiment(monkeypatch, run)
    assert main(["experiment", "bad.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "palmopt experiment: error: config 'bad.yaml': `steps` must be >= 1; got 0"
    monkeypatch.setitem(sys.modules, "oracles.llm.experiment", None)  # the module is not installed
    assert main(["experiment", "cfg.yaml"]) == 1
    err = capsys.readouterr().err
    assert "not part of this installation" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as info:  # argparse: the config is required
        main(["experiment", "--smoke"])
    assert info.value.code == 2
