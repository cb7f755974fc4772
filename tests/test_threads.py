"""One CPU budget for decoding, inference and BLAS: affinity, container quota, and the override."""

from __future__ import annotations

import os

import pytest

from photoseek import threads


@pytest.fixture(autouse=True)
def fresh_budget():
    """Each test sizes the BLAS budget afresh from its own thread setting, and leaves it to be sized again."""
    threads.usable_cpus.cache_clear()
    threads._BLAS = threads._Blas()
    yield
    threads.usable_cpus.cache_clear()
    threads._BLAS = threads._Blas()


def test_cgroup_v2_and_v1_quotas(tmp_path):
    v2 = tmp_path / "cpu.max"
    v1 = (tmp_path / "quota", tmp_path / "period")
    v2.write_text("150000 100000\n")
    assert threads.cgroup_quota(v2, v1) == 1.5
    v2.write_text("max 100000\n")
    assert threads.cgroup_quota(v2, v1) is None
    v2.unlink()
    v1[0].write_text("50000\n")
    v1[1].write_text("100000\n")
    assert threads.cgroup_quota(v2, v1) == 0.5
    v1[0].write_text("-1\n")
    assert threads.cgroup_quota(v2, v1) is None


def test_quota_caps_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(threads, "_affinity", lambda: 16)
    monkeypatch.setattr(threads, "cgroup_quota", lambda: 2.5)
    assert threads.usable_cpus() == 3
    assert threads.model_threads() == threads.decode_workers() == 3


def test_override_and_spinning(monkeypatch):
    monkeypatch.setenv(threads.THREADS_ENV, "5")
    assert threads.usable_cpus() == 5
    assert threads.ort_spinning() is False
    monkeypatch.setenv(threads.SPIN_ENV, "1")
    assert threads.ort_spinning() is True


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux affinity masks")
def test_taskset_is_respected():
    import subprocess
    import sys

    code = "from photoseek.threads import usable_cpus; print(usable_cpus())"
    pinned = subprocess.run(
        [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{0}}); {code}"],
        capture_output=True, text=True, check=True,
    )
    assert pinned.stdout.strip() == "1"


def test_faiss_gets_the_same_budget_and_idle_threads_sleep():
    import subprocess
    import sys

    pytest.importorskip("faiss")
    code = ("import os; from photoseek.threads import load_faiss; f = load_faiss(); "
            "print(f.omp_get_max_threads(), os.environ['OMP_WAIT_POLICY'])")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}

    def run(**extra: str) -> str:
        done = subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True,
                              check=True)
        return done.stdout.strip()

    assert run(PHOTOSEEK_THREADS="1") == "1 PASSIVE"
    assert run(PHOTOSEEK_THREADS="1", OMP_NUM_THREADS="2", OMP_WAIT_POLICY="ACTIVE") == "2 ACTIVE"  # the user's wins


def test_openblas_threads_sleep_when_idle_and_keep_their_number():
    """Set when photoseek is imported, before numpy starts OpenBLAS: its idle threads sleep at once
    instead of spinning ~0.1 s after every call (CPU measured in bench/startup_bench.py)."""
    import subprocess
    import sys

    code = ("import os, photoseek, numpy; from threadpoolctl import threadpool_info; "
            "print(os.environ['OPENBLAS_THREAD_TIMEOUT'], "
            "max(b['num_threads'] for b in threadpool_info() if b['user_api'] == 'blas'))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}

    def run(**extra: str) -> list[str]:
        done = subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True,
                              check=True)
        return done.stdout.split()

    timeout, count = run()
    assert timeout == "4" and int(count) == os.cpu_count()  # as many threads as before, only quieter
    assert run(OPENBLAS_THREAD_TIMEOUT="20")[0] == "20"  # the user's wins


