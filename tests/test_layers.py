"""Imports point down: the layers that store, read and embed never reach up into the ones that
search, serve or parse command lines, so each can be used (and understood) on its own.

Every import counts, lazy ones (inside functions) included: a lazy import saves start-up time, it
does not make an upward dependency acceptable. The first-level packages form no cycle (so they
stack into layers), and neither do the modules inside each package.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import photoseek

PACKAGE = Path(photoseek.__file__).parent
LOWER = (
    "models", "store", "ingest", "text", "duplicates", "distributed", "watch", "topics", "albums", "places", "sidecars",
    "imaging",
)
UPPER = {"search", "api", "server", "cli", "eval", "present"}
ENTRY_POINTS = {"__init__", "__main__"}
"""The package's own face (`import photoseek`, `python -m photoseek`): on top of everything by design."""


def _imported_modules(source: Path) -> set[str]:
    """Dotted photoseek modules (or packages) a file imports, lazily (inside functions) or not."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from photoseek.x import y`: y may be a module of its own; the graphs keep what exists.
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names += [node.module] if node.module != "photoseek" else []
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.startswith("photoseek."))
    return found


def _imported_packages(source: Path) -> set[str]:
    """First-level photoseek packages (or top-level modules) a module imports."""
    return {name.split(".")[1] for name in _imported_modules(source)}


def _first_level(path: Path, root: Path) -> str:
    return path.relative_to(root).parts[0].removesuffix(".py")


def _package_graph(root: Path) -> dict[str, set[str]]:
    """First-level package -> the other first-level packages its modules import."""
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        source = _first_level(path, root)
        if source not in ENTRY_POINTS:
            graph.setdefault(source, set()).update(_imported_packages(path) - {source})
    return graph


def _module_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same first-level package `photoseek.<package.name>` it imports."""
    prefix = f"photoseek.{package.name}"
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package).with_suffix("").parts
        name = ".".join((prefix, *parts))
        modules[name.removesuffix(".__init__")] = path
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imported_modules(path):
            # `photoseek.x.y.name` is a module, or a name in one: the longest known module wins.
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)
        graph[name] = targets
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle in the graph (its nodes, the first repeated at the end), or [] when there is none."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        return list(error.args[1])
    return []


@pytest.mark.parametrize("layer", LOWER)
def test_lower_layers_never_import_upper_ones(layer):
    wrong = {
        f"{path.relative_to(PACKAGE)} imports photoseek.{target}"
        for path in (PACKAGE / layer).rglob("*.py")
        for target in _imported_packages(path) & UPPER
    }
    assert not wrong, sorted(wrong)


def test_the_first_level_packages_form_no_cycle():
    graph = _package_graph(PACKAGE)
    cycle = _cycle(graph)
    culprits = [
        f"{path.relative_to(PACKAGE)} imports photoseek.{target}"
        for source, target in zip(cycle, cycle[1:])
        for path in (PACKAGE / source).rglob("*.py") if target in _imported_packages(path)
    ] + [
        f"{source}.py imports photoseek.{target}"
        for source, target in zip(cycle, cycle[1:]) if (PACKAGE / f"{source}.py").exists()
    ]
    assert not cycle, f"cycle {' -> '.join(cycle)}: {culprits}"


@pytest.mark.parametrize("package", sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()))
def test_the_modules_of_a_package_form_no_cycle(package):
    cycle = _cycle(_module_graph(PACKAGE / package))
    assert not cycle, " -> ".join(cycle)


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from photoseek.search.engine import SearchEngine\n", encoding="utf-8")
    assert _imported_packages(module) == {"search"}


def test_the_checks_see_lazy_cycles_between_packages_and_between_modules(tmp_path):
    """Cycles closed by a function-level import: between two packages, then inside one."""
    for package in ("low", "high"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "high" / "a.py").write_text("from photoseek.low.b import g\n", encoding="utf-8")
    (tmp_path / "low" / "b.py").write_text("def g():\n    from photoseek.high.a import f\n", encoding="utf-8")
    assert set(_cycle(_package_graph(tmp_path))) == {"low", "high"}
    assert _cycle(_module_graph(tmp_path / "low")) == []

    (tmp_path / "low" / "b.py").write_text("def g():\n    from photoseek.low import c\n", encoding="utf-8")
    (tmp_path / "low" / "c.py").write_text("from photoseek.low.b import g\n", encoding="utf-8")
    assert _cycle(_package_graph(tmp_path)) == []
    assert set(_cycle(_module_graph(tmp_path / "low"))) == {"photoseek.low.b", "photoseek.low.c"}
