"""The package's layers, read from its imports (docs/architecture.md).

A capture's path reads top-down: ``collect`` (device I/O) writes a ``capture``, ``analyze``
and ``sources`` turn it into tables, ``leaks`` compares them, ``render`` prints them, and
``commands`` (the CLI) drives the lot. Every import, at module level or inside a function,
must point down (or stay in its layer), and no two modules may import each other, even
through others.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dmaprof"

#: layer -> the layers it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "capture": {"base"},
    "analyze": {"base", "capture"},
    "sources": {"base", "capture", "analyze"},
    "leaks": {"base", "capture", "analyze", "sources"},
    "render": {"base", "capture", "analyze", "sources", "leaks"},
    "collect": {"base", "capture", "analyze"},
    "commands": {"base", "capture", "analyze", "sources", "leaks", "render", "collect"},
}
FOLDERS = {"capture", "analyze", "sources", "leaks", "render", "collect", "commands"}
BASE = {"dmaprof", "choices", "errors", "units", "timing", "files", "records"}
TOP_COMMANDS = {"cli", "__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in BASE:
        return "base"
    if parts[1] in FOLDERS:
        return parts[1]
    if parts[1] in TOP_COMMANDS:
        return "commands"
    raise AssertionError(f"{module}: in no layer; put it in a layer folder")


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere (``from a import b`` counts as
    ``a.b`` when ``a.b`` is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in modules}


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: imports_of(path, modules) - {name} for name, path in paths.items()}


def test_every_module_is_in_a_layer() -> None:
    for module in graph():
        layer_of(module)


def test_imports_point_down() -> None:
    wrong = [
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module, targets in graph().items()
        for target in sorted(targets)
        if layer_of(target) != layer_of(module)
        and layer_of(target) not in ALLOWED[layer_of(module)]
    ]
    assert wrong == []


def _package_parents(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_cycles() -> None:
    edges = graph()
    # importing a.b runs a/__init__ first: that edge is not a cycle of the code's own
    for module, targets in edges.items():
        targets -= _package_parents(module)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [])
    assert [" -> ".join(cycle) for cycle in cycles] == []


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_folders_exist(layer: str) -> None:
    if layer != "base":
        assert (PACKAGE / layer / "__init__.py").is_file()


def test_code_map_names_every_module() -> None:
    """docs/architecture.md's code map lists every module of the tree, and nothing else."""
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    listed = {
        line.split("`")[1]
        for line in text.splitlines()
        if line.startswith("- `dmaprof/") and line.count("`") >= 2
    }
    files = {
        str(p.relative_to(PACKAGE.parent))
        for p in PACKAGE.rglob("*")
        if p.suffix in (".py", ".sh", ".js") and p.name != "__init__.py"
    }
    folders = {
        f"{p.parent.relative_to(PACKAGE.parent)}/"
        for p in PACKAGE.rglob("__init__.py")
        if p.parent != PACKAGE
    }
    assert listed == files | folders


def test_import_graph_script_prints_the_layers(capsys: pytest.CaptureFixture[str]) -> None:
    import runpy
    import sys

    script = PACKAGE.parent / "scripts" / "import_graph.py"
    argv = sys.argv
    sys.argv = [str(script)]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "commands",
        "render",
        "collect",
        "leaks",
        "sources",
        "analyze",
        "capture",
        "base",
    ]
    assert lines[-1].endswith("-> -")  # base imports nothing of the package
    assert "collect" not in lines[1].split("->")[1]  # render never imports collect


#: declarative tables (one documented schema per table), exempt from the size rule
DECLARATIVE = {"dmaprof/analyze/schema.py"}


def test_modules_and_functions_fit_in_a_head() -> None:
    """No module over 600 lines (schema tables aside), no function over 100 (issue #18)."""
    too_long: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE.parent))
        text = path.read_text()
        if len(text.splitlines()) > 600 and name not in DECLARATIVE:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 100:
                    too_long.append(f"{name}:{node.name}: {length} lines")
    assert too_long == []
