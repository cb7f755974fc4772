"""Topics: what each photo is about, from a taxonomy, for browsing and filtering.

Zero-shot: CLIP scores each image against a prompt ensemble per topic, the text embedder scores
the image's own text (notes, captions, OCR) against the topic, and the calibrated scores are
fused into one confidence; an image gets every topic at or above the threshold. Topics are
stored as the text signal `topics`, so they are searchable, filterable and explained like any
other text.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

DEFAULT_THRESHOLD = 0.5
"""An image gets a topic when the fused confidence is at least this (here, not in `scoring`, so the
command line's help reads it without loading numpy)."""

if TYPE_CHECKING:
    from photoseek.topics.scoring import TopicEncoders
    from photoseek.topics.tagging import (
        SOURCE,
        TagReport,
        catalog_taxonomy,
        check_topic,
        has_topics,
        image_topics,
        tag_images,
        topic_counts,
    )
    from photoseek.topics.taxonomy import Taxonomy, Topic, default_taxonomy, load_taxonomy, topic_name

_HOMES = {
    "TopicEncoders": "scoring",
    **dict.fromkeys(
        ("SOURCE", "TagReport", "catalog_taxonomy", "check_topic", "has_topics", "image_topics", "tag_images",
         "topic_counts"),
        "tagging",
    ),
    **dict.fromkeys(("Taxonomy", "Topic", "default_taxonomy", "load_taxonomy", "topic_name"), "taxonomy"),
}
__all__ = [
    "DEFAULT_THRESHOLD",
    "SOURCE",
    "TagReport",
    "Taxonomy",
    "Topic",
    "TopicEncoders",
    "catalog_taxonomy",
    "check_topic",
    "default_taxonomy",
    "has_topics",
    "image_topics",
    "load_taxonomy",
    "tag_images",
    "topic_counts",
    "topic_name",
]


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(name)
    return getattr(import_module(f"photoseek.topics.{_HOMES[name]}"), name)
