"""notebooks/04_llm_toy.ipynb executes headless without errors (the CPU LLM experiment, quick settings)."""

import os

import pytest

pytest.importorskip("trl", reason="the notebook runs oracles.llm, which needs the `llm` extra")
nbformat = pytest.importorskip("nbformat", reason="executing notebooks needs the `notebooks` extra")
nbclient = pytest.importorskip("nbclient", reason="executing notebooks needs the `notebooks` extra")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "04_llm_toy.ipynb")


@pytest.mark.slow
@pytest.mark.notebook
def test_llm_toy_notebook_executes(monkeypatch, tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"), (
        "notebooks are committed without outputs"
    )
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the kernel inherits the environment
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's run directory (tempfile.mkdtemp) goes here
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=600,  # per cell; the whole notebook takes about a minute on 2 cores
        resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
