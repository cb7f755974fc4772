"""Text inside images (signs, posters, screenshots, documents) read with RapidOCR.

RapidOCR ships PaddleOCR's detection and recognition models as ONNX files inside its PyPI
package, so it runs offline with the onnxruntime photoseek already uses.
"""

from __future__ import annotations

import threading
from importlib import metadata

from PIL import Image

from photoseek.errors import ModelNotAvailableError

MIN_CONFIDENCE = 0.5
"""Recognised lines below this confidence are dropped (RapidOCR's own default text score)."""


class OcrReader:
    """Reads the text lines of one image at a time; safe to call from the decode worker threads."""

    source = "ocr"
    in_workers = True
    """Per-image CPU work: run beside decoding in the worker threads, not in the model batch step."""

    def __init__(self, min_confidence: float = MIN_CONFIDENCE) -> None:
        self.min_confidence = min_confidence
        self.model_id = f"rapidocr-onnxruntime-{_version()}"
        self._engine: object | None = None
        # One engine, one call at a time: its ONNX sessions already use every core.
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Fail at once if RapidOCR is not installed, before any long pass."""
        _engine_class()

    def describe(self, images: list[Image.Image]) -> list[str]:
        return [self._read(image) for image in images]

    def _read(self, image: Image.Image) -> str:
        with self._lock:
            if self._engine is None:
                self._engine = _engine_class()()
            found, _ = self._engine(image.convert("RGB"))  # a PIL image: RapidOCR converts it to BGR
        lines = [text.strip() for _, text, score in (found or []) if float(score) >= self.min_confidence]
        return " ".join(t for t in lines if t)


def _version() -> str:
    try:
        return metadata.version("rapidocr-onnxruntime")
    except metadata.PackageNotFoundError:
        return "missing"


def _engine_class() -> type:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise ModelNotAvailableError(
            "OCR needs RapidOCR, which is not installed: pip install 'photoseek[ocr]' "
            "(or run index without --ocr)."
        ) from exc
    return RapidOCR
