"""The package reads one way down: each layer imports only the layers below it, and nothing imports in a cycle.

Every import counts, also one inside a function. Layers, top first (README, Layout):

    cli  >  experiment  >  report  >  labelling  >  loop  >  samplers  >  learners  >  data  >  pool, graph  >  checks, io

(`seqgcn/__init__.py` re-exports the public names and sits above everything; `pool` and `graph`
are side by side, as are `checks` and `io`.) The engine that runs jobs (`experiment.jobs`,
`experiment.runners`, `loop`, the samplers and learners) never draws: only `experiment.results`,
which writes a finished run's files, reaches the learning-curve code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import seqgcn

SRC = Path(seqgcn.__file__).parent
LAYERS = [("cli",), ("experiment",), ("report",), ("labelling",), ("loop",), ("samplers",), ("learners",), ("data",),
          ("pool", "graph"), ("checks", "io")]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ENGINE = ("seqgcn.experiment.jobs", "seqgcn.experiment.runners", "seqgcn.loop")
PLOTTING = ("seqgcn.report.curves", "seqgcn.report.tsne", "matplotlib")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of its code (from-imports name the module or its attribute)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = {f"{node.module}.{alias.name}" for alias in node.names}
            submodules = {n for n in names if (SRC.parent / n.replace(".", "/")).with_suffix(".py").exists()
                          or (SRC.parent / n.replace(".", "/") / "__init__.py").exists()}
            found |= submodules if submodules == names else {node.module} | names
    return found


GRAPH = {module_name(p): imports_of(p) for p in SRC.rglob("*.py")}
MODULES = set(GRAPH)


def internal(name: str) -> str | None:
    """The seqgcn module `name` refers to (an attribute import maps to its module), or None."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def edges() -> dict[str, set[str]]:
    return {m: {t for t in (internal(i) for i in imports) if t and t != m} for m, imports in GRAPH.items()}


def layer(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None


def test_each_layer_imports_only_the_layers_below_it():
    wrong = []
    for module, targets in edges().items():
        mine = layer(module)
        for target in targets:
            theirs = layer(target)
            if mine is None or theirs is None or module.split(".")[1] == target.split(".")[1]:
                continue  # the package root, or within one package
            if theirs <= mine and {module.split(".")[1], target.split(".")[1]} not in ({"pool", "graph"}, {"checks", "io"}):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layering: " + ", ".join(sorted(wrong))


def test_no_import_cycle_counting_function_level_imports():
    graph = edges()
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph.get(node, set())):
            if state.get(nxt) == 1:  # back to a module on the stack: a cycle
                path = stack + [node]
                cycle.extend(path[path.index(nxt):] + [nxt])
                return True
            if nxt not in state and visit(nxt, stack + [node]):
                return True
        state[node] = 2
        return False

    for module in sorted(graph):
        if module not in state and visit(module, []):
            break
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_the_engine_never_imports_plotting():
    graph = edges()
    for start in ENGINE:
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            todo.extend(graph.get(module, ()))
        drawn = sorted({i for m in seen for i in GRAPH[m] if i.startswith(PLOTTING)})
        assert not drawn, f"{start} reaches plotting: {drawn}"


def test_argparse_lives_in_cli_only():
    users = sorted(m for m, imports in GRAPH.items() if "argparse" in imports and not m.startswith("seqgcn.cli"))
    assert not users, f"argparse outside seqgcn.cli: {users}"
