"""Import cycles in the `panel` package, per subpackage (stdlib `ast` only).

    python scripts/import_cycles.py [PACKAGE_DIR] [--type-checking] [--module-level-only]

Reads every module's imports without importing anything, and prints, for each subpackage
(panel/run, panel/backends, ...), the groups of its modules that import one another in a
circle (strongly connected components of the import graph between that subpackage's
modules), with one circle spelled out; then the circles between subpackages, for reading.

What counts as an import:
- module-level imports, also inside a module-level `try` or `if`;
- imports inside functions and methods (deferred to call time, but a dependency all the
  same: a cycle hidden in a function body is still a cycle of the design);
- NOT imports under `if TYPE_CHECKING:` (types only, never run); `--type-checking` counts
  them too, `--module-level-only` leaves out the function-local ones.

`from . import name` is an import of the submodule `name` when there is one, else of the
package. Exit code 1 when `run/`, `backends/`, `view/`, `report/`, `store/` or `cli/` has a cycle, else 0.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

#: subpackages whose cycles fail the check
STRICT = ("run", "backends", "view", "report", "store", "cli")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, type_checking: bool, local: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that count (see the module docstring)."""

    def walk(nodes: list[ast.stmt], in_function: bool) -> Iterator[ast.Import | ast.ImportFrom]:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                if local or not in_function:
                    yield node
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                if type_checking:
                    yield from walk(node.body, in_function)
                yield from walk(node.orelse, in_function)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from walk(node.body, True)
            else:
                for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        yield from walk([c for c in children if isinstance(c, ast.stmt)], in_function)
                        for child in children:  # except handlers and match cases hold bodies
                            if isinstance(child, ast.ExceptHandler | ast.match_case):
                                yield from walk(child.body, in_function)

    yield from walk(tree.body, False)


def import_graph(root: Path, type_checking: bool = False, local: bool = True) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    paths = {module_name(root, p): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), str(path)), type_checking, local):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = package
            for _ in range(max(0, node.level - 1)):
                base = base.rpartition(".")[0]
            source = node.module or ""
            if node.level:
                source = f"{base}.{source}" if source else base
            targets.add(source)
            targets.update(
                f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in paths
            )
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def one_cycle(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """A shortest circle through the group's first module, as a path that returns to it."""
    start = group[0]
    members = set(group)
    paths: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError("a strongly connected component has a cycle")


def subpackage(root: Path, module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 and (root / parts[1]).is_dir():
        return parts[1]
    return "(top level)"


def report(root: Path, graph: dict[str, set[str]]) -> tuple[list[str], bool]:
    """The report's lines, and whether a strict subpackage has a cycle."""
    lines: list[str] = []
    failed = False
    by_sub: dict[str, list[str]] = {}
    for module in graph:
        by_sub.setdefault(subpackage(root, module), []).append(module)
    for sub in sorted(by_sub):
        mods = set(by_sub[sub])
        inner = {m: graph[m] & mods for m in mods}
        groups = components(inner)
        strict = sub in STRICT
        lines.append(f"{sub}/: {len(mods)} modules, {len(groups)} cycle(s){' (checked)' if strict else ''}")
        for group in groups:
            lines.append(f"  cycle among {', '.join(group)}")
            lines.append(f"    e.g. {' -> '.join(one_cycle(inner, group))}")
        failed = failed or (strict and bool(groups))
    top: dict[str, set[str]] = {}
    for module, targets in graph.items():
        here = subpackage(root, module)
        top.setdefault(here, set()).update(
            subpackage(root, t) for t in targets if subpackage(root, t) != here
        )
    between = components(top)
    lines.append(f"between subpackages: {len(between)} cycle(s) (for reading; not checked)")
    for group in between:
        lines.append(f"  {' -> '.join(one_cycle(top, group))}")
    return lines, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", nargs="?", default=str(Path(__file__).resolve().parent.parent / "panel"))
    parser.add_argument("--type-checking", action="store_true", help="count imports under TYPE_CHECKING")
    parser.add_argument("--module-level-only", action="store_true", help="leave out imports inside functions")
    args = parser.parse_args(argv)
    root = Path(args.package).resolve()
    graph = import_graph(root, type_checking=args.type_checking, local=not args.module_level_only)
    lines, failed = report(root, graph)
    print("\n".join(lines))
    if failed:
        print(f"cycles in {' or '.join(s + '/' for s in STRICT)}: fix them (see above)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
