"""pyproject.toml declares what the package imports, and nothing it does not."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Declared but never imported by name: loaded by another dependency.
LOADED_BY_OTHERS = {
    "fastexcel",  # polars.read_excel's engine
    "httptools",  # uvicorn's HTTP parser, which the sandbox asks for by name
    "tzdata",  # the zone database zoneinfo reads where the OS has none (erasure.deadlines)
}


def _names(deps: list[str]) -> set[str]:
    names = {re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0] for dep in deps}
    return {n.lower().replace("_", "-") for n in names}


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return project


def _declared() -> set[str]:
    project = _project()
    return _names(project["dependencies"]) | _names(project["optional-dependencies"]["sandbox"])


def _imported(under: Path = ROOT / "erasure", *, skip: Path | None = None) -> set[str]:
    """Distributions of the top-level modules imported anywhere in ``under``."""
    modules: set[str] = set()
    for path in under.rglob("*.py"):
        if skip is not None and path.is_relative_to(skip):
            continue
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


def test_the_sandbox_server_is_an_extra_only_the_sandbox_imports() -> None:
    sandbox = _names(_project()["optional-dependencies"]["sandbox"])
    assert {"uvicorn", "httptools"} == sandbox
    assert set() == sandbox & _names(_project()["dependencies"])
    assert set() == sandbox & _imported(skip=ROOT / "erasure" / "sandbox")
    # the installed metadata says so too: uvicorn only with the extra
    requires = importlib.metadata.requires("erasure") or []
    server = [r for r in requires if r.startswith(("uvicorn", "httptools"))]
    assert 2 == len(server)
    assert all('extra == "sandbox"' in r for r in server)


def test_the_sandbox_without_its_extra_is_one_line_and_exit_69() -> None:
    # uvicorn made unimportable, as in an install without erasure[sandbox]
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "from erasure import cli\n"
        "raise SystemExit(cli.main(['sandbox', '--port', '0']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert 69 == done.returncode
    assert "" == done.stdout
    assert [
        "erasure: error: the sandbox is not installed: pip install 'erasure[sandbox]'"
        " (missing uvicorn)"
    ] == done.stderr.splitlines()


def test_the_version_has_one_source() -> None:
    import erasure

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert erasure.__version__ == importlib.metadata.version("erasure")
