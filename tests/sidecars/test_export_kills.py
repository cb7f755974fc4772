"""export-xmp writes files next to the user's photos, so it is a journal: a kill just before any of
its disk calls (of an export or a `--remove`) leaves every sidecar either its old bytes or the
complete new ones, never partial or missing; the next run finishes the job and leaves nothing of
photoseek's behind. A sidecar that reads back wrong is undone, and one the user edits while
`--remove` deletes it is kept."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from photoseek.cli import app
from photoseek.sidecars import export
from tests.helpers import KILLED, DyingOs, draw_scene, exit_status, run_cli, run_json
from tests.sidecars.shapes import shapes, sidecar

KILLED_STEPS = ("open", "write", "fsync", "fchmod", "link", "rename", "replace", "unlink", "mkdir")
"""Every call export.py makes that changes the disk (or opens a file to); the kill lands just before one."""
LEFTOVER_SUFFIXES = (export.TEMP_SUFFIX, export.ASIDE_SUFFIX)


class _Os(DyingOs):
    """`os` as export.py sees it: the process dies just before the Nth disk call."""

    steps = KILLED_STEPS


_CHILDREN = multiprocessing.get_context("forkserver")
_CHILDREN.set_forkserver_preload(["photoseek.cli", "photoseek.sidecars.export"])


def _in_child(args: tuple[object, ...], kill_at: int) -> int:
    """Run the CLI with `args` in a fresh child whose export.py dies before its `kill_at`th disk call;
    its exit status (KILLED when the kill landed)."""
    return exit_status(_CHILDREN.Process(target=_child, args=([str(a) for a in args], kill_at)))


def _child(args: list[str], kill_at: int) -> None:
    export.os = _Os(kill_at)  # type: ignore[assignment]
    result = CliRunner().invoke(app, args)
    os._exit(result.exit_code)


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_clip_dir: Path) -> tuple[Path, Path, Path]:
    """Four indexed photos: one with a digiKam sidecar, one with a Lightroom sidecar (both gain
    photoseek's fields), one without (a sidecar is created) and one with nothing to write."""
    base = tmp_path_factory.mktemp("xmpkills")
    root = base / "photos"
    for i, name in enumerate(("A.jpg", "B.jpg", "C.jpg", "D.jpg")):
        draw_scene(root / name, i)
    digikam, lightroom = shapes(6)[3], shapes(6)[5]
    assert (digikam.tool, lightroom.tool) == ("digikam", "lightroom") and digikam.keywords and lightroom.description
    (root / "A.jpg.xmp").write_text(sidecar(digikam), encoding="utf-8")
    (root / "C.xmp").write_text(sidecar(lightroom), encoding="utf-8")
    db = base / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    run_cli("tag", root / "A.jpg", "harbour", "boats", "--db", db)
    run_cli("tag", root / "B.jpg", "lighthouse", "--db", db)
    run_cli("describe", root / "B.jpg", "the old lighthouse at dusk", "--db", db)
    run_cli("describe", root / "C.jpg", "a second thought", "--db", db)
    return base, root, db


class Scene:
    """The library's folder and catalog, saved and restorable between kills."""

    def __init__(self, base: Path, root: Path, db: Path) -> None:
        self.base, self.root, self.db = base, root, db
        self.saved = base / f"saved-{uuid.uuid4().hex}"
        shutil.copytree(root, self.saved / "photos")
        for part in db.parent.glob(db.name + "*"):
            shutil.copy2(part, self.saved / part.name)

    def files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in self.root.iterdir()}

    def restore(self) -> None:
        shutil.rmtree(self.root)
        shutil.copytree(self.saved / "photos", self.root)
        for part in self.db.parent.glob(self.db.name + "*"):
            part.unlink()
        for part in self.saved.glob(self.db.name + "*"):
            shutil.copy2(part, self.db.parent / part.name)


def _sidecars(files: dict[str, bytes]) -> dict[str, bytes]:
    return {name: data for name, data in files.items() if name.endswith(".xmp")}


def _killed_state_is_whole(now: dict[str, bytes], old: dict[str, bytes], new: dict[str, bytes], step: int) -> None:
    """Right after a kill: each sidecar its old bytes or its new ones (absent where that is one of
    them), the photos untouched, and nothing else but photoseek's own temp or set-aside files."""
    for name in set(_sidecars(old)) | set(_sidecars(new)) | set(_sidecars(now)):
        assert now.get(name) in (old.get(name), new.get(name)), (step, name, now.get(name, b"")[:200])
    photos = {n: d for n, d in old.items() if not n.endswith((".xmp", *LEFTOVER_SUFFIXES))}
    assert {n: now.get(n) for n in photos} == photos, step
    others = set(now) - set(old) - set(new)
    assert all(n.startswith(".") and n.endswith(LEFTOVER_SUFFIXES) for n in others), (step, others)


