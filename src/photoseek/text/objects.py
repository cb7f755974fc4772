"""Object counts ("3 people, 2 dogs") from a transformers object detector (DETR family).

Captions and CLIP both blur numbers; an explicit count phrase, placed right after the caption in
the image's text, lets "three dogs" find three dogs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photoseek.models.runtime import Runtime
from photoseek.text.hf import (
    check_available,
    in_batches,
    load_model,
    load_pretrained,
    local_folder,
    require_torch,
    to_device,
    torch_device,
)

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_DETECTOR = "facebook/detr-resnet-50"
"""Apache-2.0, the 80 COCO classes."""
DEFAULT_THRESHOLD = 0.9
"""DETR's confident detections score above 0.9; lower lets duplicate boxes inflate the counts."""

_IRREGULAR = {
    "person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
    "knife": "knives", "foot": "feet", "tooth": "teeth", "goose": "geese", "leaf": "leaves",
}
_INVARIANT = {"sheep", "deer", "fish", "skis", "scissors", "glasses", "series"}


def pluralise(noun: str) -> str:
    """English plural of a detector label ('wine glass' -> 'wine glasses'); the last word changes."""
    head, _, last = noun.rpartition(" ")
    lower = last.lower()
    if lower in _INVARIANT:
        plural = last
    elif lower in _IRREGULAR:
        plural = _IRREGULAR[lower]
    elif lower.endswith(("s", "x", "z", "ch", "sh")):
        plural = last + "es"
    elif lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return f"{head} {plural}" if head else plural


def count_phrase(labels: Iterable[str]) -> str:
    """['dog', 'person', 'dog'] -> '2 dogs, 1 person': most frequent first, then by name."""
    counts = Counter(label for label in labels if label and label != "N/A")
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{n} {pluralise(label) if n > 1 else label}" for label, n in ordered)


class ObjectCounter:
    """Detects objects in batches on `runtime`'s device and describes each image by its counts; the
    weights load on first use and can be unloaded (`unload`)."""

    source = "objects"
    in_workers = False
    """A batched model: it runs in the indexer's main thread on full batches (on the GPU when present)."""

    def __init__(
        self,
        name: str = DEFAULT_DETECTOR,
        threshold: float = DEFAULT_THRESHOLD,
        batch_size: int = 8,
        runtime: Runtime | None = None,
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.batch_size = batch_size
        self.model_id = f"{name}|score>={threshold:g}"
        self.runtime = runtime or Runtime()
        self._weights = self.runtime.lazy(f"detector {name}", self._load)

    def prepare(self) -> None:
        """Fail in seconds if torch, the device or the model is missing, before any long pass."""
        check_available(self.name, "detector")
        torch_device(self.runtime)

    def unload(self) -> bool:
        """Release the weights; the next batch loads them again."""
        return self._weights.unload()

    def local_folder(self) -> Path:
        """The model's files on this machine (to send to a cluster's nodes)."""
        return local_folder(self.name, "detector", self.load)

    def describe(self, images: list[Image.Image]) -> list[str]:
        return [count_phrase(labels) for labels in self.detect(images)]

    def detect(self, images: list[Image.Image]) -> list[list[str]]:
        """The labels of every detection above the threshold, per image."""
        return in_batches(images, self.batch_size, self._batch)

    def _batch(self, images: list[Image.Image]) -> list[list[str]]:
        torch = require_torch()  # the base install has none: say what to install

        processor, model = self.load()
        inputs = to_device(processor(images=[im.convert("RGB") for im in images], return_tensors="pt"), model)
        with torch.inference_mode():
            outputs = model(**inputs)
        sizes = [(im.height, im.width) for im in images]
        results = processor.post_process_object_detection(outputs, threshold=self.threshold, target_sizes=sizes)
        names = model.config.id2label
        return [[names[int(label)] for label in result["labels"]] for result in results]

    def load(self) -> tuple[Any, Any]:
        """Processor and model, loaded once (downloaded first when needed and possible)."""
        return self._weights.get()

    def _load(self) -> tuple[Any, Any]:
        from transformers import AutoImageProcessor, AutoModelForObjectDetection

        processor = load_pretrained(AutoImageProcessor.from_pretrained, self.name, "detector")
        return processor, load_model(AutoModelForObjectDetection, self.name, "detector", self.runtime)
