"""--device: provider planning, clear errors for missing providers, CPU fallback, I/O binding parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from photoseek.api import ImageIndex
from photoseek.models import device as device_mod
from photoseek.models import load_clip
from photoseek.models.device import (
    COREML,
    CPU,
    CUDA,
    Device,
    DeviceError,
    check_session_providers,
    parse_device,
    plan_providers,
)
from photoseek.models.runtime import Runtime
from photoseek.models.session import LazySession
from tests.helpers import draw_photo, run_cli, run_json

needs_no_cuda = pytest.mark.skipif(
    CUDA in device_mod.available_providers(), reason="this machine has CUDA: the missing-provider error cannot happen"
)


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        (None, Device("auto")),
        ("CPU", Device("cpu")),
        ("cuda", Device("cuda", 0)),
        (" cuda:2 ", Device("cuda", 2)),
        ("coreml", Device("coreml")),
    ],
)
def test_parse_device(spec: str | None, parsed: Device) -> None:
    assert parse_device(spec) == parsed


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:-1", "cpu:1", "coreml:0", "cuda:x"])
def test_bad_device_names_the_choices(spec: str) -> None:
    with pytest.raises(DeviceError, match="auto, cpu, cuda, cuda:N, coreml"):
        parse_device(spec)


def test_plan_prefers_a_gpu_and_keeps_cpu_as_last_resort() -> None:
    gpu_build = [CUDA, CPU]
    assert plan_providers("auto", gpu_build) == [
        (CUDA, {"device_id": 0, "arena_extend_strategy": "kSameAsRequested"}),
        (CPU, {}),
    ]
    assert plan_providers("cuda:1", gpu_build)[0][1]["device_id"] == 1
    assert plan_providers("cpu", gpu_build) == [(CPU, {})]
    assert plan_providers("auto", [COREML, CPU]) == [(COREML, {}), (CPU, {})]
    assert plan_providers("auto", [CPU]) == [(CPU, {})]


def test_missing_provider_names_what_to_install() -> None:
    with pytest.raises(DeviceError, match=r"photoseek\[gpu\].*pip uninstall -y onnxruntime.*--device cpu"):
        plan_providers("cuda", [CPU])
    with pytest.raises(DeviceError, match="macOS"):
        plan_providers("coreml", [CUDA, CPU])


def test_explicit_gpu_that_fell_back_to_cpu_is_refused() -> None:
    planned = plan_providers("cuda", [CUDA, CPU])
    with pytest.raises(DeviceError, match="could not start CUDAExecutionProvider.*--device cpu"):
        check_session_providers("cuda", planned, [CPU])
    check_session_providers("auto", plan_providers("auto", [CUDA, CPU]), [CPU])  # auto may fall back
    check_session_providers("cuda", planned, [CUDA, CPU])


def test_cpu_and_auto_run_on_the_cpu_provider(tiny_clip_dir: Path) -> None:
    explicit = load_clip(path=tiny_clip_dir, runtime=Runtime("cpu"))
    auto = load_clip(path=tiny_clip_dir)
    assert explicit.providers() == [CPU]  # planned, nothing loaded yet
    np.testing.assert_allclose(explicit.encode_texts(["a dog"]), auto.encode_texts(["a dog"]), atol=1e-6)
    assert explicit.textual.session.get_providers() == [CPU] == explicit.providers()
    if CUDA not in device_mod.available_providers():
        assert auto.providers() == [CPU]  # auto fell back to the CPU


@needs_no_cuda
def test_cuda_without_the_gpu_build_fails_before_loading(tiny_clip_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match=r"CUDAExecutionProvider.*photoseek\[gpu\]"):
        load_clip(path=tiny_clip_dir, runtime=Runtime("cuda"))
    with pytest.raises(DeviceError, match=r"photoseek\[gpu\]"):
        ImageIndex(tmp_path / "catalog.db", device="cuda:1")
    assert not (tmp_path / "catalog.db").exists()


def test_io_binding_gives_the_same_embeddings(tiny_clip_dir: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.normal(size=(5, 3, 48, 48)).astype(np.float32)
    tokens = rng.integers(1, 49000, size=(3, 77)).astype(np.int32)
    for rel, feeds in (("visual/model.onnx", {"image": pixels}), ("textual/model.onnx", {"text": tokens})):
        plain = LazySession(tiny_clip_dir / rel, Runtime("cpu"), io_binding=False)
        bound = LazySession(tiny_clip_dir / rel, Runtime("cpu"), io_binding=True)
        assert not plain.io_binding and bound.io_binding
        np.testing.assert_array_equal(bound.run(feeds), plain.run(feeds))


def test_io_binding_is_on_by_default_only_on_cuda(tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not LazySession(tiny_clip_dir / "visual/model.onnx", Runtime("cpu")).io_binding
    monkeypatch.setattr(device_mod, "available_providers", lambda: [CUDA, CPU])
    assert LazySession(tiny_clip_dir / "visual/model.onnx", Runtime("cuda")).io_binding


def test_cli_device_choice_and_status(tiny_clip_dir: Path, tmp_path: Path) -> None:
    root, db = tmp_path / "photos", tmp_path / "catalog.db"
    draw_photo(root / "red.jpg", "red")
    draw_photo(root / "blue.png", "blue", "square")
    report = run_json("index", root, "--db", db, "--model-path", tiny_clip_dir, "--device", "cpu")
    assert report["providers"] == [CPU] and report["images"] == 2
    hits = run_json("search", "a red circle", "--db", db, "--device", "cpu", "--mode", "clip", "--min-score", "-1")
    assert len(hits["results"]) == 2
    assert run_json("status", "--db", db)["providers"] == [CPU]
    assert "Runs on: CPUExecutionProvider" in run_cli("status", "--db", db, "--device", "cpu")
    assert "gpu" in run_cli("search", "x", "--db", db, "--device", "gpu", expect=2)
    listing = run_json("models", "list", "--device", "cpu")
    assert listing["providers"] == [CPU] and CPU in listing["available_providers"]


@needs_no_cuda
def test_cli_cuda_without_gpu_build_is_one_clear_line(tiny_clip_dir: Path, tmp_path: Path) -> None:
    draw_photo(tmp_path / "photos" / "red.jpg", "red")
    db = ("--db", tmp_path / "c.db")
    for command in (
        ("index", tmp_path / "photos", "--model-path", tiny_clip_dir, *db),
        ("search", "a dog", *db),
        ("serve", "--port", "0", *db),
        ("models", "list"),
    ):
        output = run_cli(*command, "--device", "cuda", expect=4)
        assert "photoseek[gpu]" in output and "Traceback" not in output, command
    assert not (tmp_path / "c.db").exists()


_ASK = """
import json, sys
from photoseek.models.device import available_providers
print(json.dumps({"providers": available_providers(), "imported": "onnxruntime" in sys.modules}))
"""


def _providers_in_new_process(cache: Path) -> dict[str, object]:
    """What a fresh process (ONNX Runtime not imported yet) says this build offers."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    done = subprocess.run([sys.executable, "-c", _ASK], env=env, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_the_providers_are_remembered_per_onnxruntime_build(tmp_path: Path) -> None:
    """`status` names the providers without importing ONNX Runtime (0.13 CPU-s) once a command has asked it;
    a remembered answer for another build (an upgrade, onnxruntime-gpu swapped in) is asked again."""
    import json

    real = device_mod.available_providers()
    first = _providers_in_new_process(tmp_path)
    assert first == {"providers": real, "imported": True}
    remembered = tmp_path / "photoseek" / "onnxruntime-providers.json"
    kept = json.loads(remembered.read_text())
    assert kept["providers"] == real and kept["build"] == device_mod._build_stamp()
    assert _providers_in_new_process(tmp_path) == {"providers": real, "imported": False}

    # The remembered answer is what the plan uses: a build said to have CUDA plans CUDA ...
    remembered.write_text(json.dumps({**kept, "providers": [CUDA, CPU]}))
    assert _providers_in_new_process(tmp_path) == {"providers": [CUDA, CPU], "imported": False}
    # ... but only for that very build: another one is asked, and the answer replaced.
    remembered.write_text(json.dumps({"build": "an older onnxruntime", "providers": [CUDA, CPU]}))
    assert _providers_in_new_process(tmp_path) == {"providers": real, "imported": True}
    assert json.loads(remembered.read_text())["providers"] == real
    remembered.write_text("{half a file")  # unreadable: asked again, never an error
    assert _providers_in_new_process(tmp_path) == {"providers": real, "imported": True}


def test_a_patched_provider_list_is_never_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a list asked of the module the call itself imported is kept: what a test (or a caller)
    patched into an already imported onnxruntime never reaches the user's cache."""
    import onnxruntime as ort

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    assert device_mod.available_providers() == [CUDA, CPU]
    assert not (tmp_path / "photoseek" / "onnxruntime-providers.json").exists()
