"""The on-disk model directory: the layout of Immich's ONNX CLIP exports (``immich-app/<name>``).

Keeping Immich's layout byte-for-byte means every model Immich publishes on the Hugging Face Hub
loads here unchanged, and what our exporter writes would load in Immich too::

    <model dir>/
      config.json                   open_clip model config: embed_dim, vision_cfg, text_cfg
                                    (text_cfg.context_length, optional text_cfg.tokenizer_kwargs.clean,
                                    text_cfg.hf_tokenizer_name); our exporter adds "model_id",
                                    and "text_dynamic_length": true where the text tower takes
                                    any sequence length and ignores padding after the text.
      visual/model.onnx             input "image": float32 (N, 3, H, W), N dynamic;
                                    output 0: (N, embed_dim) image embedding.
      visual/preprocess_cfg.json    open_clip PreprocessCfg: size (int or [h, w]), mode "RGB",
                                    mean, std, interpolation ("bicubic" | "bilinear"),
                                    resize_mode ("shortest" | "squash" | "longest"), fill_color.
      textual/model.onnx            input "text": int32 or int64 (N, context_length) (N, L <= context_length
                                    with text_dynamic_length), or for M-CLIP
                                    models "input_ids" plus "attention_mask"; output 0: (N, embed_dim).
      textual/tokenizer.json        Hugging Face ``tokenizers`` file (BPE for CLIP, SentencePiece
                                    or WordPiece for SigLIP / multilingual towers).
      textual/tokenizer_config.json "pad_token" (the token padding runs up to context_length),
                                    optional "padding_side" ("right" unless it says "left").

Other files Immich ships beside these (``*.armnn``, ``*.rknn``, README.md, fp16 variants) are ignored.
Text is padded and truncated to ``text_cfg.context_length`` (default 77; with text_dynamic_length,
padded only to the longest text of a batch); models whose
``tokenizer_kwargs.clean`` is ``"canonicalize"`` (SigLIP) get punctuation stripped and lower-case.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from photoseek.errors import ModelNotAvailableError

CONFIG_FILE = "config.json"
VISUAL_MODEL = "visual/model.onnx"
PREPROCESS_CFG = "visual/preprocess_cfg.json"
TEXTUAL_MODEL = "textual/model.onnx"
TOKENIZER_FILE = "textual/tokenizer.json"
TOKENIZER_CFG = "textual/tokenizer_config.json"
TEXT_DYNAMIC_LENGTH = "text_dynamic_length"

REQUIRED_FILES: tuple[str, ...] = (
    CONFIG_FILE,
    VISUAL_MODEL,
    PREPROCESS_CFG,
    TEXTUAL_MODEL,
    TOKENIZER_FILE,
    TOKENIZER_CFG,
)

# The hub downloads only what we read; ONNX external weights sit beside model.onnx.
DOWNLOAD_PATTERNS: tuple[str, ...] = (
    CONFIG_FILE,
    PREPROCESS_CFG,
    TOKENIZER_FILE,
    TOKENIZER_CFG,
    "visual/model.onnx*",
    "textual/model.onnx*",
    "visual/*.data",
    "textual/*.data",
)

_HF_SNAPSHOT = re.compile(r"^models--[^/]+--(?P<name>[^/]+)$")


@contextmanager
def staged_directory(out: Path) -> Iterator[Path]:
    """A new folder beside `out` to write a model directory into; it becomes `out` (absent or
    empty) only when the block completes, so a failed or interrupted write leaves nothing behind.
    Made with the user's umask (not mkdtemp's 0700), so others can read the model as they could
    any folder the user makes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        yield staging
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def missing_files(model_dir: Path) -> list[str]:
    """Relative paths of required files absent from ``model_dir``."""
    return [rel for rel in REQUIRED_FILES if not (model_dir / rel).is_file()]


@dataclass(frozen=True)
class ModelLayout:
    """Paths and parsed JSON of one model directory; JSON is read once, on first use."""

    root: Path

    @classmethod
    def open(cls, root: str | Path) -> ModelLayout:
        """Check that ``root`` is a complete model directory, so errors come before any inference."""
        path = Path(root).expanduser().resolve()
        if not path.is_dir():
            raise ModelNotAvailableError(f"Model directory {path} does not exist.")
        missing = missing_files(path)
        if missing:
            raise ModelNotAvailableError(
                f"{path} is not a complete model directory: missing {', '.join(missing)}. "
                "Expected the layout of Immich's CLIP exports (see docs/models.md)."
            )
        return cls(path)

    @cached_property
    def config(self) -> dict[str, Any]:
        return _read_json(self.root / CONFIG_FILE)

    @cached_property
    def preprocess_cfg(self) -> dict[str, Any]:
        return _read_json(self.root / PREPROCESS_CFG)

    @cached_property
    def tokenizer_cfg(self) -> dict[str, Any]:
        return _read_json(self.root / TOKENIZER_CFG)

    @property
    def text_cfg(self) -> dict[str, Any]:
        text_cfg: dict[str, Any] = self.config.get("text_cfg", {})
        return text_cfg

    @property
    def text_dynamic_length(self) -> bool:
        """Whether the exporter marked the text tower as taking any sequence length, padding after
        the text ignored; models without the mark (Immich's, older exports) take context_length."""
        return self.config.get(TEXT_DYNAMIC_LENGTH) is True

    @property
    def visual_model(self) -> Path:
        return self.root / VISUAL_MODEL

    @property
    def textual_model(self) -> Path:
        return self.root / TEXTUAL_MODEL

    @property
    def tokenizer_file(self) -> Path:
        return self.root / TOKENIZER_FILE

    def model_id(self) -> str:
        """Stable id for the catalog: exporter id, else hub name from an HF cache path, else the dir name."""
        written = self.config.get("model_id")
        if isinstance(written, str) and written:
            return written
        if self.root.parent.name == "snapshots":
            match = _HF_SNAPSHOT.match(self.root.parent.parent.name)
            if match:
                return match.group("name")
        return f"local:{self.root.name}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(f"Cannot read {path}: {exc}") from exc
    return data
