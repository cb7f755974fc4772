"""Zero-shot topic scores: a prompt ensemble per topic for CLIP, a topic sentence for the text
embedder, each calibrated, fused into one confidence per (image, topic).

Topic vectors are computed once per topic and model (a process-wide cache), so tagging a new
batch of images or adding one topic encodes only prompts never seen before. Images are never
re-embedded: scores are matrix products with the embeddings the catalog already holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from photoseek.calibration import Calibration
from photoseek.topics.taxonomy import Taxonomy, Topic

TEMPLATES = (
    "a photo of {}.",
    "a picture showing {}.",
    "a snapshot of {}.",
    "an image of {}.",
    "a photo about {}.",
)
"""The CLIP prompt ensemble (averaged per topic, as in CLIP's zero-shot recipe)."""

CLIP_CALIBRATION = Calibration(centre=0.25, scale=25.0)
"""A fixed ViT-B-32 cosine curve (matching pairs about 0.28-0.35); unfitted, no real weights here. Search
fusion calibrates CLIP per model and query instead (`search.fusion.clip_standout`)."""
TEXT_CALIBRATION = Calibration(centre=0.355, scale=19.0)
"""MiniLM cosine between an image's text and a topic's closest phrase; fitted on the even half of
the COCO topic labels (tests/topics/coco_topics.json; bench/topics_text.py, docs/benchmarks.md)."""
DEFAULT_WEIGHTS = {"clip": 1.0, "text": 1.0}

Encoder = Callable[[list[str]], np.ndarray]
_CACHE: dict[tuple[str, str], np.ndarray] = {}


@dataclass(frozen=True)
class TopicEncoders:
    """The two encoders and their ids (the ids key the cache and the stored topics)."""

    clip: Encoder | None
    clip_id: str
    text: Encoder | None = None
    """Embeds topic sentences (as queries)."""
    text_id: str = ""
    passages: Encoder | None = None
    """Embeds images' own text (as documents); `text` when not given."""
    clip_informative: bool = True
    """False when search calibration found CLIP cannot tell this library's photos apart by their text:
    it then weighs 0 wherever the text model can judge, so it never vetoes a clear text."""


def clip_prompts(topic: Topic) -> list[str]:
    prompts = [t.format(topic.name) for t in TEMPLATES]
    if topic.description:
        prompts.append(f"a photo of {topic.name}: {topic.description}.")
    return prompts


def text_phrases(topic: Topic) -> list[str]:
    """What the text embedder compares an image's text with: the name and each thing the description lists.

    An image's text names one or two things ("a pizza on a plate"); against the closest single
    phrase it scores far better than against the whole description (bench/topics_text.py)."""
    listed = (p.strip() for p in re.split(r",|;| and | or ", topic.description))
    return list(dict.fromkeys([topic.name, *(p for p in listed if p)]))


def clip_topic_vectors(taxonomy: Taxonomy, encode: Encoder, model_id: str) -> np.ndarray:
    """(topics, dim): each topic's prompt embeddings averaged and re-normalised."""
    rows = []
    for topic in taxonomy.topics:
        prompts = clip_prompts(topic)
        rows.append(_unit(_cached(prompts, encode, model_id).mean(axis=0)))
    return np.stack(rows)


def text_topic_scores(texts: np.ndarray, taxonomy: Taxonomy, encode: Encoder, model_id: str) -> np.ndarray:
    """(images, topics): each image text's cosine with the topic's closest phrase (NaN rows stay NaN)."""
    scores = np.empty((len(texts), len(taxonomy.topics)), dtype=np.float32)
    for column, topic in enumerate(taxonomy.topics):
        phrases = np.stack([_unit(v) for v in _cached(text_phrases(topic), encode, model_id)])
        scores[:, column] = (texts @ phrases.T).max(axis=1)
    return scores


def confidences(
    clip_raw: np.ndarray | None, text_raw: np.ndarray | None, weights: dict[str, float]
) -> np.ndarray:
    """(images, topics) fused confidence: the weighted mean of the calibrated signals an image has.

    `text_raw` rows are NaN for images without text; they are judged by CLIP alone (and an image
    with neither signal weighted gets 0)."""
    parts: list[tuple[float, np.ndarray]] = []
    if clip_raw is not None and weights.get("clip", 0) > 0:
        parts.append((weights["clip"], CLIP_CALIBRATION(clip_raw)))
    if text_raw is not None and weights.get("text", 0) > 0:
        parts.append((weights["text"], TEXT_CALIBRATION(text_raw)))
    if not parts:
        raise ValueError("topic weights leave no signal; give clip or text a weight above 0")
    total = sum(w * np.nan_to_num(p, nan=0.0) for w, p in parts)
    present = sum(w * ~np.isnan(p) for w, p in parts)
    return np.divide(total, present, out=np.zeros_like(total), where=present > 0)


def check_weights(weights: dict[str, float]) -> dict[str, float]:
    unknown = set(weights) - set(DEFAULT_WEIGHTS)
    if unknown:
        raise ValueError(f"unknown topic signal(s) {', '.join(sorted(unknown))}; use clip, text")
    merged = {**DEFAULT_WEIGHTS, **{k: float(v) for k, v in weights.items()}}
    if any(w < 0 for w in merged.values()) or sum(merged.values()) <= 0:
        raise ValueError("topic weights must be >= 0 and not all zero")
    return merged


def _cached(texts: Sequence[str], encode: Encoder, model_id: str) -> np.ndarray:
    missing = [t for t in dict.fromkeys(texts) if (model_id, t) not in _CACHE]
    if missing:
        for text, vector in zip(missing, np.asarray(encode(missing), dtype=np.float32)):
            _CACHE[(model_id, text)] = vector
    return np.stack([_CACHE[(model_id, t)] for t in texts])


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
