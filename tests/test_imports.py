"""The package's shape: no import cycles (function-local imports included), library code never
imports the studies, configs build without TensorFlow, and importing changes nothing global."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fer_keras"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, module_level_only: bool = False) -> set[str]:
    """fer_keras modules (and third-party top-level names) imported by ``path``."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES}
    return found


def _graph(module_level_only: bool = False) -> dict[str, set[str]]:
    """module -> fer_keras modules it imports, with the packages Python imports on the way
    (``a.b.c`` also imports ``a.b``), except the root package and the importer's own packages."""
    graph = {}
    for name, path in MODULES.items():
        edges = set()
        for target in _imports(path, module_level_only):
            if target not in MODULES:
                continue
            parts = target.split(".")
            for i in range(2, len(parts) + 1):
                edge = ".".join(parts[:i])
                if edge in MODULES and not (name == edge or name.startswith(edge + ".")):
                    edges.add(edge)
        graph[name] = edges - {name, "fer_keras"}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_module_graph_has_no_cycle():
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_library_code_never_imports_the_studies():
    offenders = {name: sorted(t for t in targets if t.startswith("fer_keras.studies"))
                 for name, targets in _graph().items() if not name.startswith("fer_keras.studies")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_building_a_config_needs_no_tensorflow():
    graph = _graph(module_level_only=True)
    seen, todo = set(), ["fer_keras.config"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += graph[name]
    heavy = {n for n in seen if {"tensorflow", "keras_cv", "tf_keras"} & {i.split(".")[0] for i in
                                                                            _imports(MODULES[n], True)}}
    assert heavy == set(), f"fer_keras.config imports TensorFlow through {sorted(heavy)}"


@pytest.mark.slow
def test_importing_everything_changes_nothing_global():
    """Every module imported: matplotlib's backend, absl's log filters and TensorFlow's global
    random generator are as they were (the Keras-2 selection of _compat is the one documented effect)."""
    code = f"""
import logging, matplotlib, tensorflow as tf
before = (matplotlib.get_backend(), list(logging.getLogger("absl").filters), id(tf.random.get_global_generator()))
import importlib
for name in {sorted(MODULES)!r}:
    if name != "fer_keras.__main__":
        importlib.import_module(name)
after = (matplotlib.get_backend(), list(logging.getLogger("absl").filters), id(tf.random.get_global_generator()))
assert before == after, (before, after)
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "svg", "TF_USE_LEGACY_KERAS": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]
