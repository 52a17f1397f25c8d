"""The package's import graph: modules per layer, import cycles, imports that climb a layer.

Reads the source with grimp (the graph library behind import-linter), counting every
``import`` statement, also those inside functions (not those under ``if TYPE_CHECKING:``, which
never run). The layers are those of the
``[tool.importlinter]`` contract in this checkout's ``pyproject.toml`` (highest first); a module
whose top-level subpackage is not a layer is listed as ``(outside the layers)``.

    python benchmarks/bench_import_graph.py [--package socialav] [--src src]

Run it on two checkouts to compare them (``git worktree add /tmp/old <commit>`` and
``--src /tmp/old/src``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

import grimp
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def contract_layers(pyproject: Path = ROOT / "pyproject.toml") -> list[list[str]]:
    """The layers of the import-linter ``layers`` contract, highest first, as lists of the
    top-level subpackage names of each layer (``a | b`` and ``a : b`` are siblings)."""
    config = tomllib.loads(pyproject.read_text())
    for contract in config["tool"]["importlinter"]["contracts"]:
        if contract["type"] == "layers":
            return [
                [name.strip().split(".")[-1] for name in re.split(r"[|:]", layer)]
                for layer in contract["layers"]
            ]
    raise ValueError(f"{pyproject}: no import-linter layers contract")


LAYERS: list[list[str]] = contract_layers()


def layer_of(module: str, package: str) -> int | None:
    """Index into :data:`LAYERS` of a module (``None`` outside them, e.g. the package root)."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    top = parts[1]
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    return None


def strongly_connected(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Import cycles: strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in modules:
                continue
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
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            visit(v)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="socialav")
    parser.add_argument("--src", default="src", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(args.src.resolve()))
    graph = grimp.build_graph(
        args.package,
        include_external_packages=False,
        exclude_type_checking_imports=True,
        cache_dir=None,
    )
    modules = {m for m in graph.modules if m.startswith(args.package)}

    per_layer: dict[int | None, list[str]] = defaultdict(list)
    for m in modules:
        per_layer[layer_of(m, args.package)].append(m)
    back_edges = []
    for importer in sorted(modules):
        lo = layer_of(importer, args.package)
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            li = layer_of(imported, args.package)
            if lo is not None and li is not None and li < lo:
                back_edges.append((importer, imported))
    cycles = strongly_connected(graph, modules)
    root = sorted(m for m in modules if m.count(".") == 1 and not graph.find_children(m))

    print(f"python benchmarks/bench_import_graph.py --src {args.src}")
    print()
    print("| layer (highest first) | modules |")
    print("|---|---|")
    for i, layer in enumerate(LAYERS):
        print(f"| {' / '.join(layer)} | {len(per_layer.get(i, []))} |")
    print(f"| (outside the layers) | {len(per_layer.get(None, []))} |")
    print(f"| **total** | {len(modules)} |")
    print()
    print(f"modules directly in the package root: {', '.join(root) or '-'}")
    print(f"import cycles: {len(cycles)}")
    for c in cycles:
        print(f"  - {' <-> '.join(c)}")
    print(f"imports from a lower layer up to a higher one: {len(back_edges)}")
    for a, b in back_edges:
        print(f"  - {a} -> {b}")


if __name__ == "__main__":
    main()
