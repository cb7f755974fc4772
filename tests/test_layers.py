"""Imports point down: the layers that store, read and embed never reach up into the ones that
search, serve or parse command lines, so each can be used (and understood) on its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import photoseek

PACKAGE = Path(photoseek.__file__).parent
LOWER = (
    "models", "store", "ingest", "text", "duplicates", "distributed", "watch", "topics", "albums", "places", "sidecars",
)
UPPER = {"search", "api", "server", "cli", "eval", "present"}


def _imported_packages(source: Path) -> set[str]:
    """First-level photoseek packages a module imports, lazily (inside functions) or not."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "photoseek" else [f"photoseek.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name.split(".")[1] for name in names if name.startswith("photoseek."))
    return found


@pytest.mark.parametrize("layer", LOWER)
def test_lower_layers_never_import_upper_ones(layer):
    wrong = {
        f"{path.relative_to(PACKAGE)} imports photoseek.{target}"
        for path in (PACKAGE / layer).rglob("*.py")
        for target in _imported_packages(path) & UPPER
    }
    assert not wrong, sorted(wrong)


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from photoseek.search.engine import SearchEngine\n", encoding="utf-8")
    assert _imported_packages(module) == {"search"}
