"""The package's shape, checked statically with ``ast``: the intra-package import graph (module-level and
function-level imports) has no cycle and keeps its layers, no module reaches into another module's private
names, and no project file outside tests/ grows past 400 lines."""
from __future__ import annotations

import ast
import os
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIRS = {"ezrobot": "ezrobot", "ezrobot.envs": "envs", "ezrobot.tasks": "tasks", "ezrobot.configs": "configs"}
"""Import name -> folder (pyproject's ``package-dir``)."""
MAX_LINES = 400

# Layers from the top: a module may import only from its own layer or lower ones.
LAYERS: List[Tuple[str, ...]] = [
    ("ezrobot.cli", "ezrobot.__main__", "ezrobot.commands"),
    ("ezrobot.bench.dmc", "ezrobot.bench.atari", "ezrobot.bench.update", "ezrobot.bench.memory",
     "ezrobot.bench.probe", "ezrobot.bench.adapt", "ezrobot.bench.distributed"),
    ("ezrobot.runs",),
    ("ezrobot.trainer", "ezrobot.distributed.trainer"),
    ("ezrobot.distributed.launch",),
    ("ezrobot.factory", "ezrobot.distributed.workers", "ezrobot.distributed.owner"),
]
"""The rest (algorithm, nets, envs, tasks) lies below these; ``ezrobot.mcts`` is checked separately."""


def _modules() -> Dict[str, str]:
    """{module name: file path} for every module of the distribution."""
    out = {}
    for package, folder in PACKAGE_DIRS.items():
        root = os.path.join(REPO, folder)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            rel = os.path.relpath(dirpath, root)
            prefix = package if rel == "." else f"{package}.{rel.replace(os.sep, '.')}"
            if rel != "." and prefix in PACKAGE_DIRS:
                continue  # a separately mapped package (never nested today)
            for name in sorted(filenames):
                if name.endswith(".py"):
                    mod = prefix if name == "__init__.py" else f"{prefix}.{name[:-3]}"
                    out[mod] = os.path.join(dirpath, name)
    return out


MODULES = _modules()


def _is_package(mod: str) -> bool:
    return MODULES[mod].endswith("__init__.py")


def _resolve_relative(mod: str, level: int, target: Optional[str]) -> str:
    base = mod.split(".") if _is_package(mod) else mod.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(mod: str, tree: ast.AST) -> Iterator[Tuple[str, List[str], int]]:
    """``(imported module, imported names, line)`` for every import statement, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _resolve_relative(mod, node.level, node.module) if node.level else node.module
            yield target, [a.name for a in node.names], node.lineno


def _ancestors(mod: str) -> List[str]:
    parts = mod.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _edges(mod: str, tree: ast.AST) -> Set[str]:
    """Intra-package modules that importing ``mod`` imports: the named modules and their packages (except the
    packages ``mod`` itself lives in, which are already being imported when it runs)."""
    own = set(_ancestors(mod))
    out: Set[str] = set()
    for target, names, _ in _imports(mod, tree):
        if target is None or not target.startswith("ezrobot"):
            continue
        hits = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
        if len(hits) < len(names) or not names:
            hits.append(target)
        for hit in hits:
            for m in _ancestors(hit) + [hit]:
                if m in MODULES and m != mod and m not in own:
                    out.add(m)
    return out


def _parse(mod: str) -> ast.AST:
    with open(MODULES[mod], encoding="utf-8") as f:
        return ast.parse(f.read(), MODULES[mod])


@pytest.fixture(scope="module")
def graph() -> Dict[str, Set[str]]:
    return {mod: _edges(mod, _parse(mod)) for mod in MODULES}


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One import cycle ``[a, b, ..., a]``, or None."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_walk_sees_every_package_and_the_graph_is_not_empty(graph):
    for mod in ("ezrobot.cli", "ezrobot.commands.train", "ezrobot.mcts.engine", "ezrobot.envs.spec",
                "ezrobot.tasks.base", "ezrobot.configs", "ezrobot.replay.buffer"):
        assert mod in MODULES, mod
    assert "ezrobot.runs" in graph["ezrobot.commands.train"]
    assert "ezrobot.mcts" in graph["ezrobot.agent"]  # a package's __init__ counts as imported
    assert "ezrobot.envs.spec" in graph["ezrobot.envs"]  # relative imports resolve


def test_find_cycle_reports_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _layer(mod: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(mod == p or mod.startswith(p + ".") for p in prefixes):
            return i
    return len(LAYERS)


def test_imports_point_down_the_layers(graph):
    upward = [f"{mod} -> {dep}" for mod, deps in graph.items() for dep in deps if _layer(dep) < _layer(mod)]
    assert not upward, f"imports of a higher layer: {upward}"


def test_mcts_is_the_bottom(graph):
    """The search engine imports nothing from ezrobot outside ``ezrobot.mcts``."""
    leaks = [f"{mod} -> {dep}" for mod, deps in graph.items() if mod.startswith("ezrobot.mcts")
             for dep in deps if not dep.startswith("ezrobot.mcts")]
    assert not leaks, leaks


THIRD_PARTY_PRIVATE = {
    ("ezrobot.envs.dmcontrol", "_scene"): "dm_control's Camera frees its MjvScene only through Camera._scene",
}
"""Private attributes of third-party objects the project must touch, with the reason."""


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own_names(tree: ast.AST) -> Set[str]:
    """Private names a module defines itself: functions, classes, assigned names and attributes."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            out.add(node.attr)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.keyword) and node.arg:
            out.add(node.arg)
    return out


def private_uses(mod: str, tree: ast.AST) -> List[str]:
    """``from x import _y`` of a package module, and ``obj._y`` where this module defines no ``_y``."""
    found = []
    for target, names, line in _imports(mod, tree):
        if target and target.startswith("ezrobot"):
            found += [f"{mod}:{line} from {target} import {n}" for n in names if _private(n)]
    own = _own_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in own:
            found.append(f"{mod}:{node.lineno} .{node.attr}")
    return found


def test_private_use_detector_catches_both_forms():
    tree = ast.parse("from ezrobot.app import _load_run\nimport ezrobot.x as x\nx._helper()\nself._mine = 1\n")
    assert private_uses("ezrobot.demo", tree) == ["ezrobot.demo:1 from ezrobot.app import _load_run",
                                                  "ezrobot.demo:3 ._helper"]


def test_no_private_names_used_across_modules():
    found = [hit for mod in MODULES for hit in private_uses(mod, _parse(mod))
             if (mod, hit.rsplit(".", 1)[-1]) not in THIRD_PARTY_PRIVATE]
    assert not found, f"private names of other modules: {found}"


def test_project_files_stay_under_the_line_limit():
    long = []
    for folder in PACKAGE_DIRS.values():
        for dirpath, dirnames, filenames in os.walk(os.path.join(REPO, folder)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                if name.endswith((".py", ".yaml")):
                    path = os.path.join(dirpath, name)
                    with open(path, encoding="utf-8") as f:
                        count = sum(1 for _ in f)
                    if count > MAX_LINES:
                        long.append(f"{os.path.relpath(path, REPO)} ({count} lines)")
    assert not long, f"files over {MAX_LINES} lines: {long}"
