"""The docs' code blocks stay true to the code.

Blocks written as doctests (``>>>``) run under pytest's ``--doctest-glob``.  The other Python
blocks show what needs a GPU, a cluster or a model download; they are compiled here, every palmopt
or oracles import they make is executed, and every ``palmopt.<name>`` they use must exist.
"""

import ast
import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path):
    return [b for b in FENCE.findall(path.read_text()) if not b.lstrip().startswith(">>>")]


BLOCKS = [(p, i, b) for p in DOCS for i, b in enumerate(python_blocks(p))]


def test_the_docs_have_blocks_to_check():
    assert BLOCKS, "no Python block found: the fence pattern is broken"


@pytest.mark.parametrize("path, i, block", BLOCKS, ids=[f"{p.name}[{i}]" for p, i, _ in BLOCKS])
def test_block_compiles_and_its_project_names_exist(path, i, block):
    try:
        tree = ast.parse(block)
    except SyntaxError:  # a signature shown as a call with `*`: check it as an expression list
        tree = ast.parse(block.replace("*,", ""))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("palmopt", "oracles"):
                    importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("palmopt", "oracles"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{path.name}: {node.module} has no {alias.name}"
    import palmopt

    for name in re.findall(r"\bpalmopt\.([A-Za-z_]\w*)", block):
        assert hasattr(palmopt, name), f"{path.name}: palmopt has no attribute {name!r}"
