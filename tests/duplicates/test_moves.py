"""Moving copies aside is a journal: a kill at any step of a move or an undo, then a re-run or an
undo, leaves every photo byte-identical in exactly one of its two places, the catalog agreeing and
nothing partial anywhere; full targets, read-only sources and odd failures change nothing."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from photoseek import durable
from photoseek.cli import app
from photoseek.duplicates import moves
from tests.helpers import KILLED, DyingOs, draw_scene, exit_status, run_cli, run_json

KILLED_STEPS = ("open", "write", "fsync", "link", "rename", "replace", "unlink", "mkdir")
"""Every call moves.py (and `photoseek.durable`, which writes its manifests) makes that touches the
disk; the kill lands just before one of them."""


class _Os(DyingOs):
    """`os` as moves.py sees it: the real one, except that links and renames between the photos and
    the target may fail with EXDEV (a simulated second filesystem), the disk may fill while the
    Nth copy is written (ENOSPC), and the process may die (os._exit, as abrupt as kill -9) just
    before the Nth disk call."""

    steps = KILLED_STEPS

    def __init__(self, split: tuple[Path, Path] | None = None, kill_at: int | None = None,
                 full_at_copy: int | None = None) -> None:
        super().__init__(kill_at)
        self._split, self._full_at_copy = split, full_at_copy
        self.copies = 0
        self.full_fd: int | None = None

    def __getattr__(self, name: str) -> object:
        return self._close if name == "close" else super().__getattr__(name)

    def act(self, name: str, real: Callable[..., object], *args: object, **kwargs: object) -> object:
        if name in ("link", "rename") and self._crosses(*args[:2]):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        if name == "write" and args[0] == self.full_fd:
            raise OSError(errno.ENOSPC, "No space left on device")
        result = real(*args, **kwargs)
        if name == "open" and Path(os.fspath(args[0])).name.startswith(moves.PARTIAL_PREFIX):
            self.copies += 1
            if self.copies == self._full_at_copy:
                self.full_fd = result
        return result

    def _close(self, fd: int) -> None:
        if fd == self.full_fd:
            self.full_fd = None
        os.close(fd)

    def _crosses(self, a: object, b: object) -> bool:
        if self._split is None:
            return False
        photos, target = self._split
        sides = {Path(os.fspath(p)).is_relative_to(target) for p in (a, b)}
        return len(sides) == 2 and any(Path(os.fspath(p)).is_relative_to(photos) for p in (a, b))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_clip_dir: Path) -> tuple[Path, Path, Path]:
    """An indexed library with two copies to move: byte-identical and re-saved smaller."""
    base = tmp_path_factory.mktemp("journal")
    root = base / "photos"
    draw_scene(root / "a.jpg", 1)
    (root / "backup").mkdir()
    shutil.copy(root / "a.jpg", root / "backup" / "a-copy.jpg")
    from PIL import Image

    with Image.open(draw_scene(root / "b.jpg", 2, size=(320, 240))) as image:
        image.resize((160, 120)).save(root / "b-small.png")
    draw_scene(root / "c.jpg", 3)
    db = base / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    return base, root, db


class Scene:
    """The prepared library at its indexed paths, restorable between kills, and the checks."""

    def __init__(self, base: Path, root: Path, db: Path, target: Path) -> None:
        self.root, self.db, self.target, self.base = root, db, target, base
        self.tag = uuid.uuid4().hex
        self.originals = {p.relative_to(root): _sha(p) for p in root.rglob("*") if p.is_file()}
        self.save("start")

    def _saved(self, name: str) -> Path:
        return self.base / f"saved-{self.tag}-{name}"

    def save(self, name: str) -> None:
        saved = self._saved(name)
        shutil.rmtree(saved, ignore_errors=True)
        shutil.copytree(self.root, saved / "photos")
        if self.target.exists():
            shutil.copytree(self.target, saved / "target")
        for part in self.db.parent.glob(self.db.name + "*"):
            shutil.copy2(part, saved / part.name)

    def restore(self, name: str = "start") -> None:
        saved = self._saved(name)
        shutil.rmtree(self.root)
        shutil.copytree(saved / "photos", self.root)
        _clear(self.target)
        if (saved / "target").exists():
            shutil.copytree(saved / "target", self.target, dirs_exist_ok=True)
        for part in self.db.parent.glob(self.db.name + "*"):
            part.unlink()
        for part in saved.glob(self.db.name + "*"):
            shutil.copy2(part, self.db.parent / part.name)

    def moved_place(self, rel: Path) -> Path:
        return self.target / "photos" / rel

    def check(self, *, all_home: bool = False) -> None:
        """Each photo whole at exactly one place, the catalog where the files are, nothing else."""
        places = set()
        for rel, digest in self.originals.items():
            found = [p for p in (self.root / rel, self.moved_place(rel)) if os.path.lexists(p)]
            assert len(found) == 1, (rel, found)
            assert _sha(found[0]) == digest, found[0]
            places.add(str(found[0]))
            if all_home:
                assert found[0] == self.root / rel
        extra = {str(p) for p in [*self.root.rglob("*"), *self.target.rglob("*")] if p.is_file()} - places
        assert all(Path(p).parent == self.target and Path(p).name.startswith(moves.MANIFEST_PREFIX)
                   and p.endswith(".json") for p in extra), extra
        for manifest in extra:
            assert json.loads(Path(manifest).read_text())["state"] in ("moved", "undone"), manifest
        with sqlite3.connect(self.db) as con:
            assert {row[0] for row in con.execute("SELECT path FROM images")} == places

    def manifests(self) -> list[Path]:
        return sorted(self.target.glob(f"{moves.MANIFEST_PREFIX}*.json"))

    def undo_all(self) -> None:
        for manifest in self.manifests():
            assert run_json("duplicates", "--undo", manifest, "--db", self.db)["skipped"] == []


def _clear(folder: Path) -> None:
    if folder.exists():
        for child in folder.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


_CHILDREN = multiprocessing.get_context("forkserver")
_CHILDREN.set_forkserver_preload(["photoseek.cli", "photoseek.duplicates.moves"])


def _in_child(args: tuple[object, ...], fake_os: _Os) -> int:
    """Run the CLI with `args` in a fresh single-threaded child with `fake_os` as moves.py's (and durable.py's) os;
    its exit status (KILLED when the kill landed)."""
    return exit_status(_CHILDREN.Process(target=_child, args=([str(a) for a in args], fake_os)))


def _use_os(monkeypatch: pytest.MonkeyPatch, fake_os: _Os) -> None:
    """`fake_os` as the os of moves.py and of durable.py, for the rest of the test."""
    monkeypatch.setattr(moves, "os", fake_os)
    monkeypatch.setattr(durable, "os", fake_os)


def _child(args: list[str], fake_os: _Os) -> None:
    moves.os = durable.os = fake_os  # type: ignore[assignment]
    result = CliRunner().invoke(app, args)
    os._exit(result.exit_code)


@contextlib.contextmanager
def _target(base: Path, kind: str) -> Iterator[Path]:
    """The folder copies move to: beside the photos, or on another filesystem (/dev/shm) for real."""
    if kind != "other-filesystem":
        target = base / f"dupes-{uuid.uuid4().hex[:8]}"
        yield target
        shutil.rmtree(target, ignore_errors=True)
        return
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == base.stat().st_dev or not os.access(shm, os.W_OK):
        pytest.skip("no second filesystem (/dev/shm) to move across")
    target = shm / f"photoseek-test-{uuid.uuid4().hex[:8]}"
    try:
        yield target
    finally:
        shutil.rmtree(target, ignore_errors=True)


KINDS = ["same-filesystem", "simulated-cross-device"]
"""Every step of both ways to move; the real second filesystem (/dev/shm) is driven by the tests below."""


def _split(kind: str, scene: Scene) -> tuple[Path, Path] | None:
    return (scene.root, scene.target) if kind == "simulated-cross-device" else None


@pytest.mark.parametrize("kind", KINDS)
def test_a_kill_at_every_step_of_a_move_then_rerun_or_undo(prepared, kind, monkeypatch):
    base, root, db = prepared
    with _target(base, kind) as target:
        scene = Scene(base, root, db, target)
        _use_os(monkeypatch, _Os(_split(kind, scene)))
        move = ("duplicates", "--tier", "near", "--move-to", target, "--db", db)
        step = 0
        while True:
            step += 1
            status = _in_child(move, _Os(_split(kind, scene), kill_at=step))
            if status != KILLED:
                assert status == 0 and step > 10, (step, status)
                break
            scene.save("killed")
            rerun = run_json(*move)  # a re-run finishes the interrupted move, then moves what is left
            assert rerun["skipped"] == [], (step, rerun)
            scene.check()
            assert all(not (root / rel).exists() for rel in (Path("backup/a-copy.jpg"), Path("b-small.png"))), step
            scene.undo_all()
            scene.check(all_home=True)

            scene.restore("killed")  # the same kill, then an undo instead of a re-run
            scene.undo_all()
            scene.check(all_home=True)
            scene.restore()
        assert len(scene.manifests()) == 1
        scene.undo_all()
        scene.check(all_home=True)


@pytest.mark.parametrize("kind", KINDS)
def test_a_kill_at_every_step_of_an_undo_then_undo_again(prepared, kind, monkeypatch):
    base, root, db = prepared
    with _target(base, kind) as target:
        home = Scene(base, root, db, target)
        _use_os(monkeypatch, _Os(_split(kind, home)))
        manifest = Path(run_json("duplicates", "--tier", "near", "--move-to", target, "--db", db)["manifest"])
        moved = Scene(base, root, db, target)  # saves the moved state as its start
        moved.originals = home.originals
        step = 0
        while True:
            step += 1
            status = _in_child(("duplicates", "--undo", manifest, "--db", db), _Os(_split(kind, moved), step))
            if status != KILLED:
                assert status == 0 and step > 10, (step, status)
                break
            again = run_json("duplicates", "--undo", manifest, "--db", db)
            assert again["skipped"] == [], (step, again)
            moved.check(all_home=True)
            assert run_json("duplicates", "--undo", manifest, "--db", db)["moved"] == []  # idempotent
            moved.restore()
        moved.check(all_home=True)
        home.restore()


def test_two_moves_in_the_same_second_get_two_manifests(prepared, monkeypatch, tmp_path):
    base, root, db = prepared
    scene = Scene(base, root, db, tmp_path / "dupes")
    monkeypatch.setattr(moves.time, "strftime", lambda fmt, *a: "20260101-120000" if "%H%M%S" in fmt else "x")
    first = run_json("duplicates", "--tier", "exact", "--move-to", scene.target, "--db", db)
    second = run_json("duplicates", "--tier", "near", "--move-to", scene.target, "--db", db)
    assert first["manifest"] != second["manifest"] and len(first["moved"]) == len(second["moved"]) == 1
    assert [p.name for p in scene.manifests()] == ["photoseek-duplicates-20260101-120000-2.json",
                                                   "photoseek-duplicates-20260101-120000.json"]
    for report in (first, second):
        assert len(run_json("duplicates", "--undo", report["manifest"], "--db", db)["moved"]) == 1
    scene.check(all_home=True)
    scene.restore()


def test_a_target_without_room_is_refused_before_anything_moves(prepared, monkeypatch):
    base, root, db = prepared
    with _target(base, "other-filesystem") as target:
        scene = Scene(base, root, db, target)
        usage = shutil.disk_usage(base)
        monkeypatch.setattr(moves.shutil, "disk_usage", lambda path: usage._replace(free=1000))
        refused = run_cli("duplicates", "--tier", "near", "--move-to", target, "--db", db, expect=1)
        assert "Not enough free space" in refused and "Nothing was moved" in refused
        assert len(refused.strip().splitlines()) == 1
        assert [p for p in target.rglob("*")] == []
        scene.check(all_home=True)


@pytest.mark.parametrize("kind", ["simulated-cross-device", "other-filesystem"])
def test_a_disk_that_fills_during_a_copy_leaves_nothing_partial(prepared, kind, monkeypatch):
    base, root, db = prepared
    with _target(base, kind) as target:
        scene = Scene(base, root, db, target)
        _use_os(monkeypatch, _Os(_split(kind, scene), full_at_copy=2))
        result = run_json_expect_1("duplicates", "--tier", "near", "--move-to", target, "--db", db)
        assert len(result["moved"]) == 1 and "No space left" in result["skipped"][0]["reason"]
        scene.check()
        scene.undo_all()
        scene.check(all_home=True)


def run_json_expect_1(*args: object) -> dict:
    return json.loads(run_cli(*args, "--json", expect=1))


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """Make `folder` read-only for this process: permissions, or a read-only bind mount for root."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", folder, folder], capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("root without mount: no way to make a folder read-only")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", folder], capture_output=True).returncode:
            pytest.skip("cannot remount read-only")
        yield
    finally:
        subprocess.run(["umount", folder], check=True)


