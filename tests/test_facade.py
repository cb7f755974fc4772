"""`ImageIndex` is the one door to a catalog: the CLI, the server, the evaluation and every other
module read through its public methods, never through the store and searchers behind it, and only
`store/` speaks SQL. So the store can change (a schema, a backend) with `api.py` as the one caller
to adapt, and what a caller may rely on is what `ImageIndex` documents."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import photoseek
from photoseek import ImageIndex

PACKAGE = Path(photoseek.__file__).parent
INSIDE = ("api.py", "store/")
"""The façade and the store it wraps: the only modules allowed past it."""
PARTS = ("catalog", "texts", "searcher", "hybrid", "blend")
"""`ImageIndex`'s components, private (`_catalog`, ...)."""
CONVENTIONAL = {"index", "idx"}
"""Lambda parameters by these names are `ImageIndex`es (`backend.read(lambda index: ...)`)."""
SQL = re.compile(
    r"\b(SELECT\b[\s\S]*\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\b[\s\S]*\bSET|DELETE\s+FROM|"
    r"(CREATE|DROP|ALTER)\s+(TABLE|INDEX|VIEW|TRIGGER)|PRAGMA\s+\w+)\b"
)
"""A string that is an SQL statement (keywords in capitals, as the store writes them)."""
RUNS_SQL = {"execute", "executemany", "executescript"}


def _index_names(tree: ast.AST) -> set[str]:
    """Names that hold an `ImageIndex` in a module: annotated so, bound from `ImageIndex(...)` (also
    by `with ... as`), or a lambda parameter named as the server and CLI name it."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None and "ImageIndex" in ast.unparse(node.annotation):
            names.add(node.arg)
        elif isinstance(node, ast.AnnAssign) and "ImageIndex" in ast.unparse(node.annotation):
            names.add(_name(node.target))
        elif isinstance(node, ast.FunctionDef) and node.returns is not None and (
            "ImageIndex" in ast.unparse(node.returns)
        ):
            names.add(node.name)  # a property or function that gives one (`self._primary`)
        elif isinstance(node, ast.Assign) and _makes_index(node.value):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.withitem) and _makes_index(node.context_expr) and isinstance(
            node.optional_vars, ast.Name
        ):
            names.add(node.optional_vars.id)
        elif isinstance(node, ast.Lambda):
            names.update(a.arg for a in node.args.args if a.arg in CONVENTIONAL)
    return names


def _name(node: ast.expr) -> str:
    """What a receiver is called: `index`, `self._primary`'s `_primary`, `lane.open()`'s `open`."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _makes_index(value: ast.expr) -> bool:
    return isinstance(value, ast.Call) and ast.unparse(value.func).split(".")[-1] in {"ImageIndex", "open_index"}


def reach_ins(source: str) -> list[str]:
    """Every place `source` goes past the façade: `ImageIndex` internals, SQL, or a raw connection."""
    tree = ast.parse(source)
    holders = _index_names(tree)
    found = []
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute):
            if node.attr.lstrip("_") in PARTS and node.attr.startswith("_"):
                found.append(f"{where}: .{node.attr} (ImageIndex internals)")
            elif node.attr in PARTS and _name(node.value) in holders:
                found.append(f"{where}: {ast.unparse(node)} (ImageIndex internals)")
            elif node.attr in RUNS_SQL:
                found.append(f"{where}: .{node.attr}() (SQL belongs in photoseek.store)")
            elif isinstance(node.value, ast.Name) and node.value.id == "sqlite3" and not node.attr.endswith("Error"):
                found.append(f"{where}: sqlite3.{node.attr} (connections belong in photoseek.store)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append(f"{where}: SQL string {node.value[:40]!r} (SQL belongs in photoseek.store)")
    return found


def _outside() -> list[Path]:
    return [
        path for path in sorted(PACKAGE.rglob("*.py"))
        if not path.relative_to(PACKAGE).as_posix().startswith(INSIDE)
    ]


def test_no_module_outside_the_facade_and_the_store_reaches_past_it():
    wrong = [
        f"{path.relative_to(PACKAGE)} {problem}"
        for path in _outside()
        for problem in reach_ins(path.read_text(encoding="utf-8"))
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("snippet", [
    "def f(index: ImageIndex):\n    return index.catalog.count()\n",
    "def f(idx: ImageIndex | None):\n    return idx.hybrid.summary()\n",
    "with ImageIndex(db) as index:\n    index.texts.sync()\n",
    "index = ImageIndex(db)\nindex.searcher.close()\n",
    "backend.read(lambda index: index.catalog.roots())\n",
    "class B:\n    @property\n    def _primary(self) -> ImageIndex: ...\n    def p(self):\n"
    "        return self._primary.catalog.path\n",
    "class L:\n    index: ImageIndex | None\n    def f(self):\n        self.index.texts.sync()\n",
    "def f(thing):\n    return thing._catalog.count()\n",
    "def f(thing):\n    return thing._blend.matrix()\n",
    "def f(catalog):\n    catalog.db.execute('SELECT id FROM images')\n",
    "ROWS = '''SELECT s.text, COUNT(*) FROM images i\n JOIN text_signals s'''\n",
    "QUERY = 'DELETE FROM text_signals WHERE source = ?'\n",
    "import sqlite3\ndb = sqlite3.connect('catalog.db')\n",
])
def test_the_check_sees_each_kind_of_reach_in(snippet):
    assert reach_ins(snippet), snippet


def test_the_check_lets_the_public_surface_and_ordinary_words_through():
    fine = (
        "def f(index: ImageIndex, searcher: Searcher, body):\n"
        "    searcher.catalog.count()\n"  # a searcher's own catalog: not an ImageIndex
        "    body.texts\n"
        "    index.find(3); index.records([1]); index.roots(); index.count()\n"
        "    try:\n        pass\n    except sqlite3.OperationalError:\n        pass\n"
        "    return 'Select the photos to delete from the album, then update the set.'\n"
    )
    assert reach_ins(fine) == []


def test_image_index_shows_no_component(tmp_path):
    with ImageIndex(tmp_path / "catalog.db") as index:
        public = {name for name in dir(index) if not name.startswith("_")}
        assert not public & set(PARTS), public & set(PARTS)
