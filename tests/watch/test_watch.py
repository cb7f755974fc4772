"""Watching folders through the Python API: changes are indexed in batches, roots may come and go."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.helpers import draw_photo, wait_until
from tests.watch.conftest import FAST, small_png


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    draw_photo(root / "red.jpg", "red", seed=1)
    draw_photo(root / "nested" / "green.png", "green", seed=2)
    return root.resolve()


def test_copied_files_become_searchable_and_moves_renames_edits_deletes_follow(watch, library, tmp_path):
    staging = tmp_path / "camera"
    for i, colour in enumerate(["blue", "yellow", "purple"]):
        draw_photo(staging / f"{colour}.jpg", colour, seed=10 + i)
    session = watch([library])
    assert session.searchable() == {str(library / "red.jpg"), str(library / "nested" / "green.png")}

    for photo in staging.iterdir():
        shutil.copy(photo, library / photo.name)
    session.settle(lambda: {str(library / n) for n in ("blue.jpg", "yellow.jpg", "purple.jpg")} <= session.searchable(),
               "copied photos to be searchable")
    embedded = sum(b.report.embedded for b in session.batches)

    (library / "blue.jpg").rename(library / "sky.jpg")
    (library / "trips").mkdir()
    shutil.move(library / "yellow.jpg", library / "trips" / "yellow.jpg")
    session.settle(lambda: {str(library / "sky.jpg"), str(library / "trips" / "yellow.jpg")} <= session.indexed()
               and not {str(library / "blue.jpg"), str(library / "yellow.jpg")} & session.indexed(),
               "the renamed and the moved photo under their new paths only")
    assert sum(b.report.embedded for b in session.batches) == embedded, "moves reuse their embeddings"
    assert sum(b.report.reused for b in session.batches) >= 2

    before = session.reader.find(library / "red.jpg")
    draw_photo(library / "red.jpg", "orange", shape="square", seed=99)
    session.settle(lambda: (r := session.reader.find(library / "red.jpg")) is not None
               and r.content_hash != before.content_hash, "the edited photo to be re-indexed")

    (library / "purple.jpg").unlink()
    shutil.rmtree(library / "nested")
    deleted = {str(library / "purple.jpg"), str(library / "nested" / "green.png")}
    session.settle(lambda: not deleted & session.searchable(), "deleted photos and folders to leave the index")
    assert session.searchable() == {str(library / p) for p in ("red.jpg", "sky.jpg", "trips/yellow.jpg")}


def test_a_burst_of_a_thousand_files_is_indexed_in_a_few_batches(watch, library, tmp_path):
    staging = tmp_path / "card"
    for i in range(1000):
        small_png(staging / f"IMG_{i:04d}.png", seed=i)
    session = watch([library], settings=replace(FAST, quiet=1.0, max_wait=30.0))
    shutil.copytree(staging, library / "import")
    session.settle(lambda: session.reader.count() == 1002, "all 1,000 copies to be indexed", timeout=180)
    batches = session.change_batches()
    assert sum(b.report.embedded for b in batches) == 1000
    assert len(batches) <= 5, [b.summary() for b in batches]


def test_a_file_still_being_written_waits_until_it_is_complete(watch, library, tmp_path):
    complete = small_png(tmp_path / "whole.png", seed=1, side=64).read_bytes()
    session = watch([library])
    target = library / "slow.png"
    with open(target, "wb") as writer:
        writer.write(complete[: len(complete) // 2])
        writer.flush()
        small_png(library / "quick.png", seed=2)  # a batch after this one shows the half file was seen
        wait_until(lambda: str(library / "quick.png") in session.indexed() and session.watcher.state().pending == 1,
                   "the quick file indexed and only the half-written one waiting")
        assert str(target) not in session.indexed() | session.failed()
        writer.write(complete[len(complete) // 2 :])
    session.settle(lambda: str(target) in session.indexed(), "the finished file to be indexed")
    assert str(target) not in session.failed()


def test_polling_finds_changes_where_no_events_arrive(watch, library, monkeypatch):
    import watchdog.observers

    class Deaf(watchdog.observers.Observer):  # a network share: the native observer would never hear a thing
        def schedule(self, *args, **kwargs):
            raise AssertionError("polling must not use the native observer")

    monkeypatch.setattr(watchdog.observers, "Observer", Deaf)
    session = watch([library], settings=replace(FAST, poll=0.2))
    small_png(library / "new" / "a.png", seed=5)
    (library / "red.jpg").rename(library / "renamed.jpg")
    expected = {str(library / p) for p in ("new/a.png", "renamed.jpg", "nested/green.png")}
    session.settle(lambda: session.indexed() == expected, "the polled changes")
    assert sum(b.report.embedded for b in session.change_batches()) == 1


@pytest.mark.parametrize("poll", [None, 0.2], ids=["events", "polling"])
def test_a_root_that_goes_away_keeps_its_images_and_is_caught_up_with_on_return(watch, library, tmp_path, poll):
    small_png(library / "more" / "b.png", seed=7)
    session = watch([library], settings=replace(FAST, poll=poll))
    everything = session.indexed()
    assert len(everything) == 3

    away = tmp_path / "unplugged"
    library.rename(away)
    session.settle(lambda: any("went away" in n for n in session.notices), "the root to be reported gone")
    assert session.indexed() == everything
    assert not session.watcher.state().roots[0].online

    library.mkdir()  # the empty mount point an unmounted disk leaves behind
    small_png(away / "while-away.png", seed=8)
    (away / "red.jpg").unlink()
    assert session.indexed() == everything
    library.rmdir()
    away.rename(library)
    session.settle(lambda: str(library / "while-away.png") in session.indexed(), "the catch-up with the returned root")
    assert session.watcher.state().roots[0].online
    assert session.indexed() == (everything - {str(library / "red.jpg")}) | {str(library / "while-away.png")}
    assert any("is back" in n for n in session.notices)

    small_png(library / "after.png", seed=9)
    session.settle(lambda: str(library / "after.png") in session.indexed(), "changes after the return to be followed")


def test_hidden_files_and_other_files_are_ignored(watch, library):
    session = watch([library])
    small_png(library / ".cache" / "thumb.png", seed=1)
    small_png(library / ".hidden.png", seed=2)
    (library / "notes.txt").write_text("not a picture")
    small_png(library / "seen.png", seed=3)
    session.settle(lambda: str(library / "seen.png") in session.indexed(), "the visible picture")
    assert session.indexed() == {str(library / p) for p in ("red.jpg", "nested/green.png", "seen.png")}
    assert not session.failed()


def test_an_edited_sidecar_re_reads_its_photo(watch, library):
    from tests.text.test_text_signals import XMP

    session = watch([library])
    (library / "red.xmp").write_text(XMP.format(description="harbour at dawn", tag1="boats", tag2="mist"))

    def description() -> str:
        record = session.reader.find(library / "red.jpg")
        return session.reader.text_signals(record.id).get("metadata", "")

    session.settle(lambda: "harbour at dawn" in description(), "the sidecar's description")
    assert sum(b.report.embedded for b in session.change_batches()) == 0, "same pixels: no model run"


def test_a_batch_that_meets_a_running_index_waits_for_it_then_goes_ahead(watch, library, tmp_path):
    from photoseek.store.catalog import Catalog

    session = watch([library])
    with Catalog(tmp_path / "catalog.db") as other, other.index_lock():  # an `photoseek index` at work
        small_png(library / "during.png", seed=4)
        wait_until(lambda: any("another index run" in n for n in session.notices), "the busy catalog to be noticed")
        assert str(library / "during.png") not in session.indexed()
    session.settle(lambda: str(library / "during.png") in session.searchable(), "the batch retried once free")


def test_an_interrupted_batch_says_so_and_what_it_kept(library, tmp_path, tiny_clip_dir):
    """Ctrl-C in the middle of a batch: its line says it was interrupted and what it kept, never 'nothing new'."""
    from photoseek import ImageIndex

    for i in range(6):
        small_png(library / "new" / f"n{i}.png", 100 + i)
    batches = []

    def ctrl_c_after_three(progress) -> None:
        if progress.done == 3:
            raise KeyboardInterrupt

    with ImageIndex(tmp_path / "c.db", model_path=tiny_clip_dir) as index:
        watcher = index.watcher(
            [library], settings=FAST, on_batch=batches.append, on_progress=ctrl_c_after_three, batch_size=2
        )
        with pytest.raises(KeyboardInterrupt):
            watcher.run()
        kept = index.count()
    assert batches[0].report.interrupted and 0 < kept < 8
    line = batches[0].summary()
    assert "interrupted" in line and f"kept {kept} embedded" in line and "nothing new" not in line, line