def test_a_read_only_source_is_refused_before_any_copy(prepared, tmp_path):
    base, root, db = prepared
    scene = Scene(base, root, db, tmp_path / "dupes")
    with _read_only(root):
        result = run_json_expect_1("duplicates", "--tier", "near", "--move-to", scene.target, "--db", db)
        assert result["moved"] == [] and result["manifest"] is None
        assert all("read-only" in s["reason"] and "writable" in s["reason"] for s in result["skipped"])
        assert len(result["skipped"]) == 2
        assert [p for p in scene.target.rglob("*") if p.is_file()] == []
        scene.check(all_home=True)


def test_an_old_manifest_still_undoes(prepared, tmp_path):
    """Manifests written before the journal (version 1, no state) undo as before."""
    base, root, db = prepared
    scene = Scene(base, root, db, tmp_path / "dupes")
    report = run_json("duplicates", "--tier", "exact", "--move-to", scene.target, "--db", db)
    manifest = Path(report["manifest"])
    data = json.loads(manifest.read_text())
    old = {"version": 1, "catalog": data["catalog"], "created": data["created"],
           "moves": [{k: e[k] for k in ("from", "to", "group", "tier", "keeper")} for e in data["moves"]]}
    manifest.write_text(json.dumps(old))
    assert len(run_json("duplicates", "--undo", manifest, "--db", db)["moved"]) == 1
    scene.check(all_home=True)


