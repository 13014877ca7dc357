"""The package's layers: every import points down (or within its own sub-package), and no module
imports itself back through others. Lazy imports inside functions count as much as those at the
top: an upward import is a dependency however late it runs."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "posetrack_cli"

# Lowest first. A sub-package may import its own modules and those of lower ranks; sub-packages
# of one rank are independent of each other. The package root (the public API) and __main__ sit on top.
LAYERS: list[set[str]] = [
    {"core"},
    {"tracking", "models", "io"},
    {"runtime"},
    {"inference"},
    {"evaluation"},
    {"training"},
    {"run"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
TOP = len(LAYERS)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The posetrack_cli modules a file imports, anywhere in it (relative imports resolved)."""
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "posetrack_cli")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base.split(".")[0] != "posetrack_cli":
                continue
            for alias in node.names:  # `from posetrack_cli.models import weights` imports a module
                candidate = f"{base}.{alias.name}"
                found.add(candidate if modules_by_name().get(candidate) else base)
    return found


_MODULES: dict[str, Path] = {}


def modules_by_name() -> dict[str, Path]:
    if not _MODULES:
        _MODULES.update({module_name(p): p for p in PACKAGE.rglob("*.py")})
    return _MODULES


def layer(module: str) -> tuple[int, str]:
    """(rank, sub-package) of a module; the root package and __main__ are the top."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return TOP, ""
    return RANK[parts[1]], parts[1]


def graph() -> dict[str, set[str]]:
    modules = modules_by_name()
    edges = {}
    for name, path in modules.items():
        targets = set()
        for imported in imports_of(path):
            while imported not in modules and "." in imported:  # a name from a module: the module
                imported = imported.rpartition(".")[0]
            if imported != name:
                targets.add(imported)
        edges[name] = targets
    return edges


def test_every_sub_package_has_a_layer() -> None:
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages == set(RANK), "give a new sub-package its place in LAYERS (and ARCHITECTURE.md)"
    assert {p.stem for p in PACKAGE.glob("*.py")} <= {"__init__", "__main__"}, "modules live in sub-packages"


def test_imports_point_down() -> None:
    upward = []
    for module, targets in graph().items():
        rank, package = layer(module)
        for target in targets:
            their_rank, their_package = layer(target)
            if their_rank > rank or (their_rank == rank and their_package != package):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(sorted(upward))


def test_no_import_circle() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles: list[str] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                circles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles:\n" + "\n".join(circles)
