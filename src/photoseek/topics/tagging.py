"""Topics for the images of a catalog, stored as the text signal `topics`.

The signal's model is a key hashed from the taxonomy, both models, the threshold and the
weights: images whose stored topics carry the current key are up to date, so a re-run does
nothing, and a new taxonomy or model recomputes every image (from stored embeddings only).
The signal's text is one topic name per line, so it is searchable and shows in explanations.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from photoseek.errors import Conflict, NotFound
from photoseek.store.catalog import Catalog
from photoseek.store.text import STALE_TOPICS, PendingText, TextStore
from photoseek.topics import DEFAULT_THRESHOLD
from photoseek.topics.scoring import (
    Encoder,
    TopicEncoders,
    check_weights,
    clip_topic_vectors,
    confidences,
    text_topic_scores,
)
from photoseek.topics.taxonomy import Taxonomy, default_taxonomy, topic_name

SOURCE = "topics"
TAXONOMY_SETTING = "topics.taxonomy"
KEY_SETTING = "topics.key"
OPTIONS_SETTING = "topics.options"
_TEXT_INPUT = "#topic-input"
"""Suffix of the text-model id under which the embeddings of images' own text (without topics) are cached."""


@dataclass
class TagReport:
    key: str
    tagged: int = 0
    """Images (content hashes) whose topics were computed in this run."""
    counts: dict[str, int] = field(default_factory=dict)


def catalog_taxonomy(catalog: Catalog) -> Taxonomy:
    """The taxonomy this catalog uses: the one stored by `index --topics`/`topics --add`, else the default."""
    stored = catalog.setting(TAXONOMY_SETTING)
    return Taxonomy.from_json(stored) if stored else default_taxonomy()


def has_topics(catalog: Catalog) -> bool:
    """True once topics were computed for this catalog (indexing then keeps them up to date)."""
    return bool(catalog.setting(KEY_SETTING))


def tag_images(
    catalog: Catalog,
    texts: TextStore,
    taxonomy: Taxonomy,
    encoders: TopicEncoders,
    *,
    threshold: float | None = None,
    weights: dict[str, float] | None = None,
) -> TagReport:
    """Store topics for every image that lacks them under the current key; drop stale ones.

    `threshold` and `weights` not given are the ones used last time (remembered in the catalog)."""
    remembered = json.loads(catalog.setting(OPTIONS_SETTING) or "{}")
    threshold = remembered.get("threshold", DEFAULT_THRESHOLD) if threshold is None else threshold
    weights = check_weights(remembered.get("weights", {}) if weights is None else weights)
    options = json.dumps({"threshold": threshold, "weights": weights})
    if catalog.setting(OPTIONS_SETTING) != options:
        catalog.set_setting(OPTIONS_SETTING, options)
    if encoders.text is None:
        weights = {**weights, "text": 0.0}
    elif not encoders.clip_informative:
        weights = {**weights, "clip": 0.0}
    key = topics_key(taxonomy, encoders, threshold, weights)
    missing = [h for h, _ in texts.hashes_missing(SOURCE, key)]
    if catalog.setting(TAXONOMY_SETTING) != taxonomy.to_json():
        catalog.set_setting(TAXONOMY_SETTING, taxonomy.to_json())
    report = TagReport(key)
    if missing:
        assigned = _assign(catalog, texts, taxonomy, encoders, missing, threshold, weights)
        texts.put_many([(h, SOURCE, key, "\n".join(names)) for h, names in assigned.items()], keep_empty=True)
        # After the new ones are in: an interrupt never leaves images without topics.
        texts.drop_other_models(SOURCE, key)
        texts.sync()
        report.tagged = len(assigned)
    catalog.set_setting(KEY_SETTING, key)
    report.counts = topic_counts(catalog, texts, taxonomy)
    return report


def topics_key(taxonomy: Taxonomy, encoders: TopicEncoders, threshold: float, weights: dict[str, float]) -> str:
    parts = [taxonomy.digest(), encoders.clip_id, encoders.text_id, threshold, sorted(weights.items())]
    return "topics-" + hashlib.blake2b(json.dumps(parts).encode("utf-8"), digest_size=8).hexdigest()


