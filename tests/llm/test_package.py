"""The oracles.llm package: the `llm` extra stays optional (importing any module imports no torch),
a missing extra is named, and the package keeps to palmopt's public API (no ``palmopt._*`` import)."""

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(ROOT, "oracles", "llm")
FILES = sorted(os.path.join(d, f) for d, _, fs in os.walk(PACKAGE) for f in fs if f.endswith(".py"))
MODULES = [os.path.relpath(f, ROOT)[: -len(".py")].replace(os.sep, ".").removesuffix(".__init__") for f in FILES]


def _python(code):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_importing_the_package_imports_no_torch():
    out = _python(
        "import sys, palmopt, oracles.llm, oracles.llm.rewards\n"
        f"import {', '.join(MODULES)}\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft') if m in sys.modules]\n"
        "print(heavy)"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_missing_extra_names_it():
    out = _python(
        "import sys\n"
        "for m in ('torch', 'transformers', 'trl', 'peft', 'datasets'): sys.modules[m] = None\n"
        "from oracles.llm import GRPOOracle\n"
        "try:\n"
        "    GRPOOracle('x', [], ['p'], ['p'], 'run')\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    assert out.returncode == 0, out.stderr
    assert "`llm` extra" in out.stdout and "pip install 'palmopt[llm]'" in out.stdout


def test_only_public_palmopt_modules_are_imported():
    private = []
    for path in FILES:
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            private += [(os.path.relpath(path, ROOT), n) for n in names if n.startswith("palmopt.") and "._" in n]
    assert not private, private


def test_no_module_is_too_long():
    lengths = {}
    for path in FILES:
        with open(path) as f:
            lengths[os.path.relpath(path, ROOT)] = len(f.readlines())
    assert max(lengths.values()) <= 600, lengths
