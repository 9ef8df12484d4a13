"""The layers ``mofa_checks ← renderers ← mofa_bench ← evaluation`` import one way, and nothing imports in a cycle.

Every module's imports are read with ``ast`` — function-local ones included, imports
under ``if TYPE_CHECKING:`` left out (they never run). No module is exempt: the
``mofa-bench`` entry point finds the study's commands through its command registry
(entry points), not by importing ``evaluation``. Besides modules, the sub-packages
(folders) of each package form no cycle either (e.g. ``mofa_bench.data`` ↔
``mofa_bench.photos``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mofa_checks", "renderers", "mofa_bench", "evaluation")
#: Which of our packages each package may import (besides itself).
ALLOWED = {"mofa_checks": set(), "renderers": {"mofa_checks"}, "mofa_bench": {"mofa_checks", "renderers"},
           "evaluation": {"mofa_checks", "renderers", "mofa_bench"}}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, module: str, known: dict[str, Path]) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every import of one of our modules in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int]] = []

    def resolve(name: str) -> str | None:
        # The deepest of our modules the dotted name names (a package's __init__ for its attributes).
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in known:
                return candidate
        return None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (target := resolve(alias.name)) is not None:
                    found.append((target, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                target = resolve(f"{base}.{alias.name}") or resolve(base)
                if target is not None:
                    found.append((target, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> tuple[dict[str, Path], dict[str, list[tuple[str, int]]]]:
    known = _modules()
    return known, {name: _imports(path, name, known) for name, path in known.items()}


def _cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), or self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w, _ in graph[v]:
            if w not in index:
                strongconnect(w)
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
            if len(component) > 1 or any(t == v for t, _ in graph[v]):
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return out


def test_the_graph_sees_local_and_relative_imports(tmp_path):
    # The walker must not miss the imports the rules are about.
    pkg = tmp_path / "mofa_bench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from mofa_bench.scoring.metrics import x\n"
                              "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mofa_bench import b\n"
                              "from . import b\n")
    known = {"mofa_bench": pkg / "__init__.py", "mofa_bench.a": pkg / "a.py", "mofa_bench.b": pkg / "b.py",
             "mofa_bench.scoring.metrics": pkg / "m.py"}
    assert _imports(pkg / "a.py", "mofa_bench.a", known) == [("mofa_bench.scoring.metrics", 2), ("mofa_bench.b", 6)]
    assert _cycles({"a": [("b", 1)], "b": [("a", 1)], "c": [("a", 1)]}) == [["a", "b"]]


def test_layers_import_one_way():
    known, graph = _graph()
    wrong = []
    for module, imports in graph.items():
        package = module.split(".")[0]
        for target, line in imports:
            other = target.split(".")[0]
            if other != package and other not in ALLOWED[package]:
                wrong.append(f"{known[module].relative_to(ROOT)}:{line}: {module} imports {target}")
    assert not wrong, "upward imports:\n" + "\n".join(wrong)


def test_no_import_cycles_between_modules():
    known, graph = _graph()
    cycles = _cycles(graph)
    lines = []
    for component in cycles:
        members = set(component)
        for module in component:
            for target, line in graph[module]:
                if target in members:
                    lines.append(f"{known[module].relative_to(ROOT)}:{line}: {module} imports {target}")
    assert not cycles, "import cycles:\n" + "\n".join(lines)


def _folder(module: str, known: dict[str, Path]) -> str | None:
    """The sub-package folder a module lives in (``mofa_bench.data`` for ``mofa_bench.data.images``),
    or ``None`` for a module at a package's top level (``mofa_bench.config``)."""
    parts = module.split(".")
    if known[module].name == "__init__.py":
        return ".".join(parts[:2]) if len(parts) >= 2 else None
    return ".".join(parts[:2]) if len(parts) >= 3 else None


def _folder_graph(known: dict[str, Path], graph: dict[str, list[tuple[str, int]]]) -> dict[str, list[tuple[str, int]]]:
    """Folder → the other folders its modules import (with one line as the witness)."""
    folders: dict[str, list[tuple[str, int]]] = {}
    for module, imports in graph.items():
        source = _folder(module, known)
        if source is None:
            continue
        edges = folders.setdefault(source, [])
        for target, line in imports:
            other = _folder(target, known)
            if other is not None and other != source and other not in {t for t, _ in edges}:
                edges.append((other, line))
    for edges in list(folders.values()):
        for target, _ in edges:
            folders.setdefault(target, [])
    return folders


def test_folder_graph_finds_a_cycle_between_sub_packages():
    known = {name: Path(f"{name.replace('.', '/')}.py") for name in
             ("p.a.x", "p.b.y", "p.c.z", "p.top")}
    graph = {"p.a.x": [("p.b.y", 3)], "p.b.y": [("p.a.x", 5), ("p.top", 1)], "p.c.z": [("p.a.x", 2)],
             "p.top": [("p.c.z", 1)]}
    folders = _folder_graph(known, graph)
    assert _cycles(folders) == [["p.a", "p.b"]]  # p.top is no folder: p.c -> p.top -> p.c is not a folder cycle


def test_no_import_cycles_between_folders():
    known, graph = _graph()
    folders = _folder_graph(known, graph)
    cycles = _cycles(folders)
    lines = []
    for component in cycles:
        members = set(component)
        for module, imports in graph.items():
            if _folder(module, known) in members:
                lines += [f"{known[module].relative_to(ROOT)}:{line}: {module} imports {target}"
                          for target, line in imports
                          if _folder(target, known) in members - {_folder(module, known)}]
    assert not cycles, "folder cycles " + str(cycles) + ":\n" + "\n".join(lines)


def _upper_layer_imports(path: Path, module_level_only: bool) -> list[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    wrong = []
    for node in nodes:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        wrong += [f"{path.relative_to(ROOT)}:{node.lineno}: imports {name}" for name in names
                  if name.split(".")[0] in ("mofa_bench", "evaluation")]
    return wrong


def test_leaf_tests_do_not_import_upper_layers():
    # The renderer tests test the leaf as a leaf: meshes built without mofa_bench. The
    # shared test modules they load may use mofa_bench only inside functions.
    wrong = [line for path in sorted((ROOT / "tests" / "renderers").rglob("*.py"))
             for line in _upper_layer_imports(path, module_level_only=False)]
    for shared in ("conftest.py", "helpers.py"):
        wrong += _upper_layer_imports(ROOT / "tests" / shared, module_level_only=True)
    assert not wrong, "\n".join(wrong)


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules().values()
            if (n := len(p.read_text().splitlines())) > 600}
    assert not long, long


def test_moved_evaluation_modules_are_the_core_modules_with_a_warning():
    # The scoring and method modules moved from evaluation/ to mofa_bench/ in 0.1; their
    # old names import the same module objects for one release, warning.
    import importlib
    import sys
    import warnings

    import evaluation
    import mofa_bench.methods.fit
    import mofa_bench.scoring.metrics

    for old in ("evaluation.metrics", "evaluation.baselines.fit"):
        sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match="evaluation.metrics moved to mofa_bench.scoring.metrics"):
        assert importlib.import_module("evaluation.metrics") is mofa_bench.scoring.metrics
    with pytest.warns(DeprecationWarning, match="evaluation.baselines.fit moved"):
        assert importlib.import_module("evaluation.baselines.fit") is mofa_bench.methods.fit
    with pytest.warns(DeprecationWarning, match="evaluation.geometric_error"):
        assert evaluation.geometric_error is mofa_bench.scoring.metrics.geometric_error
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError):
            evaluation.no_such_name  # noqa: B018
