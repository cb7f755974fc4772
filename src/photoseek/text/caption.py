"""Image captions from a transformers vision-language model (Florence-2, BLIP), run in batches.

A caption describes what is in the picture in words, so text search can match what CLIP's single
vector blurs (counts, small objects, relations). Florence-2 is steered by task prompts (the
presets); BLIP takes an optional text the caption continues ("a photograph of").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from photoseek.errors import BadInput
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
from photoseek.text.vlm import DEFAULT_TIMEOUT_S, DEFAULT_WORKERS, PREFIX, ApiCaptioner

DEFAULT_CAPTION_MODEL = "florence-community/Florence-2-base"
"""MIT-licensed, 0.23B parameters: detailed captions at a few images per second on a GPU."""

FLORENCE_PRESETS = {
    "more-detailed": "<MORE_DETAILED_CAPTION>",
    "detailed": "<DETAILED_CAPTION>",
    "brief": "<CAPTION>",
}
DEFAULT_PRESET = "detailed"
MAX_NEW_TOKENS = 96


class Captioner:
    """Captions images with one model and prompt on `runtime`'s device; the weights load on the
    first batch and can be unloaded (`unload`).

    `prompt` is a Florence-2 preset name (or task token) or, for BLIP-style models, text the
    caption starts with. It is part of `model_id`, since it changes every caption.
    """

    source = "caption"
    in_workers = False
    """A batched model: it runs in the indexer's main thread on full batches (on the GPU when present)."""

    def __init__(
        self,
        name: str = DEFAULT_CAPTION_MODEL,
        prompt: str | None = None,
        batch_size: int = 8,
        runtime: Runtime | None = None,
    ) -> None:
        self.name = name
        self.prompt = prompt
        self.batch_size = batch_size
        self.model_id = name if prompt is None else f"{name}|prompt={prompt}"
        self.runtime = runtime or Runtime()
        self._weights = self.runtime.lazy(f"caption {name}", self._load)

    def prepare(self) -> None:
        """Fail in seconds if torch, the device or the model is missing, before any long pass."""
        check_available(self.name, "caption")
        torch_device(self.runtime)

    def unload(self) -> bool:
        """Release the weights; the next batch loads them again."""
        return self._weights.unload()

    def local_folder(self) -> Path:
        """The model's files on this machine (to send to a cluster's nodes)."""
        return local_folder(self.name, "caption", self.load)

    def describe(self, images: list[Image.Image]) -> list[str]:
        return in_batches(images, self.batch_size, self._batch)

    def _batch(self, images: list[Image.Image]) -> list[str]:
        torch = require_torch()  # the base install has none: say what to install

        processor, model, prompt = self.load()
        kwargs = {"text": [prompt] * len(images)} if prompt else {}
        inputs = to_device(processor(images=[im.convert("RGB") for im in images], return_tensors="pt", **kwargs), model)
        with torch.inference_mode():
            generated = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, num_beams=1, do_sample=False)
        return [" ".join(t.split()) for t in processor.batch_decode(generated, skip_special_tokens=True)]

    def load(self) -> tuple[Any, Any, str]:
        """Processor, model and prompt, loaded once (downloaded first when needed and possible)."""
        return self._weights.get()

    def _load(self) -> tuple[Any, Any, str]:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor = load_pretrained(AutoProcessor.from_pretrained, self.name, "caption")
        model = load_model(AutoModelForImageTextToText, self.name, "caption", self.runtime)
        return processor, model, self._prompt_for(model.config.model_type)

    def _prompt_for(self, model_type: str) -> str:
        """Florence-2 needs a task token (a preset); other models take the prompt as it is, or none."""
        if model_type != "florence2":
            return self.prompt or ""
        prompt = self.prompt or DEFAULT_PRESET
        if prompt in FLORENCE_PRESETS.values():
            return prompt
        if prompt not in FLORENCE_PRESETS:
            raise BadInput(
                f"Unknown Florence-2 caption preset {prompt!r}: use one of {', '.join(FLORENCE_PRESETS)}."
            )
        return FLORENCE_PRESETS[prompt]


def make_captioner(
    name: str | None = None,
    prompt: str | None = None,
    *,
    endpoint: str | None = None,
    workers: int = DEFAULT_WORKERS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    batch_size: int = 8,
    runtime: Runtime | None = None,
) -> Captioner | ApiCaptioner:
    """`openai:MODEL` -> a model behind an OpenAI-compatible API; anything else -> a local transformers
    model on `runtime`'s device."""
    name = name or DEFAULT_CAPTION_MODEL
    if name.startswith(PREFIX):
        return ApiCaptioner(
            name[len(PREFIX):], prompt, endpoint=endpoint, workers=workers, timeout_s=timeout_s, runtime=runtime
        )
    if endpoint:
        raise BadInput(
            f"--caption-endpoint is for API models: write --caption-model openai:{name} to send images to it."
        )
    return Captioner(name, prompt, batch_size=batch_size, runtime=runtime)
