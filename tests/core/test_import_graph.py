"""core/ is built in floors, each importing only from the floors before it, with no cycle.

Every import counts — at module level and inside functions — except those under
``if TYPE_CHECKING:``, which never run. The graph is read from the source with
``ast``, so a cycle that only bites at run time (an import inside a function)
is found as well as one that fails at import time.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"
PACKAGE = "backprop_tui.core"

# The floors, bottom up (DESIGN.md, "Inside core/"): a module may import its own
# floor and those before it, never a later one.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("errors", "records", "runview", "safetext", "snapshot", "system"),
    ("maths",),
    ("spec",),
    ("layers",),
    ("backends",),
    ("watch",),
    ("run",),
    ("traces",),
    ("attach",),
)
FLOOR_OF = {top: rank for rank, names in enumerate(FLOORS) for top in names}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(CORE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: all but those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _local(name: str) -> str | None:
    """``backprop_tui.core.x`` → ``core.x``; other packages → None."""
    if name == PACKAGE or name.startswith(PACKAGE + "."):
        return "core" + name[len(PACKAGE) :]
    if name == "core" or name.startswith("core."):
        return name
    return None


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The core modules an import statement loads (relative imports resolved)."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".")
            if not is_package:
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        names = [source] + [f"{source}.{alias.name}" for alias in node.names]
    return {local for name in names if (local := _local(name)) is not None}


def import_graph() -> dict[str, set[str]]:
    """module → the core modules it imports (only those that exist as files)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in _import_nodes(tree):
            edges |= {t for t in _targets(module, is_package, node) if t in modules}
        edges.discard(module)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def floor(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # core/__init__.py: the public API re-exports every floor
    top = parts[1]
    return FLOOR_OF.get(top)


def floor_violations(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for module, targets in sorted(graph.items()):
        mine = floor(module)
        if mine is None:
            continue
        for target in sorted(targets):
            theirs = floor(target)
            if theirs is not None and theirs > mine:
                out.append(f"{module} imports {target} (a later floor)")
    return out


# ------------------------------------------------------------------------ the tests
def test_the_graph_is_read() -> None:
    graph = import_graph()
    # a module-level import, and one inside a function, are both seen
    assert "core.errors" in graph["core.spec.yamlio"]
    assert "core.backends.numpy_backend" in graph["core.backends"]
    assert "core.maths.optimizers" in graph["core.backends.base"]


def test_type_checking_imports_are_skipped() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..run.debugger import Debugger\n"
        "else:\n    from ..errors import ScenarioError\n"
        "def f():\n    from .reader import Reader\n"
    )
    found = set()
    for node in _import_nodes(tree):
        found |= _targets("core.spec.expect", False, node)
    assert found == {
        "core.errors",
        "core.errors.ScenarioError",
        "core.spec.reader",
        "core.spec.reader.Reader",
    }


def test_a_cycle_is_found_and_printed() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_top_level_module_has_a_floor() -> None:
    tops = {module.split(".")[1] for module in _modules() if module != "core"}
    assert tops <= set(FLOOR_OF), f"give these a floor: {sorted(tops - set(FLOOR_OF))}"


def test_core_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_no_module_imports_a_later_floor() -> None:
    violations = floor_violations(import_graph())
    assert not violations, "\n".join(violations)
