"""Which model-made text signals (OCR, captions, object counts) a run computes, and with what.

One value travels from the CLI or Python API to the local pass, the watcher and the Ray
cluster's actors, which build their makers from it with the same factory as this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from photoseek.models.runtime import Runtime
from photoseek.text.objects import DEFAULT_DETECTOR, DEFAULT_THRESHOLD, ObjectCounter
from photoseek.text.vlm import DEFAULT_TIMEOUT_S, DEFAULT_WORKERS

if TYPE_CHECKING:
    from photoseek.ingest.enrich import TextMaker

SOURCES = ("ocr", "caption", "objects")


@dataclass(frozen=True)
class SignalOptions:
    """`ocr`, `captions`, `objects` switch the signals on; the rest choose their models.

    `caption_model` is a Hub id or folder, or "openai:NAME" for an OpenAI-compatible API at
    `caption_endpoint` (`caption_workers` requests at a time, `caption_timeout` seconds each).
    """

    ocr: bool = False
    captions: bool = False
    objects: bool = False
    caption_model: str | None = None
    caption_prompt: str | None = None
    caption_endpoint: str | None = None
    caption_workers: int = DEFAULT_WORKERS
    caption_timeout: float = DEFAULT_TIMEOUT_S
    detector: str | None = None
    object_threshold: float = DEFAULT_THRESHOLD

    @property
    def sources(self) -> list[str]:
        return [s for s, on in zip(SOURCES, (self.ocr, self.captions, self.objects)) if on]

    def makers(self, runtime: Runtime | None = None) -> list[TextMaker]:
        """The makers asked for, on `runtime` (default: auto), each checked now (`prepare`: a missing
        extra, model, device or key fails in seconds, not after the CLIP pass) and loaded on first use."""
        makers = [self.maker(source, runtime=runtime) for source in self.sources]
        for maker in makers:
            maker.prepare()
        return makers

    def maker(self, source: str, folder: Path | None = None, runtime: Runtime | None = None) -> TextMaker:
        """The maker of `source` on `runtime`; `folder`: its model files there (shipped to a cluster node)."""
        if source == "ocr":
            from photoseek.text.ocr import OcrReader  # the makers' libraries load only when a signal is on

            return OcrReader(runtime=runtime)
        if source == "caption":
            from photoseek.text.caption import make_captioner

            return make_captioner(
                str(folder) if folder else self.caption_model, self.caption_prompt,
                endpoint=self.caption_endpoint, workers=self.caption_workers, timeout_s=self.caption_timeout,
                runtime=runtime,
            )
        if source == "objects":
            name = str(folder) if folder else self.detector or DEFAULT_DETECTOR
            return ObjectCounter(name, self.object_threshold, runtime=runtime)
        raise ValueError(f"unknown text signal {source!r}")
