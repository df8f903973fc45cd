"""Sizes of `ebgan_keras`: lines per package, and the long functions of the ring.

Counts with `ast` (nothing is imported): a module's lines are its physical
lines (`wc -l`); a function's are `end_lineno - lineno + 1` of its `def`
(decorators left out, docstring and comments included), for every function
and method at any depth. The ring is the run machinery, the zoo and the
command line (`RING`); the limits are `MAX_FUNCTION_LINES` per function and
`MAX_MODULE_LINES` per module.

Usage: `python scripts/ring_metrics.py [--json] [--limit N]`; prints the lines
of each package (a top-level module counts as its own), then every function
of the ring over the limit (80 by default) and every ring module over 500
lines.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

PACKAGE = "ebgan_keras"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
#: The packages of the ring around the core.
RING = ("run", "cli", "zoo")
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500


def _files(root: Path = ROOT) -> list:
    return sorted(root.rglob("*.py"))


def _package(path: Path, root: Path) -> str:
    """`run`, `zoo`, ... for a file in a subpackage; the module's name for a
    top-level module (`losses.py` -> `losses`; `__init__.py` -> `__init__`)."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else Path(parts[0]).stem


def lines_per_package(root: Path = ROOT) -> dict:
    """`{package: lines}`, with `"total"`."""
    counts = {}
    for path in _files(root):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        key = _package(path, root)
        counts[key] = counts.get(key, 0) + lines
    counts = dict(sorted(counts.items(), key=lambda item: -item[1]))
    counts["total"] = sum(counts.values())
    return counts


def in_ring(path: Path, root: Path = ROOT) -> bool:
    """Whether a file belongs to the ring (`RING`)."""
    parts = path.relative_to(root).parts
    return len(parts) > 1 and parts[0] in RING


def functions(path: Path) -> list:
    """`[(qualified name, lines)]` of every function of a file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                found.append((name, child.end_lineno - child.lineno + 1))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def report(root: Path = ROOT, limit: int = MAX_FUNCTION_LINES) -> dict:
    """Lines per package, and the ring's functions and modules over the limits."""
    long_functions, long_modules = [], []
    for path in _files(root):
        if not in_ring(path, root):
            continue
        relative = path.relative_to(root).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            long_modules.append([relative, lines])
        for name, size in functions(path):
            if size > limit:
                long_functions.append([f"{relative}:{name}", size])
    return {
        "lines_per_package": lines_per_package(root),
        "ring_functions_over_limit": sorted(long_functions, key=lambda r: -r[1]),
        "ring_modules_over_limit": sorted(long_modules, key=lambda r: -r[1]),
        "function_limit": limit,
        "module_limit": MAX_MODULE_LINES,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON report")
    parser.add_argument(
        "--limit", type=int, default=MAX_FUNCTION_LINES, help="function lines"
    )
    args = parser.parse_args(argv)
    result = report(limit=args.limit)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print("lines per package:")
    for name, lines in result["lines_per_package"].items():
        print(f"  {name:<20} {lines:>6}")
    print(f"ring functions over {args.limit} lines:")
    for name, lines in result["ring_functions_over_limit"]:
        print(f"  {lines:>4}  {name}")
    print(f"ring modules over {MAX_MODULE_LINES} lines:")
    for name, lines in result["ring_modules_over_limit"]:
        print(f"  {lines:>4}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