def topic_counts(catalog: Catalog, texts: TextStore, taxonomy: Taxonomy) -> dict[str, int]:
    """Images per topic (every topic of the taxonomy, zeros included), from the current key's signals."""
    counts = dict.fromkeys(taxonomy.names, 0)
    key = catalog.setting(KEY_SETTING) or ""
    # Topics awaiting a retag (their image's text changed) count until then.
    for text, count in texts.text_counts(SOURCE, (key, STALE_TOPICS)):
        for name in text.split("\n"):
            if name in counts:
                counts[name] += count
    return counts


def check_topic(catalog: Catalog, name: str) -> None:
    """Raise a clear error when a topic filter cannot match anything for want of topics."""
    taxonomy = catalog_taxonomy(catalog)
    wanted = topic_name(name)
    if wanted not in taxonomy.names:
        known = ", ".join(taxonomy.names[:40])
        raise NotFound(
            f"Unknown topic {name!r}. This catalog's topics: {known}. "
            f"Add it with: photoseek topics --add {wanted!r}"
        )
    if not catalog.setting(KEY_SETTING):
        raise Conflict("No image has topics yet. Compute them with: photoseek index --topics FOLDER")


def image_topics(texts: TextStore, catalog: Catalog, content_hash: str) -> list[str]:
    """The image's topics, most confident first (those from before its text changed, until it is retagged)."""
    text = texts.get(content_hash, SOURCE, catalog.setting(KEY_SETTING) or "") or texts.get(
        content_hash, SOURCE, STALE_TOPICS
    )
    return text.split("\n") if text else []


def _assign(
    catalog: Catalog,
    texts: TextStore,
    taxonomy: Taxonomy,
    encoders: TopicEncoders,
    hashes: list[str],
    threshold: float,
    weights: dict[str, float],
) -> dict[str, list[str]]:
    """content hash -> names of the topics at or above `threshold`, most confident first."""
    clip_raw = None
    if weights["clip"] > 0 and encoders.clip is not None:
        topic_vectors = clip_topic_vectors(taxonomy, encoders.clip, encoders.clip_id)
        clip_raw = catalog.embeddings_of_hashes(hashes) @ topic_vectors.T
    text_raw = None
    if weights["text"] > 0 and encoders.text is not None:
        own_text = _text_matrix(texts, encoders.passages or encoders.text, encoders.text_id, hashes)
        text_raw = (  # no image with text: all NaN, so CLIP alone decides
            np.full((len(hashes), len(taxonomy.topics)), np.nan, dtype=np.float32) if own_text is None
            else text_topic_scores(own_text, taxonomy, encoders.text, encoders.text_id)
        )
    scores = confidences(clip_raw, text_raw, weights)
    names = np.array(taxonomy.names, dtype=object)
    assigned = {}
    for row, content_hash in enumerate(hashes):
        order = np.argsort(-scores[row], kind="stable")
        assigned[content_hash] = [str(n) for n in names[order][scores[row][order] >= threshold]]
    return assigned


def _text_matrix(texts: TextStore, embed: Encoder, text_id: str, hashes: list[str]) -> np.ndarray | None:
    """Each image's own text embedded (NaN rows where it has none), cached by text so re-runs embed
    nothing; None when none of these images has text."""
    bodies = {h: "\n".join(v for s, v in texts.signals(h).items() if s != SOURCE) for h in hashes}
    if not any(bodies.values()):
        return None
    model = text_id + _TEXT_INPUT
    cached = texts.embeddings_by_hash(model)
    pending = [
        PendingText(h, _digest(b), b) for h, b in bodies.items() if b and cached.get(h, ("",))[0] != _digest(b)
    ]
    if pending:
        vectors = np.asarray(embed([p.body for p in pending]), dtype=np.float32)
        texts.put_embeddings(model, pending, vectors)
        cached.update({p.content_hash: (p.text_hash, v) for p, v in zip(pending, vectors)})
    dim = next((v.shape[0] for _, v in cached.values()), 1)
    matrix = np.full((len(hashes), dim), np.nan, dtype=np.float32)
    for row, content_hash in enumerate(hashes):
        if bodies[content_hash]:
            matrix[row] = cached[content_hash][1]
    return matrix


def _digest(body: str) -> str:
    return hashlib.blake2b(body.encode("utf-8"), digest_size=8).hexdigest()
