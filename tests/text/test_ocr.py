"""OCR runs on the runtime's device: RapidOCR alone can only use the first GPU, so with `--device cuda:N`
its three sessions are made on GPU N. No GPU here: onnxruntime is made to offer CUDA, and each
session it is asked for records its providers, then runs on the CPU (ONNX Runtime's CPU build
cannot start CUDA), so the text is still read and checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest

from photoseek.ingest.signals import SignalOptions
from photoseek.models.device import CPU, CUDA, DeviceError
from photoseek.models.runtime import Runtime
from photoseek.text.ocr import OcrReader
from tests.helpers import render_sign

pytest.importorskip("rapidocr_onnxruntime")  # imported now: its own (CPU) sessions are never recorded below
RealSession = ort.InferenceSession


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any]]]:
    """(model file, providers) of every session photoseek makes; onnxruntime seems to offer CUDA, and
    a session asked for it reports running on it, so only where the providers go is simulated."""
    made: list[tuple[str, list[Any]]] = []

    class Recorded(RealSession):  # type: ignore[misc, valid-type]
        def __init__(self, path: str, sess_options: Any = None, providers: Any = None, **kwargs: Any) -> None:
            made.append((Path(path).name, providers))
            super().__init__(path, sess_options=sess_options, providers=[CPU], **kwargs)
            self._asked = [name for name, _ in providers or [(CPU, {})]]

        def get_providers(self) -> list[str]:
            return self._asked

    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(ort, "InferenceSession", Recorded)
    return made


def _reader(device: str) -> OcrReader:
    (reader,) = SignalOptions(ocr=True).makers(Runtime(device))
    assert isinstance(reader, OcrReader)
    return reader


def test_ocr_runs_on_the_gpu_the_device_names(asked: list[tuple[str, list[Any]]], tmp_path: Path) -> None:
    from PIL import Image

    reader = _reader("cuda:1")
    sign = Image.open(render_sign(tmp_path / "sign.png"))
    assert reader.describe([sign]) == ["HARBOUR BAKERY fresh pretzels"]
    assert len(asked) == 3  # detection, orientation, recognition
    for model, providers in asked:
        assert providers[0][0] == CUDA and providers[0][1]["device_id"] == 1, model
        assert providers[-1] == (CPU, {}), model


def test_ocr_on_the_first_gpu_and_on_the_cpu(asked: list[tuple[str, list[Any]]]) -> None:
    assert _reader("cuda").providers()[0][1]["device_id"] == 0
    assert _reader("auto").providers()[0][0] == CUDA  # auto takes the GPU on offer
    assert _reader("cpu").providers() == [(CPU, {})]
    reader = _reader("cpu")
    assert reader.describe([_blank()]) == [""]
    assert asked == []  # on the CPU, RapidOCR's own sessions run


def test_ocr_refuses_a_gpu_that_did_not_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The CPU build of onnxruntime offered CUDA but cannot start it: an explicit cuda:1 fails in
    one line instead of reading every image on the CPU."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    reader = _reader("cuda:1")
    with pytest.raises(DeviceError, match="--device cuda:1: ONNX Runtime could not start CUDAExecutionProvider"):
        reader.describe([_blank()])


def _blank() -> Any:
    from PIL import Image

    return Image.new("RGB", (64, 64), "white")