def _kill_at_every_step(scene: Scene, args: tuple[object, ...]) -> int:
    """Kill `args` before each disk call in turn; after each kill, check, run it again, check. The
    number of kills."""
    old = scene.files()
    reference = run_json(*args)
    assert reference["skipped"] == [] and reference["changes"], reference
    new = scene.files()
    assert _sidecars(new) != _sidecars(old)
    step = 0
    while True:
        scene.restore()
        step += 1
        status = _in_child(args, step)
        if status != KILLED:
            assert status == 0 and step > 10, (step, status)
            assert scene.files() == new
            return step - 1
        _killed_state_is_whole(scene.files(), old, new, step)
        rerun = run_json(*args)
        assert rerun["skipped"] == [], (step, rerun)
        assert scene.files() == new, step  # finished, with no temp or set-aside file left


def test_a_kill_at_every_step_of_an_export_then_a_rerun(library):
    base, root, db = library
    scene = Scene(base, root, db)
    try:
        kills = _kill_at_every_step(scene, ("export-xmp", "--db", db))
        assert kills >= 3 * 6  # three sidecars: temp file opened, written, synced, renamed, folder synced
        assert "D.jpg.xmp" not in scene.files() and {"A.jpg.xmp", "B.jpg.xmp", "C.xmp"} <= set(scene.files())
    finally:
        scene.restore()


def test_a_kill_at_every_step_of_a_remove_then_a_rerun(library):
    base, root, db = library
    scene = Scene(base, root, db)
    try:
        assert run_json("export-xmp", "--db", db)["skipped"] == []
        exported = Scene(base, root, db)
        kills = _kill_at_every_step(exported, ("export-xmp", "--remove", "--db", db))
        assert kills >= 10
        after = exported.files()
        assert "B.jpg.xmp" not in after  # the sidecar photoseek created is gone; the others keep theirs
        assert {"A.jpg.xmp", "C.xmp"} <= set(after) and b"harbour" not in after["A.jpg.xmp"]
    finally:
        scene.restore()


def test_a_kill_at_every_step_of_the_rerun_that_finishes_a_killed_remove(library):
    """The run that finishes a killed `--remove` (a sidecar set aside, not yet deleted) is killed too,
    at each of its steps: still nothing partial or lost, and the run after it finishes."""
    base, root, db = library
    scene = Scene(base, root, db)
    try:
        assert run_json("export-xmp", "--db", db)["skipped"] == []
        exported = Scene(base, root, db)
        remove = ("export-xmp", "--remove", "--db", db)
        step = 0
        while not any(p.name.endswith(export.ASIDE_SUFFIX) for p in root.iterdir()):
            exported.restore()
            step += 1
            assert _in_child(remove, step) == KILLED, "no step left a sidecar set aside"
        killed = Scene(base, root, db)
        assert _kill_at_every_step(killed, remove) >= 10
        assert not [p for p in root.iterdir() if p.name.endswith(LEFTOVER_SUFFIXES)]
    finally:
        scene.restore()


