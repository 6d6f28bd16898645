"""notebooks/01-03 execute headless without errors (kernel python3 of this environment)."""

import os
import time

import pytest

nbformat = pytest.importorskip("nbformat", reason="executing notebooks needs the `notebooks` extra")
nbclient = pytest.importorskip("nbclient", reason="executing notebooks needs the `notebooks` extra")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = ("01_nets_and_bounds.ipynb", "02_palm_guarantees.ipynb", "03_baselines.ipynb", "05_scalarizations.ipynb")


def _read(name):
    return nbformat.read(os.path.join(ROOT, "notebooks", name), as_version=4)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_valid_and_without_outputs(name):
    nb = _read(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert "proofs_check" in "".join(c.source for c in code)  # Claim -> Check -> Plot
    assert not any(line.lstrip().startswith(("def ", "class ")) for c in code for line in c.source.splitlines()), (
        "notebooks call palmopt and proofs_check; they define no algorithms"
    )


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, monkeypatch):
    nb = _read(name)
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the kernel inherits the environment
    # import palmopt, oracles and proofs_check from this checkout whatever the install state
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}}
    )
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    print(f"{name}: {time.perf_counter() - t0:.1f} s")