def _blas_threads() -> set[int]:
    from threadpoolctl import threadpool_info

    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_one_query_is_scored_on_one_blas_thread_and_a_batch_on_the_budget(monkeypatch):
    """threadpoolctl's own report, read while the exact index ranks its scores."""
    import numpy as np

    from photoseek.store import vectors

    seen: list[set[int]] = []
    real_rank = vectors.rank

    def rank_and_look(*args):
        seen.append(_blas_threads())
        return real_rank(*args)

    monkeypatch.setattr(vectors, "rank", rank_and_look)
    matrix = np.random.default_rng(0).standard_normal((5000, 64)).astype(np.float16)
    index = vectors.ExactIndex(vectors.VectorStore(np.arange(5000), matrix, 0, "e", "m"))
    index.search(matrix[0].astype(np.float32), 5)
    assert seen[-1] == {1}
    index.search_many(matrix[:3].astype(np.float32), 5)
    budget = _blas_threads()
    assert seen[-1] == budget and max(budget) <= threads.usable_cpus()


def test_blas_threads_never_exceed_the_budget_and_faiss_blas_is_bounded_too():
    import subprocess
    import sys

    code = ("import numpy as np; from photoseek.store.vectors import ExactIndex, VectorStore; "
            "from photoseek.threads import load_faiss; from tests.test_threads import _blas_threads; "
            "load_faiss(); m = np.eye(8, dtype=np.float16); "
            "ExactIndex(VectorStore(np.arange(8), m, 0, 'e', 'm')).search_many(np.eye(8, dtype=np.float32)[:3], 2); "
            "print(sorted(_blas_threads()))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "OPENBLAS_"))}
    pytest.importorskip("faiss")
    done = subprocess.run([sys.executable, "-c", code], env={**env, "PHOTOSEEK_THREADS": "1"}, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[1]"


def test_overlapping_single_query_scopes_keep_one_thread_until_the_last_closes():
    """The server scores lone queries on several threads at once: one closing must not give BLAS
    its threads back under another that is still scoring."""
    import numpy as np

    np.ones(4) @ np.ones(4)  # BLAS loaded
    first, second = threads.blas_threads(single=True), threads.blas_threads(single=True)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert _blas_threads() == {1}
    second.__exit__(None, None, None)
    assert _blas_threads() == set(threads._blas().budget.values())  # the budget again (2 on 2 cores)


def test_a_blas_that_an_import_brings_later_is_bounded_too():
    """scipy (like faiss or torch) loads an OpenBLAS of its own after the first search looked."""
    import subprocess
    import sys

    pytest.importorskip("scipy")
    code = """
import numpy as np
from photoseek.store import vectors
matrix = np.random.default_rng(0).standard_normal((2000, 32)).astype(np.float16)
index = vectors.ExactIndex(vectors.VectorStore(np.arange(2000), matrix, 0, "e", "m"))
index.search(matrix[0].astype(np.float32), 5)
import scipy.linalg
from threadpoolctl import threadpool_info
seen = []
real_rank = vectors.rank
def look(*args):
    seen.append(sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}))
    return real_rank(*args)
vectors.rank = look
index.search(matrix[0].astype(np.float32), 5)
print(len([lib for lib in threadpool_info() if lib["user_api"] == "blas"]), seen[-1])
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS_", "OMP_"))}
    done = subprocess.run([sys.executable, "-c", code], env={**env, "PHOTOSEEK_THREADS": "2"},
                          capture_output=True, text=True, check=True)
    libraries, threads_seen = done.stdout.split(" ", 1)
    assert int(libraries) >= 2 and threads_seen.strip() == "[1]", done.stdout


def test_leave_a_core_takes_one_thread_from_sessions_and_blas(monkeypatch):
    import numpy as np

    from photoseek.models.runtime import Runtime
    from photoseek.store import vectors

    monkeypatch.setenv(threads.THREADS_ENV, "2")
    threads.usable_cpus.cache_clear()
    try:
        assert Runtime().session_options().intra_op_num_threads == 2
        with threads.leave_a_core():
            assert Runtime().session_options().intra_op_num_threads == threads.model_threads() == 1
            seen: list[set[int]] = []
            real_rank = vectors.rank
            monkeypatch.setattr(vectors, "rank", lambda *args: seen.append(_blas_threads()) or real_rank(*args))
            matrix = np.random.default_rng(0).standard_normal((2000, 32)).astype(np.float16)
            vectors.ExactIndex(vectors.VectorStore(np.arange(2000), matrix, 0, "e", "m")).search_many(
                matrix[:3].astype(np.float32), 5)
            assert seen and all(s == {1} for s in seen)  # a batch too, where only one thread is left
        assert threads.model_threads() == 2
    finally:
        threads.usable_cpus.cache_clear()
