"""The layer rules of docs/development.md, held on the source: an import graph built with ``ast``
from every module of the three source trees (``prefbench/``, ``scorers/`` installed as
``prefbench.scorers``, ``training/`` as ``prefbench.training``), counting imports inside
functions too (a lazy import is still a dependency).

- ``engines/`` imports nothing from ``scorers/`` (the answer protocol lives in ``engines/base.py``);
- ``metrics/`` imports nothing from ``data/`` (conventions see ranks, scores and outputs);
- no core module imports the demo world (it registers itself through entry points);
- no import cycles between modules.

Each rule is also checked against a graph with one offending edge added, so that a rule that
could never fail is caught.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES = {"prefbench": "prefbench", "scorers": "prefbench.scorers", "training": "prefbench.training"}
#: the demo world's modules: only they may import one another
DEMO = ("prefbench.demo_zoo", "prefbench.data.demo", "prefbench.scorers.demo_oracle")


def module_files() -> dict[str, Path]:
    out = {}
    for folder, package in TREES.items():
        base = ROOT / folder
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = path
    return out


def _imports(path: Path, name: str) -> set[tuple[str, str | None]]:
    """(module, attribute) for every import anywhere in the module (``import a.b``: ("a.b", None);
    ``from a import b``: ("a", "b")); ``if TYPE_CHECKING:`` blocks are left out (never run)."""
    is_package = path.name == "__init__.py"
    found: set[tuple[str, str | None]] = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update((a.name, None) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[: len(package) - child.level + 1]
                    base = ".".join(package + ([child.module] if child.module else []))
                found.update((base, a.name) for a in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _longest_module(dotted: str, files) -> str | None:
    while dotted and dotted not in files:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def import_graph() -> dict[str, set[str]]:
    """module -> the project's modules it imports: ``from pkg import sub`` is an edge to the
    submodule when ``sub`` is one, else to ``pkg``; a dotted name resolves to its longest module
    prefix."""
    files = module_files()
    graph = {}
    for name, path in files.items():
        edges = set()
        for module, attr in _imports(path, name):
            target = f"{module}.{attr}" if attr and f"{module}.{attr}" in files else _longest_module(module, files)
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(sorted(graph[root])))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, edges in sorted(graph.items()):
        for target in sorted(edges):
            if _in(module, "prefbench.engines") and _in(target, "prefbench.scorers"):
                bad.append(f"{module} imports {target}: engines/ must not import scorers/")
            if _in(module, "prefbench.metrics") and _in(target, "prefbench.data"):
                bad.append(f"{module} imports {target}: metrics/ must not import data/")
            if any(_in(target, d) for d in DEMO) and not any(_in(module, d) for d in DEMO):
                bad.append(f"{module} imports {target}: core modules must not import the demo")
    bad += [f"import cycle: {' <-> '.join(c)}" for c in cycles(graph)]
    return bad


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_the_graph_sees_the_whole_package(graph):
    assert "prefbench.engines.base" in graph and "prefbench.scorers.vlm.scorers" in graph
    assert "prefbench.training.trainer" in graph
    # imports inside functions count: the API builds its scorer through the spec lazily
    assert "prefbench.scorer_spec" in graph["prefbench.api"]
    # `from pkg import submodule` is an edge to the submodule, not to the package
    assert "prefbench.training.unsloth_backend" in graph["prefbench.training.trainer"]
    assert "prefbench.training" not in graph["prefbench.training.trainer"]


def test_the_layer_rules_hold(graph):
    assert violations(graph) == []


@pytest.mark.parametrize("module, target, rule", [
    ("prefbench.engines.transformers", "prefbench.scorers.vlm.prompts", "engines/ must not import scorers/"),
    ("prefbench.metrics.conventions", "prefbench.data.model", "metrics/ must not import data/"),
    ("prefbench.cli", "prefbench.demo_zoo.suite", "must not import the demo"),
    ("prefbench.runner", "prefbench.data.demo", "must not import the demo"),
    ("prefbench.metrics.bootstrap", "prefbench.runner", "import cycle"),
])
def test_each_rule_can_fail(graph, module, target, rule):
    broken = {m: set(e) for m, e in graph.items()}
    broken[module].add(target)
    assert any(rule in v for v in violations(broken)), violations(broken)
