"""The pending-change rules on a fake clock: debounce, stability, open files, moves kept together."""

from __future__ import annotations

from pathlib import Path

from photoseek.watch.changes import PendingChanges
from photoseek.watch.settings import WatchSettings

SETTINGS = WatchSettings(quiet=2.0, settle=1.0, max_wait=30.0, open_timeout=100.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pending() -> tuple[PendingChanges, Clock]:
    clock = Clock()
    return PendingChanges(SETTINGS, clock), clock


def _file(path: Path, size: int = 10) -> str:
    path.write_bytes(b"x" * size)
    return str(path)


def test_a_burst_waits_for_a_pause_then_comes_as_one_batch(tmp_path):
    pending, clock = _pending()
    paths = []
    for i in range(100):
        paths.append(_file(tmp_path / f"{i}.png"))
        pending.add(paths[-1])
        clock.now += 0.05
    assert pending.take_ready() == [], "changes are still arriving"
    clock.now += SETTINGS.quiet / 2
    assert pending.take_ready() == [], "changes paused, but not for long enough"
    clock.now += SETTINGS.quiet / 2
    assert pending.take_ready() == paths
    assert len(pending) == 0


def test_a_steady_stream_is_still_indexed_after_max_wait(tmp_path):
    pending, clock = _pending()
    first = _file(tmp_path / "first.png")
    pending.add(first)
    for i in range(int(SETTINGS.max_wait / 0.5)):
        clock.now += 0.5
        pending.add(_file(tmp_path / f"{i}.png"))
    assert first in pending.take_ready()
    assert len(pending) > 0, "the newest files are not steady yet"


def test_a_file_that_keeps_changing_waits_until_it_stops(tmp_path):
    pending, clock = _pending()
    path = _file(tmp_path / "copying.png", size=10)
    pending.add(path)
    clock.now += SETTINGS.quiet
    _file(tmp_path / "copying.png", size=20)  # grew without an event (polling between scans)
    assert pending.take_ready() == []
    clock.now += SETTINGS.settle / 2
    assert pending.take_ready() == [], "steady, but not for `settle` seconds yet"
    clock.now += SETTINGS.settle / 2
    assert pending.take_ready() == [path]


def test_a_file_open_for_writing_waits_for_its_close_or_the_open_timeout(tmp_path):
    pending, clock = _pending()
    closed = _file(tmp_path / "closed.png")
    pending.add(closed, writing=True)
    never_closed = _file(tmp_path / "never.png")
    pending.add(never_closed, writing=True)
    clock.now += 10 * SETTINGS.settle
    assert pending.take_ready() == []
    pending.add(closed, writing=False)
    clock.now += SETTINGS.quiet + SETTINGS.settle
    assert pending.take_ready() == [closed]
    clock.now += SETTINGS.open_timeout
    assert pending.take_ready() == [never_closed]


def test_a_vanished_path_waits_while_other_changes_settle_so_a_move_reuses_its_embedding(tmp_path):
    pending, clock = _pending()
    old, new = str(tmp_path / "old.png"), _file(tmp_path / "new.png")
    pending.add(old)
    pending.add(new, writing=True)  # e.g. copied then the original deleted, the copy still being written
    clock.now += SETTINGS.quiet
    assert pending.take_ready() == []
    pending.add(new, writing=False)
    clock.now += SETTINGS.quiet + SETTINGS.settle
    assert sorted(pending.take_ready()) == sorted([old, new])


def test_forgetting_a_folder_drops_only_its_changes(tmp_path):
    pending, _ = _pending()
    for name in ("disk/a.png", "disk/sub/b.png", "disk2/c.png"):
        pending.add(str(tmp_path / name))
    assert pending.discard_below(str(tmp_path / "disk")) == 2
    assert len(pending) == 1
