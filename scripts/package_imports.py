"""Every import between gemma_helpers' own modules, read with ast: where it sits and whether it closes a circle.

    python scripts/package_imports.py            # counts, circles, the function-level imports
    python scripts/package_imports.py --json     # the same as JSON
    python scripts/package_imports.py --needs chess_game   # the files to copy with one module

An import inside a function is counted as a function-level one; `from gemma_helpers import x` and
`from . import x` count as imports of module `x`. A circle is a strongly connected group of modules in the graph of
all imports, module level and inside functions alike.
"""

import argparse
import ast
import json
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gemma_helpers"


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """{dotted name below the package: file}, e.g. {"env": .../env.py, "exercises.core": .../exercises/core.py}."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            found[".".join(parts)] = path
    return found


def _target(name: str, known: dict[str, Path]) -> str | None:
    """The package module an absolute dotted name refers to (the longest known prefix), or None."""
    if not name.startswith("gemma_helpers."):
        return None
    rest = name.split(".", 1)[1].split(".")
    for n in range(len(rest), 0, -1):
        if ".".join(rest[:n]) in known:
            return ".".join(rest[:n])
    return None


def imports(module: str, path: Path, known: dict[str, Path]) -> list[dict]:
    """[{"to", "line", "in_function"}] for each import of another package module in one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    here = ["gemma_helpers", *module.split(".")] if module else ["gemma_helpers"]
    found: list[dict] = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = here if is_package else here[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    root = ".".join(base + ([child.module] if child.module else []))
                else:
                    root = child.module or ""
                names = [root] + [f"{root}.{a.name}" for a in child.names]
            targets = {t for t in (_target(n, known) for n in names) if t and t != module}
            # `from gemma_helpers.x import y` names x once, not also x.y unless y is a module of its own.
            if isinstance(child, ast.ImportFrom) and len(targets) > 1:
                deepest = {t for t in targets if not any(o != t and o.startswith(t + ".") for o in targets)}
                targets = deepest
            for t in sorted(targets):
                found.append({"to": t, "line": child.lineno, "in_function": in_function})
            visit(child, inner)

    visit(tree, False)
    return found


def graph(package: Path = PACKAGE) -> dict[str, list[dict]]:
    known = modules(package)
    return {m: imports(m, p, known) for m, p in known.items()}


def needs(graph: dict[str, list[dict]], module: str) -> list[str]:
    """The package modules importing `module` loads: its top-level imports, theirs, and its parent packages'
    (copy these files with it). Imports inside functions are not followed: they run when the function does."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        m = todo.pop()
        parts = m.split(".")
        todo += [".".join(parts[:n]) for n in range(1, len(parts)) if ".".join(parts[:n]) not in seen]
        for imp in graph.get(m, ()):
            if not imp["in_function"] and imp["to"] not in seen:
                seen.add(imp["to"])
                todo.append(imp["to"])
        seen.update(".".join(parts[:n]) for n in range(1, len(parts)))
    seen.discard(module)
    return sorted(seen)


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--list", action="store_true", help="list every function-level import")
    parser.add_argument("--needs", metavar="MODULE", help="the package files MODULE needs at import time")
    args = parser.parse_args(argv)
    g = graph()
    if args.needs:
        print(" ".join(needs(g, args.needs)) or "nothing else: it copies alone")
        return 0
    # Imports of a package by its own modules (`exercises.nb01` -> `exercises`) are the package's inside.
    edges = {m: {i["to"] for i in found} for m, found in g.items()}
    total = sum(len(found) for found in g.values())
    lazy = [(m, i) for m, found in g.items() for i in found if i["in_function"]]
    report = {"modules": len(g), "imports": total, "function_level": len(lazy), "circles": circles(edges)}
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"{report['modules']} modules, {total} imports between them, {len(lazy)} of them inside functions")
    for group in report["circles"]:
        print(f"circle of {len(group)}: {' '.join(group)}")
    if not report["circles"]:
        print("no circle")
    if args.list:
        for m, i in lazy:
            print(f"  {m}:{i['line']} -> {i['to']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
