"""The package's import graph has no cycle, and no module hides one behind an import
inside a function (issue 17): read from the source, no import needed."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "des_tf"


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module, modules: set[str]) -> tuple[set[str], list[int]]:
    """(des_tf modules imported at module level, lines of des_tf imports in functions)."""
    top, nested = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("des_tf"):
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            targets = {name if name in modules else node.module for name in names}
        elif isinstance(node, ast.Import):
            targets = {alias.name for alias in node.names if alias.name.startswith("des_tf")}
        else:
            continue
        if node.col_offset == 0:
            top |= targets
        elif targets:
            nested.append(node.lineno)
    return top, nested


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` as a path of modules, or [] (depth-first search)."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = "open"
        path.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[name] = "done"
        path.pop()
        return []

    for name in sorted(graph):
        if name not in state and (found := visit(name)):
            return found
    return []


def test_no_import_cycles_and_no_imports_inside_functions():
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph, nested = {}, {}
    for name, path in files.items():
        top, lines = _imports(ast.parse(path.read_text()), set(files))
        # A package's __init__ importing its own submodules is not a cycle.
        graph[name] = {target for target in top if target in files and target != name
                       and not target.startswith(name + ".")}
        if lines:
            nested[name] = lines
    assert not nested, f"des_tf imports inside functions: {nested}"
    assert not _cycle(graph), f"import cycle: {' -> '.join(_cycle(graph))}"
