"""The import graph of `ebgan_keras`: cycles and imports across the layers.

Reads every module of the package with `ast` (nothing is imported or run)
and counts, as an edge `A -> B` between two modules of the package, every
`import B` / `from B import name` / `from B.pkg import submodule` statement
of `A`: at module level and inside functions and methods alike (a function's
import runs when it is called, and a cycle through it is still a cycle),
relative imports resolved, `if TYPE_CHECKING:` blocks left out. The edge
goes to the module named, or to a submodule when `from P import name` names
one; the parent packages that Python runs first (`ebgan_keras/__init__.py`
for any submodule) are not edges, as in grimp and pydeps, else every module
would be in a cycle through the top package. Lazy imports by string
(`importlib.import_module(f"...")` in `ebgan_keras/__init__.py`) are not seen.

It reports the cycles (strongly connected components of more than one
module, and modules importing themselves) and the imports from the core
(`CORE`) into the run machinery, the zoo or the command line (`RING`).

Usage: `python scripts/import_graph.py [--json] [--edges]`; the exit status
is 1 when there is a cycle or a core module imports the ring.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

PACKAGE = "ebgan_keras"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
#: The core of the library: it must never import `RING`.
CORE = ("models", "networks", "losses", "samplers", "metrics", "data", "backend")
#: What sits above the core.
RING = ("run", "zoo", "cli")


def module_names(root: Path = ROOT) -> dict:
    """`{dotted module name: path}` of every `.py` file of the package."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every import statement, at any depth, outside `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, modules: dict) -> set:
    """The modules of the package that `module` imports (see the docstring)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            source = _resolve(module, is_package, node)
            targets = [
                f"{source}.{alias.name}"
                if f"{source}.{alias.name}" in modules
                else source
                for alias in node.names
            ]
        for target in targets:
            # `import a.b.c` names `a.b.c`; keep the longest known prefix.
            parts = target.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            if parts:
                found.add(".".join(parts))
    return found


def graph(root: Path = ROOT) -> dict:
    """`{module: sorted imported modules}` of the package."""
    modules = module_names(root)
    return {
        name: sorted(imports_of(name, path, modules)) for name, path in modules.items()
    }


def cycles(edges: dict) -> list:
    """Strongly connected components with a cycle (Tarjan), each sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(node):
        # Iterative Tarjan: the graph is small, but recursion limits differ.
        work = [(node, iter(edges.get(node, ())))]
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, ()))))
                    advanced = True
                    break
                if child in on_stack:
                    low[current] = min(low[current], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[current])
            if low[current] == index[current]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == current:
                        break
                if len(component) > 1 or current in edges.get(current, ()):
                    found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def _in(module: str, packages: tuple) -> bool:
    return any(
        module == f"{PACKAGE}.{name}" or module.startswith(f"{PACKAGE}.{name}.")
        for name in packages
    )


def layer_violations(edges: dict) -> list:
    """`[core module, ring module]` for every core import of the ring."""
    return [
        [source, target]
        for source, targets in sorted(edges.items())
        if _in(source, CORE)
        for target in targets
        if _in(target, RING)
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON report")
    parser.add_argument("--edges", action="store_true", help="list every edge")
    args = parser.parse_args(argv)
    edges = graph()
    report = {
        "modules": len(edges),
        "edges": sum(len(targets) for targets in edges.values()),
        "cycles": cycles(edges),
        "core_imports_ring": layer_violations(edges),
    }
    if args.edges:
        report["graph"] = edges
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"{report['modules']} modules, {report['edges']} import edges")
        for component in report["cycles"]:
            print("cycle: " + " <-> ".join(component))
        for source, target in report["core_imports_ring"]:
            print(f"core imports ring: {source} -> {target}")
        if args.edges:
            for source, targets in edges.items():
                for target in targets:
                    print(f"{source} -> {target}")
        if not report["cycles"] and not report["core_imports_ring"]:
            print("no cycle; the core imports nothing of run, zoo or cli")
    return 1 if report["cycles"] or report["core_imports_ring"] else 0


if __name__ == "__main__":
    sys.exit(main())
