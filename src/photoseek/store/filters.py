"""Metadata filters that narrow a search before ranking, so k matches are never starved."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from photoseek.errors import BadInput


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
    place: str | None = None
    """Only photos taken in the town, county, region or country of this name (case and accents aside)."""
    near: tuple[float, float, float] | None = None
    """Only photos taken within (latitude, longitude, km); see `parse_near`."""
    min_rating: int | None = None
    """Only images rated this many stars or more (0 to 5; rejected ones, -1, never pass)."""
    label: str | None = None
    """Only images with this label (xmp:Label or a darktable colour, case aside)."""

    def __post_init__(self) -> None:
        for name in ("after", "before"):
            value = getattr(self, name)
            if value is not None:
                _check_iso_date(name, value)
        normalised_formats(self.formats)
        if self.near is not None:
            _check_near(*self.near)
        if self.min_rating is not None and not 0 <= self.min_rating <= 5:
            raise BadInput(f"--min-rating {self.min_rating}: give a number of stars from 0 to 5.")

    def __bool__(self) -> bool:
        return any(
            value not in (None, ())
            for value in (self.folder, self.after, self.before, self.formats,
                          self.min_width, self.min_height, self.camera, self.topic,
                          self.place, self.near, self.min_rating, self.label)
        )


DEFAULT_NEAR_KM = 10.0
"""The radius of `--near LAT,LON` without one."""


def parse_near(text: str) -> tuple[float, float, float]:
    """'41.15,-8.61' or '41.15,-8.61,5' (latitude, longitude in decimal degrees, radius in km)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (2, 3):
        raise BadInput(
            f"--near {text!r}: give LAT,LON or LAT,LON,KM in decimal degrees, e.g. --near 41.15,-8.61,5 "
            f"(south and west are negative; the radius defaults to {DEFAULT_NEAR_KM:g} km)."
        )
    near = (numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else DEFAULT_NEAR_KM)
    _check_near(*near)
    return near


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
        raise BadInput(
            f"--format {', '.join(map(repr, unknown))}: unknown image format. "
            f"Use one of {', '.join(STORED_FORMATS)} (or the aliases {', '.join(_FORMAT_ALIASES)})."
        )
    return sorted(set(named.values()))


def normalised_folder(folder: str) -> str:
    """The folder as indexed paths spell it: absolute, symlinks resolved."""
    return os.path.realpath(Path(folder).expanduser())


def _check_near(latitude: float, longitude: float, km: float) -> None:
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise BadInput(
            f"--near {latitude:g},{longitude:g}: latitude must be within -90..90 and longitude within -180..180."
        )
    if not 0 < km <= 20_040:  # half the Earth's circumference reaches every point
        raise BadInput(f"--near radius {km:g} km: give a distance above 0 (and at most 20040 km).")


def _check_iso_date(name: str, value: str) -> None:
    try:
        date.fromisoformat(value[:10])
    except ValueError:
        raise BadInput(
            f"--{name} {value!r} is not a date. Use the form 2024-06-30 (or 2024-06-30T18:00)."
        ) from None
