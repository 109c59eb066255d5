"""pyproject.toml declares what the package imports, and nothing it does not."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Declared but never imported by name: loaded by another dependency.
LOADED_BY_OTHERS = {
    "fastexcel",  # polars.read_excel's engine
    "httptools",  # uvicorn's HTTP parser, which the sandbox asks for by name
    "tzdata",  # the zone database zoneinfo reads where the OS has none (erasure.deadlines)
}


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0] for dep in project["dependencies"]}
    return {n.lower().replace("_", "-") for n in names}


def _imported() -> set[str]:
    """Distributions of the top-level modules imported anywhere in erasure/."""
    modules: set[str] = set()
    for path in (ROOT / "erasure").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    third = modules - set(sys.stdlib_module_names) - {"erasure", "__future__"}
    dists = importlib.metadata.packages_distributions()
    return {d.lower().replace("_", "-") for m in third for d in dists.get(m, [m])}


def test_every_import_is_declared() -> None:
    assert set() == _imported() - _declared()


def test_nothing_declared_is_unused() -> None:
    assert set() == _declared() - _imported() - LOADED_BY_OTHERS


def test_the_version_has_one_source() -> None:
    import erasure

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert erasure.__version__ == importlib.metadata.version("erasure")
