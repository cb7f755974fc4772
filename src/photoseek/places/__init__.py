"""Where a photo was taken: GPS coordinates read from its metadata, and the place names they fall in."""

from photoseek.places.gps import Location, distance_km, exif_location, location, xmp_location
from photoseek.places.naming import PLACE_MODEL, name_places, place_namer

__all__ = [
    "PLACE_MODEL", "Location", "distance_km", "exif_location", "location", "name_places", "place_namer",
    "xmp_location",
]