def test_leftovers_of_a_killed_remove_are_finished_never_losing_an_edit(library):
    """A sidecar set aside by a killed `--remove`: deleted on the next run only when it holds nothing
    but photoseek's fields; one the user had edited goes back in place (or stays beside a new one)."""
    base, root, db = library
    scene = Scene(base, root, db)
    try:
        run_json("export-xmp", "--db", db)
        blank = root / f".B.jpg.xmp.0badcafe{export.ASIDE_SUFFIX}"
        os.rename(root / "B.jpg.xmp", blank)
        edited = root / f".A.jpg.xmp.1badcafe{export.ASIDE_SUFFIX}"
        mine = (root / "A.jpg.xmp").read_bytes().replace(b"</x:xmpmeta>", b"<!-- my own harbour --></x:xmpmeta>")
        edited.write_bytes(mine)
        (root / "A.jpg.xmp").unlink()
        clash = root / f".C.xmp.2badcafe{export.ASIDE_SUFFIX}"
        clash.write_bytes(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>mine</x:xmpmeta>")
        report = run_json("export-xmp", "--remove", "--db", db)
        assert not blank.exists() and not (root / "B.jpg.xmp").exists()  # nothing but photoseek's: deleted
        assert not edited.exists() and b"my own harbour" in (root / "A.jpg.xmp").read_bytes()  # back in place
        assert clash.read_bytes() == b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>mine</x:xmpmeta>"
        [kept] = [s for s in report["skipped"] if s["path"] == str(clash)]
        assert "keep the one you want" in kept["reason"]
    finally:
        scene.restore()


@pytest.mark.parametrize("when", ["before-the-rename", "after-the-rename"])
def test_remove_keeps_a_sidecar_edited_while_it_was_being_deleted(library, monkeypatch, when):
    """The user's edit lands between photoseek's check and its delete: the sidecar stays, with the edit."""
    base, root, db = library
    scene = Scene(base, root, db)
    try:
        run_json("export-xmp", "--db", db)
        target = root / "B.jpg.xmp"
        edit = b"<!-- my own words, added in digiKam -->"
        real_rename = os.rename

        class EditingOs(_Os):
            def __getattr__(self, name: str) -> object:
                if name != "rename":
                    return getattr(os, name)

                def rename(src: object, dst: object) -> None:
                    if when == "before-the-rename":
                        with open(src, "ab") as fh:  # type: ignore[call-overload]
                            fh.write(edit)
                    real_rename(src, dst)
                    if when == "after-the-rename":  # a program that had it open writes on
                        with open(dst, "ab") as fh:  # type: ignore[call-overload]
                            fh.write(edit)

                return rename

        monkeypatch.setattr(export, "os", EditingOs())
        report = run_json("export-xmp", "--remove", "--db", db)
        assert target.read_bytes().endswith(edit)
        [left] = [s for s in report["skipped"] if s["path"] == str(target)]
        assert "changed it while" in left["reason"] and "--remove again" in left["reason"]
        assert not [p for p in root.iterdir() if p.name.endswith(LEFTOVER_SUFFIXES)]
    finally:
        scene.restore()


def _corrupting_os(*, on: str, once: bool = True) -> _Os:
    """`os` whose first `on` call ('write' to a temp file, or 'replace'/'link' putting a sidecar in
    place) leaves one flipped byte on disk, as a failing disk or cable would, with size and time
    stamps unchanged."""
    done: list[bool] = []

    class Corrupting(_Os):
        def __getattr__(self, name: str) -> object:
            real = getattr(os, name)
            if name != on:
                return real

            def call(*args: object) -> object:
                if done and once:
                    return real(*args)
                done.append(True)
                if name == "write":
                    fd, data = args
                    return real(fd, bytes([data[0] ^ 0x20]) + bytes(data[1:]))  # type: ignore[index]
                result = real(*args)
                placed = Path(os.fspath(args[1]))  # type: ignore[arg-type]
                before = placed.stat()
                with open(placed, "r+b") as fh:
                    first = fh.read(1)
                    fh.seek(0)
                    fh.write(bytes([first[0] ^ 0x20]))
                os.utime(placed, ns=(before.st_atime_ns, before.st_mtime_ns))
                return result

            return call

    return Corrupting()


@pytest.mark.parametrize(("on", "failed"), [("write", "A.jpg.xmp"), ("replace", "A.jpg.xmp"), ("link", "B.jpg.xmp")])
def test_a_sidecar_that_reads_back_wrong_is_undone(library, monkeypatch, on, failed):
    """Bytes that reach the disk wrong: caught in the temp file (the sidecar is never touched) or,
    after the rename, undone (the previous content back; a new sidecar taken away)."""
    base, root, db = library
    scene = Scene(base, root, db)
    try:
        before = scene.files()
        monkeypatch.setattr(export, "os", _corrupting_os(on=on))
        report = run_json("export-xmp", "--db", db)
        [left] = report["skipped"]
        assert left["path"] == str(root / failed), report
        assert "read back" in left["reason"] and "check the disk" in left["reason"]
        if on != "write":
            assert ("previous content was put back" if failed == "A.jpg.xmp" else "taken away") in left["reason"]
        now = scene.files()
        assert now.get(failed) == before.get(failed)  # old bytes, or still absent
        assert not [n for n in now if n.endswith(LEFTOVER_SUFFIXES)]
        monkeypatch.setattr(export, "os", os)
        again = run_json("export-xmp", "--db", db)
        assert again["skipped"] == [] and [Path(c["sidecar"]).name for c in again["changes"]] == [failed]
    finally:
        scene.restore()
