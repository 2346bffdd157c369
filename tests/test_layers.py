"""The house's dependency rule, checked on the source: imports point one way
(kuzet -> web -> dispatch, compliance -> console <- receivers), there is no cycle, and production code
imports nothing from the simulators or the benchmarks."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kuzet", "web", "dispatch", "compliance", "console", "receivers")

# What each package may import besides itself (and the standard library and third-party packages).
ALLOWED: dict[str, set[str]] = {
    "kuzet": {"web", "dispatch", "compliance", "console", "receivers"},
    "web": {"dispatch", "compliance", "console"},
    "compliance": {"dispatch", "console"},  # compliance proves row 5 from dispatch's records
    "dispatch": {"console"},
    "console": set(),
    "receivers": {"console"},
}
TOOLS = ("receivers.sim", "kuzet.bench")  # simulators and benchmarks
# The only places that may reach the tools, and only inside a function (when that command runs):
# the CLI's `kuzet sim` / `kuzet bench`, and the demo, which drives simulated panels by design.
TOOL_USERS = {"kuzet.main", "kuzet.demo"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "console.alarm"
    target: str  # the imported module, e.g. "console.store"
    top_level: bool  # at module level (runs on import), not inside a function
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[Import]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            nested.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            # "from console import alarm" imports the module console.alarm
            targets = [f"{base}.{a.name}" if (ROOT / Path(*f"{base}.{a.name}".split("."))).exists()
                       or (ROOT / Path(*f"{base}.{a.name}".split("."))).with_suffix(".py").exists() else base
                       for a in node.names]
        for t in targets:
            if t.split(".")[0] in PACKAGES:
                yield Import(name, t, id(node) not in nested, node.lineno)


def all_imports() -> list[Import]:
    out: list[Import] = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out.extend(imports(path))
    return out


def is_tool(module: str) -> bool:
    return any(module == t or module.startswith(t + ".") for t in TOOLS)


def test_the_parser_sees_the_imports_it_must_judge() -> None:
    found = {(i.module, i.target) for i in all_imports()}
    assert ("console.alarm", "console.store") in found
    assert ("kuzet.runtime", "console.db") in found
    assert ("receivers.dc09.codec", "receivers.formats.signals") in found


def test_imports_point_one_way() -> None:
    wrong = [f"{i.module}:{i.line} imports {i.target}" for i in all_imports()
             if (src := i.module.split(".")[0]) != (dst := i.target.split(".")[0]) and dst not in ALLOWED[src]]
    assert not wrong, "imports against the dependency rule:\n" + "\n".join(wrong)


def test_production_code_does_not_import_simulators_or_benchmarks() -> None:
    wrong = [f"{i.module}:{i.line} imports {i.target}" for i in all_imports()
             if is_tool(i.target) and not is_tool(i.module)
             and (i.top_level or i.module not in TOOL_USERS)]
    assert not wrong, "production code reaching the tools:\n" + "\n".join(wrong)


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for i in all_imports():
        if i.top_level and i.target != i.module:
            graph.setdefault(i.module, set()).add(i.target)
    # A package's __init__ importing its own modules is the package assembling itself, not a cycle.
    for mod, deps in graph.items():
        graph[mod] = {d for d in deps if not d.startswith(mod + ".")}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend([*path[path.index(nxt):], nxt] if nxt in path else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*path, nxt]):
                return True
        state[node] = 2
        return False

    for mod in sorted(graph):
        if state.get(mod) is None and visit(mod, [mod]):
            break
    assert not cycle, "import cycle: " + " -> ".join(cycle)
