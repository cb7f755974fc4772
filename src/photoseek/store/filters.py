"""Metadata filters that narrow a search before ranking, so k matches are never starved."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from photoseek.errors import PhotoseekError


@dataclass(frozen=True)
class SearchFilters:
    """Every field is optional; all given fields must hold.

    Dates compare against the EXIF capture time, or the file's mtime when there is none.
    `after` is inclusive and `before` exclusive, both as ISO dates or date-times.
    """

    folder: str | None = None
    after: str | None = None
    before: str | None = None
    formats: tuple[str, ...] = ()
    min_width: int | None = None
    min_height: int | None = None
    camera: str | None = None
    topic: str | None = None
    """Only images tagged with this topic (`photoseek.topics`)."""

    def __post_init__(self) -> None:
        for name in ("after", "before"):
            value = getattr(self, name)
            if value is not None:
                _check_iso_date(name, value)
        normalised_formats(self.formats)

    def __bool__(self) -> bool:
        return any(
            value not in (None, ())
            for value in (self.folder, self.after, self.before, self.formats,
                          self.min_width, self.min_height, self.camera, self.topic)
        )


STORED_FORMATS = ("avif", "bmp", "gif", "heif", "jpeg", "jpeg2000", "png", "tiff", "webp")
"""Every format name the catalog stores: one per decoder the indexer tries (`photoseek.ingest.decode`)."""

_FORMAT_ALIASES = {"jpg": "jpeg", "jpe": "jpeg", "heic": "heif", "tif": "tiff", "jp2": "jpeg2000"}


def normalised_formats(formats: tuple[str, ...]) -> list[str]:
    """Format names as the catalog stores them ('jpg' -> 'jpeg', 'heic' -> 'heif').

    An unknown name is an error rather than a filter that silently matches nothing.
    """
    named = {f: _FORMAT_ALIASES.get(f.strip().lower(), f.strip().lower()) for f in formats}
    unknown = [f for f, name in named.items() if name not in STORED_FORMATS]
    if unknown:
        raise PhotoseekError(
            f"--format {', '.join(map(repr, unknown))}: unknown image format. "
            f"Use one of {', '.join(STORED_FORMATS)} (or the aliases {', '.join(_FORMAT_ALIASES)})."
        )
    return sorted(set(named.values()))


def normalised_folder(folder: str) -> str:
    """The folder as indexed paths spell it: absolute, symlinks resolved."""
    return os.path.realpath(Path(folder).expanduser())


def _check_iso_date(name: str, value: str) -> None:
    try:
        date.fromisoformat(value[:10])
    except ValueError:
        raise PhotoseekError(
            f"--{name} {value!r} is not a date. Use the form 2024-06-30 (or 2024-06-30T18:00)."
        ) from None
