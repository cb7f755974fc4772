"""Every bench script still starts: the benchmarks are run by hand, so a moved or deleted function they
import would otherwise be found only when someone next measures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if p.stem not in ("benchpaths", "measure"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_the_bench_script_imports_and_explains_itself(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(BENCH.parent / "src")},
    )
    assert done.returncode == 0 and "usage" in done.stdout.lower(), done.stderr[-2000:]
