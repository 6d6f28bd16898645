# `make demo` runs the main job on the embedded default; `make test` runs the tests.
# `make check-extras` checks that the `llm` and `vllm` extras resolve together (CI runs it first).
# All create (once) and reuse a local virtual environment in .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test check-extras bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"  # the CPU build (a plain `torch` would pull a CUDA build)
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/palmopt demo

# fast tests first; then the kernels' tests again as plain Python (NUMBA_DISABLE_JIT=1: the
# kernel bodies themselves are held to their NumPy twins); then the slow ones (long end-to-end
# runs, notebooks), where pytest's exit code 5 ("no test selected") is not a failure
test: $(VENV)/.installed
	$(PY) -m pytest -m "not slow"
	NUMBA_DISABLE_JIT=1 $(PY) -m pytest -m "not slow" -p no:cacheprovider tests/test_kernels.py tests/test_prune.py
	$(PY) -m pytest -m slow || [ $$? -eq 5 ]

# the `llm` and `vllm` extras must resolve together: a resolver dry run against the package index
# (nothing is installed; where the index serves wheel metadata, PEP 658 as PyPI does, no wheel is
# downloaded).  A conflict is pip's ResolutionImpossible error and a non-zero exit.
check-extras: $(VENV)/.installed
	$(PY) -m pip install --dry-run --ignore-installed --quiet --report $(VENV)/extras.json ".[llm,vllm]"
	$(PY) -c 'import json, sys; r = json.load(open(sys.argv[1])); v = {i["metadata"]["name"]: i["metadata"]["version"] for i in r["install"]}; print("llm + vllm resolve:", ", ".join(f"{k} {v[k]}" for k in ("vllm", "torch", "transformers", "trl", "peft")))' $(VENV)/extras.json

bench: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) bench/bench_kernels.py

clean:
	rm -rf $(VENV) build *.egg-info
