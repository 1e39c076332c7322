"""The package's layers, read from its imports: each stage imports only the stages below it.

Every ``import`` statement counts, at module level or inside a function (a lazy import is still a
dependency), and importing ``a.b.c`` runs the packages ``a.b`` above it. The layers, lowest
first (issue 17; DESIGN.md "Layout"):

    core (device, fileio) < data < models < pretrained < evaluate, train < explain
    < evaluate's scoring of explanations < viz < widgets < cli (cli, cli_support, demo)

``evaluate`` and ``train`` share a layer (training evaluates, the AAM study trains and scores).
The evaluate jobs that score explanations over a split (the faithfulness report, the
correspondence accuracy, the counterfactual game) run the explainers, so they sit above ``explain``: they are named in
``SCORING``, and no other evaluate module may import ``explain``. Between modules, no chain of
imports may come back to where it started.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import workbench

PACKAGE = Path(workbench.__file__).parent
LAYERS = {
    "device": 0, "fileio": 0, "data": 1, "models": 2, "pretrained": 3, "evaluate": 4,
    "train": 4, "explain": 5, "viz": 6, "widgets": 7, "cli": 8, "cli_support": 8, "demo": 8,
}  # fmt: skip
SCORING = {
    "workbench.evaluate.report",
    "workbench.evaluate.correspondence",
    "workbench.evaluate.counterfactual",
}
SCORING_LAYER = 5.5  # above explain (5), below viz (6)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The ``workbench.*`` modules a file imports, resolved to modules that exist."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from workbench.x import y`: y may be a submodule
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        found.update(n for n in names if n.startswith("workbench."))
    return {n for n in found if n in MODULES}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def graph() -> dict[str, set[str]]:
    """Module → the package modules it imports (a `from a.b import c` counts as a.b, and as
    a.b.c where c is a module; importing a.b.c also runs the package a.b, unless it is the
    importer's own)."""
    out = {}
    for name, path in MODULES.items():
        deps = imports(path) - {name}
        parents = {".".join(d.split(".")[:k]) for d in deps for k in range(2, d.count(".") + 1)}
        deps |= {p for p in parents if p in MODULES}
        out[name] = {
            d for d in deps if not (MODULES[d].name == "__init__.py" and name.startswith(d))
        }
    return out


def layer(module: str) -> float | None:
    if module in SCORING:
        return SCORING_LAYER
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in MODULES if m != "workbench" and layer(m) is None)
    assert not unplaced, f"modules outside every layer (add them to LAYERS): {unplaced}"


def test_no_import_goes_up_a_layer() -> None:
    upward = {  # (importer, imported) pairs that go up
        (src, dst)
        for src, deps in graph().items()
        for dst in deps
        if src != "workbench" and dst != "workbench" and layer(dst) > layer(src)
    }
    found = [f"{src} imports {dst}" for src, dst in sorted(upward)]
    assert not found, "imports against the layers:\n" + "\n".join(found)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph, as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circle() -> None:
    edges = {m: d for m, d in graph().items() if m != "workbench"}
    cycle = find_cycle(edges)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("name", ["workbench.evaluate.report", "workbench.train.aam"])
def test_job_modules_live_outside_explain(name: str) -> None:
    assert name in MODULES
    explain_modules = [m for m in MODULES if m.startswith("workbench.explain.")]
    assert all(not m.endswith((".report", ".aam")) for m in explain_modules)


def test_scoring_modules_exist_and_nothing_imports_them_from_below() -> None:
    assert SCORING <= set(MODULES)
    users = {src for src, deps in graph().items() for dst in deps if dst in SCORING}
    assert all(layer(u) is None or layer(u) > SCORING_LAYER for u in users - SCORING)
