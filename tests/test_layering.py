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


LONGEST_FUNCTION = 60


def test_no_long_function_in_the_server_without_a_reason():
    """A function of signaling/ or sessions/ over 60 lines says why in a comment
    (``# long: ...``) on its ``def`` line or the one after."""
    long = []
    for package in ("signaling", "sessions"):
        for path in (ROOT / package).rglob("*.py"):
            lines = path.read_text(encoding="utf-8").splitlines()
            for node in ast.walk(ast.parse("\n".join(lines))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = node.end_lineno - node.lineno + 1
                    near = " ".join(lines[node.lineno - 1:node.lineno + 1])
                    if length > LONGEST_FUNCTION and "# long:" not in near:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
                                    f"({length} lines)")
    assert long == []
