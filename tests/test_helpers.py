"""The test and benchmark infrastructure: one way to find shared data, nothing written into the checkout."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import artifacts_dir, shared_data

REPO = Path(__file__).resolve().parents[1]
SPELLED_OUT = re.compile(r"""["']shared["']|\.\./shared|/shared/data""")
"""A test that builds the shared data path itself instead of asking tests.helpers.shared_data."""


def test_shared_data_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PHOTOSEEK_SHARED_DATA", str(tmp_path))
    (tmp_path / "formats").mkdir()
    (tmp_path / "formats" / "x.jpg").write_bytes(b"")
    assert shared_data("formats", "x.jpg") == tmp_path / "formats" / "x.jpg"


def test_shared_data_defaults_to_the_folder_beside_the_checkout(monkeypatch):
    monkeypatch.delenv("PHOTOSEEK_SHARED_DATA", raising=False)
    monkeypatch.delenv("IMGSEARCH_SHARED_DATA", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PHOTOSEEK_REQUIRE_SHARED_DATA", raising=False)
    assert shared_data() == REPO.parent.joinpath("shared", "data")


_NEEDS_DATA = """
import pytest
from tests.helpers import shared_data

COCO = shared_data("coco-mini")
pytestmark = pytest.mark.skipif(not COCO.is_dir(), reason="needs shared COCO data")

def test_reads_coco():
    assert COCO.is_dir()
"""


@pytest.mark.parametrize(("required", "outcome"), [
    ({}, "1 skipped"),
    ({"PHOTOSEEK_REQUIRE_SHARED_DATA": "1"}, "1 error"),
    ({"CI": "true"}, "1 error"),
    ({"CI": "false"}, "1 skipped"),
])
def test_missing_shared_data_fails_under_ci_and_skips_elsewhere(tmp_path, required, outcome):
    """A test module that needs the data, run by pytest with the data path pointing nowhere: CI (or
    .ci/run's PHOTOSEEK_REQUIRE_SHARED_DATA=1) turns the silent skip into a failure naming the variable."""
    test_file = tmp_path / "test_needs_data.py"
    test_file.write_text(_NEEDS_DATA, encoding="utf-8")
    env = {key: value for key, value in os.environ.items()
           if key not in {"CI", "PHOTOSEEK_REQUIRE_SHARED_DATA", "IMGSEARCH_SHARED_DATA"}}
    env |= {"PHOTOSEEK_SHARED_DATA": str(tmp_path / "nowhere"), "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}",
            **required}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(test_file)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert outcome in done.stdout, done.stdout
    if outcome == "1 error":
        assert done.returncode != 0
        assert "PHOTOSEEK_SHARED_DATA" in done.stdout and str(tmp_path / "nowhere" / "coco-mini") in done.stdout
    else:
        assert done.returncode == 0


def test_no_test_or_benchmark_spells_out_the_shared_data_path():
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in [*(REPO / "tests").rglob("*.py"), *(REPO / "bench").glob("*.py")]
        if path.name not in {"helpers.py", "benchpaths.py", Path(__file__).name}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if SPELLED_OUT.search(line.split("#")[0])
    ]
    assert not offenders, f"use tests.helpers.shared_data / bench/benchpaths.py instead: {offenders}"


def test_artifacts_go_outside_the_checkout(monkeypatch, tmp_path):
    monkeypatch.delenv("PHOTOSEEK_TEST_ARTIFACTS", raising=False)
    assert not artifacts_dir().resolve().is_relative_to(REPO)
    monkeypatch.setenv("PHOTOSEEK_TEST_ARTIFACTS", str(tmp_path / "shots"))
    assert artifacts_dir() == tmp_path / "shots" and (tmp_path / "shots").is_dir()


def test_benchmarks_write_results_outside_the_checkout_by_default(monkeypatch, tmp_path):
    script = (
        "import sys; sys.path.insert(0, 'bench'); import benchpaths, pathlib; "
        "p = benchpaths.write_results({'x': 1}, None, 'probe.json'); "
        "print(p.resolve().is_relative_to(pathlib.Path('.').resolve()))"
    )
    monkeypatch.delenv("PHOTOSEEK_BENCH_RESULTS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "False"
    assert "Results written to" in result.stderr and list((tmp_path / "cache").rglob("probe.json"))


def test_benchmarks_offer_out():
    for name in ("index_bench.py", "serve_bench.py", "search_bench.py"):
        text = (REPO / "bench" / name).read_text(encoding="utf-8")
        assert '"--out"' in text, f"{name} must take --out"
        assert '"bench" / "results"' not in text, f"{name} must not default into the checkout"


def test_every_benchmark_reports_cpu_seconds_and_load_next_to_wall(monkeypatch, tmp_path):
    """Each script runs its main() under bench/measure.py's measured_run; write_results records the
    run's CPU seconds and load average in the JSON; a span's CPU counts work, not waiting."""
    helpers = {"benchpaths.py", "measure.py"}
    for script in sorted((REPO / "bench").glob("*.py")):
        if script.name not in helpers:
            assert "with measured_run():" in script.read_text(encoding="utf-8"), f"{script.name}: wrap main()"
    script = (
        "import sys, time; sys.path.insert(0, 'bench'); import benchpaths, measure\n"
        "with measure.measured_run():\n"
        "    with measure.span() as busy: sum(range(3_000_000))\n"
        "    with measure.span() as idle: time.sleep(0.3)\n"
        "    benchpaths.write_results({'busy': busy.as_dict(), 'idle': idle.as_dict(per=3)}, None, 'probe.json')\n"
    )
    monkeypatch.setenv("PHOTOSEEK_BENCH_RESULTS", str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    written = json.loads((tmp_path / "probe.json").read_text())
    assert written["busy"]["cpu_s"] > 0 and written["busy"]["wall_s"] > 0
    assert written["idle"]["wall_ms"] >= 90 and written["idle"]["cpu_ms"] < 50
    assert len(written["idle"]["load_average"]) == 3
    assert written["run"]["cpu_s"] > 0 and len(written["run"]["load_average"]) == 3
    assert "-c: wall" in result.stderr and "CPU" in result.stderr and "load average" in result.stderr
