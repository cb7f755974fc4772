"""Place names for coordinates, offline: the nearest GeoNames town (the `places` extra,
reverse_geocode, ships the gazetteer: every place of 1000+ people, with its region and country).

Naming is a pass of its own after indexing, over the located images that lack a name, so a
catalog indexed before the extra was installed gets its names on the next `index` run, and a
batch of coordinates costs one k-d tree query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.util import find_spec

from photoseek.places.gps import distance_km

PLACE_MODEL = "geonames-cities1000"
"""The `model` of place signals (with the reverse_geocode version, so a new gazetteer renames)."""
TOWN_KM = 50.0
"""Farther than this from the nearest town, the town is not named (out at sea, in the wilderness)..."""
REGION_KM = 200.0
"""...and farther than this, neither is its region or country: no place rather than a wrong one."""
CITY_POPULATION = 100_000
CITY_KM = 25.0
"""The nearest point is often a suburb or a district (Kópavogur, Ginza): the nearest city of
CITY_POPULATION people within CITY_KM is named too (Reykjavík, Tokyo), so searching for it finds the photo."""
INSTALL_HINT = "pip install 'photoseek[places]' to name the places of photos with GPS coordinates"

Namer = Callable[[Sequence[tuple[float, float]]], list[str]]


def place_namer() -> tuple[str, Namer] | None:
    """(model id, namer) when the `places` extra is installed, else None."""
    if find_spec("reverse_geocode") is None:
        return None
    from importlib import metadata  # here: ~0.02 s that a run with no place to name need not pay

    version = metadata.version("reverse_geocode")

    def name(points: Sequence[tuple[float, float]]) -> list[str]:
        import reverse_geocode  # here: its k-d tree (scipy) costs more than a run with nothing to name

        towns = reverse_geocode.search(list(points))
        cities = reverse_geocode.search(list(points), min_population=CITY_POPULATION)
        return [_place_text(point, town, city) for point, town, city in zip(points, towns, cities)]

    return f"{PLACE_MODEL}/reverse-geocode-{version}", name


def name_places(points: Sequence[tuple[float, float]]) -> list[str]:
    """Each point's place as lines (town, county, region, country; '' when nowhere near one)."""
    namer = place_namer()
    if namer is None:
        raise ImportError(INSTALL_HINT)
    return namer[1](points) if points else []


def _place_text(point: tuple[float, float], town: dict[str, object], city: dict[str, object]) -> str:
    """Town, nearby city, county, region and country, one per line, each once."""
    away = _km(point, town)
    if away > REGION_KM:
        return ""
    near = away <= TOWN_KM
    names = [
        *([town.get("city")] if near else []),
        *([city.get("city")] if near and _km(point, city) <= CITY_KM else []),
        *([town.get("county")] if near else []),
        town.get("state"), town.get("country"),
    ]
    return "\n".join(dict.fromkeys(text for n in names if (text := str(n or "").strip())))


def _km(point: tuple[float, float], found: dict[str, object]) -> float:
    return distance_km(point[0], point[1], float(found["latitude"]), float(found["longitude"]))  # type: ignore[arg-type]