def test_undo_of_a_manifest_that_is_not_there_changes_nothing(prepared, tmp_path):
    _, _, db = prepared
    missing = tmp_path / "nowhere" / "photoseek-duplicates-20260101-000000.json"
    assert "Cannot read the manifest" in run_cli("duplicates", "--undo", missing, "--db", db, expect=3)
    assert not missing.parent.exists()


def test_undo_never_settles_through_a_link_left_at_the_original_place(prepared, tmp_path):
    """A link where a moved photo used to be, pointing at the photo in the target, looks like "the same
    file at both places"; undo must not delete the real one (the link's target) as the spare copy."""
    base, root, db = prepared
    scene = Scene(base, root, db, tmp_path / "dupes")
    report = run_json("duplicates", "--tier", "exact", "--move-to", scene.target, "--db", db)
    (moved,) = report["moved"]
    source, destination = Path(moved["from"]), Path(moved["to"])
    digest = _sha(destination)
    os.symlink(destination, source)
    undone = run_json_expect_1("duplicates", "--undo", report["manifest"], "--db", db)
    assert undone["moved"] == [] and "not a regular file" in undone["skipped"][0]["reason"], undone
    assert destination.is_file() and not destination.is_symlink() and _sha(destination) == digest
    source.unlink()
    scene.restore()


def test_a_source_that_cannot_lose_its_name_keeps_the_photo_in_one_place(prepared, tmp_path, monkeypatch):
    base, root, db = prepared
    scene = Scene(base, root, db, tmp_path / "dupes")
    real_unlink = os.unlink

    def refuse_sources(path, *args, **kwargs):
        if Path(path).is_relative_to(root):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(moves.os, "unlink", refuse_sources)
    report = run_json_expect_1("duplicates", "--tier", "exact", "--move-to", scene.target, "--db", db)
    assert report["moved"] == [] and "could not move" in report["skipped"][0]["reason"], report
    monkeypatch.undo()
    scene.check(all_home=True)
    scene.restore()
