"""`photoseek watch` as a user runs it: JSON lines per batch, Ctrl+C, a kill, a restart that catches up."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from tests.helpers import draw_photo, run_cli, wait_until
from tests.watch.conftest import TIMEOUT, small_png


def _as_a_terminal_starts_it() -> None:
    """Ctrl+C's signal at its default in the child: a child inherits an ignored SIGINT (and Python then
    never turns it into KeyboardInterrupt), and something earlier in a test session may have left the
    test process ignoring it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class WatchProcess:
    """`photoseek watch --json` in a child process, its stdout lines collected as they come."""

    def __init__(self, root: Path, db: Path, model_dir: Path) -> None:
        command = [sys.executable, "-X", "faulthandler", "-m", "photoseek", "watch", str(root), "--db", str(db),
                   "--model-path", str(model_dir), "--debounce", "0.3", "--json"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        preexec_fn=_as_a_terminal_starts_it)
        self.batches: list[dict] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.batches.append(json.loads(line))

    def wait_for(self, count: int, what: str) -> dict:
        wait_until(lambda: len(self.batches) >= count or self.process.poll() is not None, what, TIMEOUT * 2)
        assert len(self.batches) >= count, self.process.stderr.read()
        return self.batches[count - 1]

    def stop(self, how: signal.Signals) -> tuple[int, str]:
        self.process.send_signal(how)
        try:
            code = self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:  # say where it hangs: faulthandler prints every thread's stack
            self.process.send_signal(signal.SIGABRT)
            self.process.wait(TIMEOUT)
            raise AssertionError(f"watch did not stop on {how.name}:\n{self.process.stderr.read()}") from None
        self.reader.join(TIMEOUT)
        return code, self.process.stderr.read()


def test_watch_prints_a_json_line_per_batch_survives_a_kill_and_catches_up(tmp_path, tiny_clip_dir):
    root = tmp_path / "photos"
    draw_photo(root / "red.jpg", "red")
    db = tmp_path / "c.db"

    first = WatchProcess(root, db, tiny_clip_dir)
    try:
        catch_up = first.wait_for(1, "the catch-up line")
        assert (catch_up["kind"], catch_up["embedded"], catch_up["batch"]) == ("catch-up", 1, 1)
        small_png(root / "new.png", seed=1)
        change = first.wait_for(2, "the batch line of the new file")
        assert (change["kind"], change["paths"], change["embedded"]) == ("changes", 1, 1)
    finally:
        code, _ = first.stop(signal.SIGKILL)
    assert code == -signal.SIGKILL
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    (root / "red.jpg").unlink()  # changed while nothing watched
    small_png(root / "later.png", seed=2)
    second = WatchProcess(root, db, tiny_clip_dir)
    try:
        catch_up = second.wait_for(1, "the catch-up after the restart")
        assert (catch_up["embedded"], catch_up["unchanged"], catch_up["removed"]) == (1, 1, 1)
    finally:
        code, stderr = second.stop(signal.SIGINT)
    assert code == 0 and "Stopped watching" in stderr

    third = WatchProcess(root, db, tiny_clip_dir)  # as a service manager stops it
    try:
        assert third.wait_for(1, "the third catch-up")["embedded"] == 0
    finally:
        code, stderr = third.stop(signal.SIGTERM)
    assert code == 0 and "Stopped watching" in stderr


def test_watch_refuses_a_missing_folder_or_a_file(tmp_path, tiny_clip_dir):
    output = run_cli("watch", tmp_path / "nope", "--db", tmp_path / "c.db", "--model-path", tiny_clip_dir, expect=3)
    assert "No such folder" in output
    photo = draw_photo(tmp_path / "one.jpg", "red")
    output = run_cli("watch", photo, "--db", tmp_path / "c.db", "--model-path", tiny_clip_dir, expect=2)
    assert "not a folder" in output
