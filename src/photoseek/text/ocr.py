"""Text inside images (signs, posters, screenshots, documents) read with RapidOCR.

RapidOCR ships PaddleOCR's detection and recognition models as ONNX files inside its PyPI
package, so it runs offline with the onnxruntime photoseek already uses, on the runtime's thread
budget. RapidOCR can only put its models on the first GPU, so on a CUDA runtime its three sessions
(detection, orientation, recognition) are made again on the runtime's providers: `--device cuda:1`
runs OCR on the second GPU, beside the other models.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from importlib import metadata

from PIL import Image

from photoseek.errors import ModelNotAvailableError
from photoseek.models.device import CPU, CUDA, Provider, check_session_providers
from photoseek.models.runtime import INTER_OP_THREADS, Runtime

Engine = Callable[[Image.Image], tuple[list[tuple[object, str, float]] | None, object]]
"""A RapidOCR engine: an image to ([(box, text, score), ...] or None, timings)."""

MIN_CONFIDENCE = 0.5
"""Recognised lines below this confidence are dropped (RapidOCR's own default text score)."""
TILE_ASPECT = 5.5
"""Longest piece read at once, as a multiple of the shorter side. RapidOCR scales the shorter side
up to 736 px, so a 1080x20000 screenshot read whole takes 1.8 GB and a 2000x3 strip 13.6 GB; in
pieces of 5.5:1 the screenshot peaks at 1.0 GB, 280 MB over a 4000x3000 photo (6:1: 395 MB over).
Photos, panoramas and one-line signs (a 480x90 shop sign is 5.3:1) are read whole: a piece
boundary would cut a word in two."""
MAX_TILES = 8
"""Pieces read per picture, from its middle: a 44:1 screenshot is read whole, a longer strip in part."""
_SESSIONS = (("Det", "text_det", "infer"), ("Cls", "text_cls", "infer"), ("Rec", "text_rec", "session"))
"""Where RapidOCR keeps each model's session: its config section, the engine's attribute, the session holder's."""
MIN_TEXT_SIDE = 8
"""Pictures with a shorter side below this many pixels hold no legible text and are not read."""


class OcrReader:
    """Reads the text lines of one image at a time on `runtime`'s device; safe to call from the decode
    worker threads. The engine loads on first use and can be unloaded (`unload`)."""

    source = "ocr"
    in_workers = True
    """Per-image CPU work: run beside decoding in the worker threads, not in the model batch step."""

    def __init__(self, min_confidence: float = MIN_CONFIDENCE, runtime: Runtime | None = None) -> None:
        self.min_confidence = min_confidence
        self.model_id = f"rapidocr-onnxruntime-{_version()}"
        self.runtime = runtime or Runtime()
        self._engine = self.runtime.lazy("ocr rapidocr", self._load)
        # One engine, one call at a time: its ONNX sessions already use every core.
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Fail at once if RapidOCR is not installed, before any long pass."""
        _engine_class()

    def unload(self) -> bool:
        """Release the engine's three ONNX sessions; the next image loads them again."""
        return self._engine.unload()

    def providers(self) -> list[Provider]:
        """The ONNX Runtime providers (with options) OCR's sessions get: the runtime's GPU (its device id
        included) when it plans CUDA, else the CPU (RapidOCR's models are not converted for CoreML)."""
        planned = self.runtime.providers()
        return planned if planned[0][0] == CUDA else [(CPU, {})]

    def engine_options(self) -> dict[str, object]:
        """RapidOCR's own settings: its sessions on the CPU (moved to the GPU by `_load`), threads from the budget."""
        return {
            "det_use_cuda": False, "cls_use_cuda": False, "rec_use_cuda": False,
            "intra_op_num_threads": self.runtime.intra_threads(), "inter_op_num_threads": INTER_OP_THREADS,
        }

    def _load(self) -> Engine:
        engine: Engine = _engine_class()(**self.engine_options())
        if self.providers()[0][0] == CUDA:
            self._move_to_gpu(engine)
        return engine

    def _move_to_gpu(self, engine: object) -> None:
        """Each of RapidOCR's three sessions made again on this runtime's CUDA device."""
        import onnxruntime as ort
        from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH, read_yaml, update_model_path

        config = update_model_path(read_yaml(DEFAULT_CFG_PATH))
        planned = self.providers()
        for section, owner, attribute in _SESSIONS:
            wrapper = getattr(getattr(engine, owner), attribute)  # RapidOCR's OrtInferSession
            wrapper.session = ort.InferenceSession(
                str(config[section]["model_path"]), sess_options=self.runtime.session_options(), providers=planned
            )
            check_session_providers(self.runtime.device, planned, wrapper.session.get_providers())

    def describe(self, images: list[Image.Image]) -> list[str]:
        return [self._read(image) for image in images]

    def _read(self, image: Image.Image) -> str:
        with self._lock:
            engine = self._engine.get()
            found = [line for tile in _tiles(image.convert("RGB")) for line in engine(tile)[0] or []]
        lines = [text.strip() for _, text, score in found if float(score) >= self.min_confidence]
        return " ".join(t for t in lines if t)


def _tiles(image: Image.Image) -> list[Image.Image]:
    """The picture, or for a long one up to `MAX_TILES` consecutive pieces from its middle of at
    most `TILE_ASPECT`:1 each, in reading order; none when too thin to hold text."""
    width, height = image.size
    short, long = min(width, height), max(width, height)
    if short < MIN_TEXT_SIDE:
        return []
    step = int(TILE_ASPECT * short)
    if long <= step:
        return [image]
    count = min(MAX_TILES, math.ceil(long / step))
    start = max(0, (long - count * step) // 2)
    spans = [(start + i * step, min(long, start + (i + 1) * step)) for i in range(count)]
    if width >= height:
        return [image.crop((a, 0, b, height)) for a, b in spans]
    return [image.crop((0, a, width, b)) for a, b in spans]


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
