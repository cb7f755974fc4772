"""Name the places of located images that lack a name: a cheap pass after each ingest."""

from __future__ import annotations

from photoseek.places.naming import place_namer
from photoseek.store.catalog import PLACE_SOURCE
from photoseek.store.text import TextStore

BATCH = 5000
"""Coordinates named and committed at a time."""


def name_missing_places(texts: TextStore) -> int | None:
    """Name every located image whose place signal is missing (or from another gazetteer); how many
    were named, or None when some are located but the `places` extra is not installed."""
    if not texts.catalog.located_count():  # nothing to name: skip asking the gazetteer's version
        return 0
    namer = place_namer()
    if namer is None:
        return None
    model, name = namer
    todo = texts.catalog.located_without_place(model)
    for start in range(0, len(todo), BATCH):
        chunk = todo[start : start + BATCH]
        names = name([(lat, lon) for _, lat, lon in chunk])
        # An empty name is kept: "looked, nowhere near a town", so it is not looked up again; names
        # from an older gazetteer go.
        texts.replace_source([(h, PLACE_SOURCE, model, text) for (h, _, _), text in zip(chunk, names)])
    return len(todo)
