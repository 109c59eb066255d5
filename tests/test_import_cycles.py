"""No import cycle inside erasure/: every module can be read, and loaded, before its users.

The graph counts every import that runs: at the top of a module and inside
a function (a lazy import still ties two modules together), not the ones
under ``if TYPE_CHECKING:``, which never run. ``from package import name``
is an edge to the submodule when ``name`` is one, else to the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "erasure"


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of erasure that ``name`` imports when it runs."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    named: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                named.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*up, *([child.module] if child.module else [])])
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    named.add(sub if sub in modules else base)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    edges: set[str] = set()
    for target in named:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            edges.add(target)
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_import_cycle_inside_erasure() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert [] == _cycles(graph)


def test_the_cycle_finder_finds_a_cycle() -> None:
    """Two modules importing each other, lazily or not, are one: the test above can fail."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert [["a", "b", "c"]] == _cycles(graph)
    assert [] == _cycles({"a": {"b"}, "b": set()})
    modules = _modules()
    app = _imports("erasure.app", modules["erasure.app"], modules)
    assert "erasure.status" in app  # imported inside a function only: it counts
    front = _imports("erasure.sandbox.front", modules["erasure.sandbox.front"], modules)
    assert "erasure.sandbox.app" not in front  # under TYPE_CHECKING only: it does not


def test_the_run_sequence_is_written_once() -> None:
    """run and sweep send through erasure.run.execute: no other module builds a Runner or
    records a run's end itself (the sweep once copied the run's sequence, and drifted)."""
    found = []
    for name, path in _modules().items():
        if name in {"erasure.run.execute", "erasure.run.runner"}:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called in {"Runner", "finish_event"}:
                    found.append(f"{name}:{node.lineno}")
    assert found == []
