"""The layers point one way: core (palmopt) <- oracles <- application (CLI, demo, registry).

* palmopt's core never imports ``oracles`` (only the application modules may);
* ``oracles`` use palmopt's public API only (no private ``palmopt._x`` module);
* the oracle protocol is light: a pool or Ray worker that unpickles an oracle pays for neither
  SciPy nor Numba.
"""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: palmopt modules that form the application layer (they may wire in named oracles)
APPLICATION = {"palmopt/cli.py", "palmopt/demo.py"}


def imported_modules(path):
    """Absolute names of every module ``path`` imports, at any depth (functions included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(ROOT).parts[:-1])
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]  # `from pkg import submodule`
    return names


def sources(folder):
    return sorted((ROOT / folder).rglob("*.py"))


def test_the_scan_sees_relative_and_nested_imports(tmp_path):
    """The checker itself: a nested relative import is resolved to its absolute name."""
    assert "palmopt.certify" in imported_modules(ROOT / "palmopt" / "minimum.py")
    assert any(n.startswith("palmopt.executors") for n in imported_modules(ROOT / "palmopt" / "palm.py"))


CORE = [p for p in sources("palmopt") if str(p.relative_to(ROOT)) not in APPLICATION]


def test_the_application_modules_exist():
    assert all((ROOT / path).exists() for path in APPLICATION)  # a rename must update APPLICATION


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_never_imports_oracles(path):
    bad = [n for n in imported_modules(path) if n == "oracles" or n.startswith("oracles.")]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: the core must not depend on concrete oracles"


@pytest.mark.parametrize("path", sources("oracles"), ids=lambda p: str(p.relative_to(ROOT)))
def test_oracles_use_only_the_public_api(path):
    bad = [
        n
        for n in imported_modules(path)
        if n.startswith("palmopt.") and any(part.startswith("_") for part in n.split(".")[1:])
    ]
    assert not bad, f"{path.relative_to(ROOT)} imports private palmopt modules or names {bad}"


ORACLES = [p for p in sources("oracles") if p != ROOT / "oracles" / "registry.py"]  # the registry is application


@pytest.mark.parametrize("path", ORACLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_oracles_never_import_the_application_layer(path):
    app = {"oracles.registry", "palmopt.cli", "palmopt.demo"}
    bad = [n for n in imported_modules(path) if n in app or any(n.startswith(a + ".") for a in app)]
    assert not bad, f"{path.relative_to(ROOT)} imports the application layer {bad}"


def test_importing_the_core_loads_no_oracle_and_the_protocol_is_light():
    code = (
        "import sys, importlib, pkgutil, palmopt\n"
        "import palmopt.oracle\n"
        "heavy = [m for m in ('scipy', 'numba', 'oracles', 'torch', 'ray') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "core = [m.name for m in pkgutil.iter_modules(palmopt.__path__) if m.name not in ('cli', 'demo')]\n"
        "for name in core:\n"
        "    importlib.import_module('palmopt.' + name)\n"
        "for name in palmopt.__all__:\n"
        "    getattr(palmopt, name)\n"
        "leaked = sorted(m for m in sys.modules if m in ('oracles', 'ray', 'torch') or m.startswith('oracles.'))\n"
        "assert not leaked, leaked\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_public_names_resolve_to_what_they_name():
    """``palmopt.palm`` stays the function even after ``import palmopt.palm`` (the module)."""
    import importlib

    import palmopt

    for name in ("palm", "adaptive", "certify"):
        importlib.import_module(f"palmopt.{name}")
        assert callable(getattr(palmopt, name)) and not isinstance(getattr(palmopt, name), type(palmopt))
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        palmopt.nonexistent  # noqa: B018
