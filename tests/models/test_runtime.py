"""One runtime for every model kind: `--device` reaches CLIP, the text model, OCR, the captioner and the
detector alike, and every model loads on first use, unloads, and reloads.

A GPU is simulated where it matters: onnxruntime reports CUDAExecutionProvider and torch reports CUDA,
so a model kind that ignored `--device cpu` would plan (and, for torch, try) the GPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from photoseek import ImageIndex
from photoseek.ingest.signals import SignalOptions
from photoseek.models.device import CPU, CUDA, DeviceError
from photoseek.text.caption import Captioner
from photoseek.text.objects import ObjectCounter
from photoseek.text.ocr import OcrReader
from tests.helpers import draw_photo, run_cli, run_json

CUDA_OPTIONS = {"arena_extend_strategy": "kSameAsRequested"}
MODEL_COMMANDS = (
    ("index",), ("search",), ("similar",), ("watch",), ("topics",), ("eval",), ("caption",), ("finetune",),
    ("serve",), ("status",), ("calibrate",), ("models", "list"),
)
"""Every command that runs a model (or plans where one runs)."""


@pytest.fixture
def simulated_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine seems to have a GPU: onnxruntime offers CUDA, torch sees one."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    draw_photo(root / "red.png", "red")
    draw_photo(root / "blue.jpg", "blue", shape="square")
    return root


def _torch_device(maker: Captioner | ObjectCounter) -> str:
    return str(maker.load()[1].device)


def test_cpu_device_plans_the_cpu_for_every_model_kind(
    simulated_gpu: None, tmp_path: Path, tiny_clip_dir: Path, text_model_cache: Path,
    tiny_blip_dir: Path, tiny_detr_dir: Path,
) -> None:
    with ImageIndex(tmp_path / "c.db", model_path=tiny_clip_dir, device="cpu") as index:
        assert index.model.visual.planned == index.model.textual.planned == [(CPU, {})]
        assert index.text_model.session.planned == [(CPU, {})]
        ocr, captioner, detector = SignalOptions(
            ocr=True, captions=True, objects=True, caption_model=str(tiny_blip_dir), detector=str(tiny_detr_dir)
        ).makers(index.runtime)
        assert isinstance(ocr, OcrReader) and isinstance(captioner, Captioner)
        assert isinstance(detector, ObjectCounter)
        assert ocr.providers() == [(CPU, {})]
        assert _torch_device(captioner) == _torch_device(detector) == "cpu"
    with ImageIndex(tmp_path / "auto.db", model_path=tiny_clip_dir) as index:  # the same, on auto: the GPU
        assert index.model.visual.planned[0][0] == index.text_model.session.planned[0][0] == CUDA
        assert OcrReader(runtime=index.runtime).providers()[0] == (CUDA, {"device_id": 0, **CUDA_OPTIONS})
        from photoseek.text.hf import torch_device

        assert torch_device(index.runtime)[0].type == "cuda"


def test_index_with_every_signal_runs_on_the_cpu_when_told(
    simulated_gpu: None, photos: Path, tmp_path: Path, tiny_clip_dir: Path, tiny_blip_dir: Path, tiny_detr_dir: Path,
) -> None:
    """Torch believes in a GPU that is not there: a captioner or detector that ignored --device cpu
    would fail to load onto it."""
    pytest.importorskip("rapidocr_onnxruntime")
    report = run_json(
        "index", photos, "--db", tmp_path / "c.db", "--model-path", tiny_clip_dir, "--device", "cpu",
        "--ocr", "--captions", "--caption-model", tiny_blip_dir, "--objects", "--detector", tiny_detr_dir,
    )
    assert report["providers"] == [CPU]
    assert report["signals"] == {"ocr": 2, "caption": 2, "objects": 2}


def test_models_load_on_first_use_unload_and_load_again(
    tmp_path: Path, tiny_clip_dir: Path, text_model_cache: Path
) -> None:
    with ImageIndex(tmp_path / "c.db", model_path=tiny_clip_dir, device="cpu") as index:
        runtime = index.runtime
        assert runtime.loaded() == []  # nothing loads before it is used
        before = index.model.encode_texts(["a lighthouse"])
        words = index.text_model.embed_queries(["a lighthouse"])
        loaded = runtime.loaded()
        assert len(loaded) == 2 and any(label.endswith("textual") for label in loaded), loaded
        assert runtime.release_idle(3600) == []  # used just now: kept
        assert sorted(runtime.release_idle(0)) == loaded and runtime.loaded() == []
        assert index.model.providers() == [CPU]  # planned again until it reloads
        assert index.model.encode_texts(["another query"]).shape == before.shape
        np.testing.assert_allclose(index.text_model.embed_passages(["a lighthouse"]), words, atol=1e-6)
        assert len(runtime.loaded()) == 2
        assert sorted(runtime.unload_all()) == loaded


def test_an_unknown_device_is_one_line_that_says_what_to_use(tmp_path: Path, photos: Path) -> None:
    with pytest.raises(DeviceError, match="use one of auto, cpu, cuda, cuda:N, coreml"):
        ImageIndex(tmp_path / "c.db", device="gpu")
    assert not (tmp_path / "c.db").exists()
    db = ("--db", tmp_path / "c.db")
    for command in (("similar", photos / "red.png", *db), ("caption", photos), ("topics", *db), ("watch", photos, *db)):
        output = run_cli(*command, "--device", "gpu", expect=2)
        assert "Unknown device 'gpu': use one of" in output and "Traceback" not in output, command
        assert len(output.strip().splitlines()) == 1, output
    assert not (tmp_path / "c.db").exists()


@pytest.mark.parametrize("command", MODEL_COMMANDS, ids=" ".join)
def test_every_model_command_offers_device(command: tuple[str, ...]) -> None:
    shown = run_cli(*command, "--help")
    assert "--device" in shown and "cuda:1" in shown, command


def test_similar_topics_and_caption_run_on_the_cpu_when_told(
    simulated_gpu: None, photos: Path, tmp_path: Path, tiny_clip_dir: Path, tiny_blip_dir: Path,
    text_model_cache: Path,
) -> None:
    db = tmp_path / "c.db"
    run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir, "--device", "cpu")
    hits = run_json("similar", photos / "red.png", "--db", db, "--device", "cpu", "--min-score", "-1")
    assert [Path(h["path"]).name for h in hits["results"]] == ["blue.jpg"]
    assert run_json("topics", "--db", db, "--device", "cpu", "--weight", "text=0")["images"] == 2
    captions = run_json("caption", photos, "--caption-model", tiny_blip_dir, "--device", "cpu")["captions"]
    assert len(captions) == 2 and all(c["caption"] for c in captions)
