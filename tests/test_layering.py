"""The shape of the code (docs/architecture.md): folders import downward only, and no
module imports itself back through others, counting imports made inside functions and
for type checking alone."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Each folder, and the folders of ours it may import.
MAY_IMPORT = {
    "sessions": set(),
    "document_share": {"sessions"},
    "media": {"sessions"},
    "signaling": {"sessions", "document_share", "media"},
    "smartcounter": {"sessions", "document_share", "media", "signaling"},
}


def import_graph() -> dict[str, set[str]]:
    modules = {}
    for package in MAY_IMPORT:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                named = [target, *(f"{target}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
            else:
                continue
            graph[name] |= {n for n in named if n in modules and n != name}
    return graph


def test_folders_import_downward_only():
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items() for target in targets
        if target.split(".")[0] != module.split(".")[0]
        and target.split(".")[0] not in MAY_IMPORT[module.split(".")[0]]
    )
    assert not upward, upward


def test_no_import_cycles():
    graph = import_graph()
    cycles = []

    def visit(module: str, path: list[str], done: set[str]) -> None:
        for target in sorted(graph[module]):
            if target in path:
                cycles.append(" → ".join([*path[path.index(target):], target]))
            elif target not in done:
                visit(target, [*path, target], done)
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module], done)
    assert not cycles, cycles
