"""The package's import graph has layers and no circles.

The graph is read from the source with `ast`, not by importing: every `import` / `from ... import` counts,
at module level, inside functions and under `if TYPE_CHECKING:` alike — a function-local import that closes
a circle is still a circle, only deferred. `from pkg import name` where `name` is a submodule counts as
importing that submodule; otherwise it imports `pkg` (its `__init__`). The implicit import of parent packages
is not counted (every submodule would otherwise depend on its package's `__init__`).

The layers are written in the package docstring (`mlguard_orchestration/__init__.py`); `LAYERS` below is the
same table, and `test_layers_point_down` holds every module to it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mlguard_orchestration

ROOT = Path(mlguard_orchestration.__file__).parent
PACKAGE = "mlguard_orchestration"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path) -> dict[str, Path]:
    return {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The package module `name` names, or the closest package above it (`pkg.Class` -> `pkg`)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every dotted name `path` imports (package modules resolved per the module docstring; others as written)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in known else stem
                       for alias in node.names]
        else:
            continue
        found.update(targets)
    return found


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    package = module.split(".")[0]
    resolved = {_resolve(t, known) for t in _targets(module, path, known) if t.split(".")[0] == package}
    return {r for r in resolved if r is not None and r != module}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Each module of the package at `root` -> the package's modules it imports, anywhere in its body."""
    known = _modules(root)
    return {module: _imports(module, path, known) for module, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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


def _path_through(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete circle inside `component`, to name in the failure: [a, b, ..., a] (breadth-first, so the
    shortest one through the component's first module)."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if child not in came_from:
                    came_from[child] = node
                    nxt.append(child)
        frontier = nxt
    return component


# Lowest first. A module may import its own layer and any layer below it, never one above. A module belongs to
# the layer listing its name or a package above it; "" is the root namespace, above everything.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("errors", "_version", "_json", "_paths", "_frames", "_sql", "_wide", "_zones", "distances")),
    ("engines", ("engines",)),
    ("model", ("report", "catalogue", "remote", "sources", "profile", "fingerprint", "store", "history", "lineage",
               "runs")),
    ("checks", ("checks", "diagnose")),
    ("guard", ("guard", "suite", "spec", "html")),
    ("features", ("gate", "training", "notify", "readiness")),
    ("adapters", ("adapters", "airflow", "prefect", "cli")),
    ("root", ("",)),
]


def layer_of(module: str) -> int:
    rest = module.removeprefix(PACKAGE).lstrip(".")
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if rest == prefix or (prefix and rest.startswith(prefix + ".")):
                return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS here and to the package docstring")


def test_the_graph_sees_function_local_type_only_and_submodule_imports(tmp_path: Path) -> None:
    """The reader itself, on a made-up package: a circle closed by a function-local import, one closed under
    TYPE_CHECKING, and `from pkg import sub` counted as importing `sub`, not the package."""
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from toy.a import A\n",
        "a.py": "from toy import b\nA = 1\n",
        "b.py": "def f():\n    from toy.a import A\n    return A\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import D\n",
        "d.py": "from toy.c import *\nD = 1\n",
        "sub/__init__.py": "from . import leaf\n",
        "sub/leaf.py": "from toy.sub import leaf as _self\nfrom toy import e\n",
        "e.py": "import toy.sub.leaf\nimport os\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    graph = import_graph(pkg)
    assert graph["toy"] == {"toy.a"} and graph["toy.a"] == {"toy.b"} and graph["toy.b"] == {"toy.a"}
    assert graph["toy.c"] == {"toy.d"} and graph["toy.sub"] == {"toy.sub.leaf"}
    assert graph["toy.sub.leaf"] == {"toy.e"} and graph["toy.e"] == {"toy.sub.leaf"}
    assert cycles(graph) == [["toy.a", "toy.b"], ["toy.c", "toy.d"], ["toy.e", "toy.sub.leaf"]]
    assert _path_through(graph, ["toy.a", "toy.b"]) == ["toy.a", "toy.b", "toy.a"]


def test_every_module_has_a_layer() -> None:
    for module in import_graph():
        layer_of(module)


def test_no_import_cycles() -> None:
    graph = import_graph()
    found = cycles(graph)
    message = "\n".join(" -> ".join(m.removeprefix(PACKAGE + ".") for m in _path_through(graph, component))
                        + f"   (component: {', '.join(component)})" for component in found)
    assert not found, f"import cycles in the package:\n{message}"


def test_layers_point_down() -> None:
    graph = import_graph()
    upward = sorted(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
                    for module, targets in graph.items() for target in targets
                    if layer_of(target) > layer_of(module))
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_each_adapter_stays_in_its_lane() -> None:
    """Airflow's adapter never imports Prefect's, nor the reverse; nothing in the core imports either."""
    graph = import_graph()
    crossings = sorted(f"{module} imports {target}" for module, targets in graph.items() for target in targets
                       for a, b in (("airflow", "prefect"), ("prefect", "airflow"))
                       if module.startswith(f"{PACKAGE}.{a}") and target.startswith(f"{PACKAGE}.{b}"))
    assert not crossings, "\n".join(crossings)


# Third-party packages only some layers may import: (top-level name, the package paths allowed to).
ONLY_IN: list[tuple[str, tuple[str, ...]]] = [
    ("airflow", ("airflow",)),
    ("prefect", ("prefect",)),
    ("torch", ("training",)),
    ("lightning", ("training",)),
    ("transformers", ("training",)),
]


def test_orchestrators_and_torch_stay_in_their_subpackages() -> None:
    """The core never imports Airflow, Prefect or torch, not even lazily: only `airflow/`, `prefect/` and
    `training/` do (what a user without them installed can still run is pinned by test_public_api)."""
    known = _modules(ROOT)
    wrong = sorted(f"{module} imports {target}" for module, path in known.items()
                   for target in _targets(module, path, known) for name, allowed in ONLY_IN
                   if target.split(".")[0] == name
                   and not any(module.startswith(f"{PACKAGE}.{a}.") or module == f"{PACKAGE}.{a}" for a in allowed))
    assert not wrong, "\n".join(wrong)


def test_the_package_docstring_draws_the_same_layers() -> None:
    doc = (mlguard_orchestration.__doc__ or "").partition("The layers, lowest first")[2].splitlines()
    for name, prefixes in LAYERS[:-1]:
        line = next((x for x in doc if x.strip().startswith(name + " ")), "")
        listed = {word.strip(",").rstrip("/") for word in line.split()[1:]}
        assert set(prefixes) <= listed, f"the package docstring's {name!r} line should list {sorted(prefixes)}"
