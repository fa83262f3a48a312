"""The package's import graph, its cycles and its layer breaks, from the source alone.

    python scripts/import_graph.py            # layers, cycles, breaks, line counts
    python scripts/import_graph.py --edges    # every edge, one per line
    python scripts/import_graph.py --dot      # the graph in Graphviz's dot language

Every ``import`` statement counts, also the ones inside functions and under ``TYPE_CHECKING``:
a cycle hidden behind an import in a function is still a cycle a reader has to untangle.
Nothing is imported; the files are parsed with ``ast``. The exit status is 1 when there is a
cycle or a layer break, so CI can run it (``tests/test_architecture.py`` does).

Layers, lowest first. A module may import its own layer and lower ones, never a higher one:

0. the foundation: ``types``, ``errors``, ``sqlnames``, ``dsn``
1. ``settings``
2. ``storage`` (with ``embedded``, the zero-infrastructure server it starts, and ``testing``)
3. ``analysis`` and ``synthetic``
4. the front ends: ``cli``, ``integrations``, ``__main__`` and the package root ``bindu_storage``
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "bindu_storage"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

LAYERS: dict[str, int] = {
    "types": 0, "errors": 0, "sqlnames": 0, "dsn": 0,
    "settings": 1,
    "storage": 2, "embedded": 2, "testing": 2,
    "analysis": 3, "synthetic": 3,
    "cli": 4, "integrations": 4, "__main__": 4, "": 4,
}
"""The layer of each top-level part of the package ("" is the package root)."""


def module_name(path: Path) -> str:
    """The dotted name of a source file of the package."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in its file."""
    known = set(known)
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, path.name == "__init__.py", node)
            # `from pkg import mod` imports the module pkg.mod when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith(PACKAGE) and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    mods = modules()
    return {name: imports_of(name, path, mods) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
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

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def layer(module: str) -> int:
    """The layer of a module of the package."""
    part = module.removeprefix(PACKAGE).lstrip(".").split(".")[0]
    return LAYERS.get(part, LAYERS[""])


def layer_breaks(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Every edge from a module to a module of a higher layer."""
    return sorted(
        (src, dst) for src, dsts in edges.items() for dst in dsts if layer(dst) > layer(src)
    )


def line_counts() -> dict[str, int]:
    """Lines per module."""
    return {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}


def main(argv: list[str] | None = None) -> int:
    """Print the report; exit 1 on a cycle or a layer break."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", action="store_true", help="print every edge")
    parser.add_argument("--dot", action="store_true", help="print the graph as Graphviz dot")
    args = parser.parse_args(argv)
    edges = graph()
    if args.dot:
        print("digraph bindu_storage {\n  rankdir=BT;")
        for src in sorted(edges):
            for dst in sorted(edges[src]):
                print(f'  "{src}" -> "{dst}";')
        print("}")
        return 0
    if args.edges:
        for src in sorted(edges):
            for dst in sorted(edges[src]):
                print(f"{src} -> {dst}")
        return 0
    counts = line_counts()
    found, breaks = cycles(edges), layer_breaks(edges)
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} imports, {sum(counts.values())} lines")
    big = sorted(((n, c) for n, c in counts.items() if c > 400), key=lambda x: -x[1])
    print("modules over 400 lines: " + (", ".join(f"{n} ({c})" for n, c in big) or "none"))
    print(f"cycles: {len(found)}")
    for component in found:
        print("  " + " <-> ".join(component))
    print(f"layer breaks: {len(breaks)}")
    for src, dst in breaks:
        print(f"  {src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})")
    return 1 if found or breaks else 0


if __name__ == "__main__":
    sys.exit(main())
