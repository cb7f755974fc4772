"""GPS coordinates from EXIF and XMP, as signed decimal degrees, or None when they cannot be trusted.

Writers get GPS wrong in many ways: rationals with a zero denominator, NaN, minutes above 60,
a latitude of 300, a missing N/S or E/W reference, 0,0 from a camera without a fix. Each of
them means "no location" here, never an error and never a guess (a missing reference could put
the photo on the wrong continent).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image  # only for the annotation: the catalog imports this module, and PIL is not cheap

GPS_IFD = 0x8825
_LAT_REF, _LAT, _LON_REF, _LON, _STATUS = 1, 2, 3, 4, 9
_EXIF_NS = "http://ns.adobe.com/exif/1.0/"
_NUMBER = r"(\d+(?:\.\d+)?)"
_XMP_COORDINATE = re.compile(rf"^\s*{_NUMBER}(?:\s*,\s*{_NUMBER})?(?:\s*,\s*{_NUMBER})?\s*([NSEW])\s*$")
"""XMP's GPSCoordinate: 'DDD,MM,SSk' or 'DDD,MM.mmk' (k: N, S, E or W); decimal degrees 'DD.dddk' too."""
_EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float


def location(latitude: float | None, longitude: float | None) -> Location | None:
    """A Location when both are finite and in range, and not 0,0 (what cameras without a fix write)."""
    if latitude is None or longitude is None:
        return None
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return None
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0) or (latitude == 0.0 and longitude == 0.0):
        return None
    return Location(round(latitude, 7), round(longitude, 7))


def exif_location(exif: Image.Exif) -> Location | None:
    """The location in an EXIF GPS block, or None (absent, void, or malformed in any way)."""
    try:
        gps = exif.get_ifd(GPS_IFD)
    except Exception:  # Pillow raises many types for a broken IFD; a broken one is no location
        return None
    if not gps or _reference(gps.get(_STATUS)) == "V":  # 'V': the receiver had no valid fix
        return None
    latitude = _signed(_degrees(gps.get(_LAT)), _reference(gps.get(_LAT_REF)), "N", "S")
    longitude = _signed(_degrees(gps.get(_LON)), _reference(gps.get(_LON_REF)), "E", "W")
    return location(latitude, longitude)


def xmp_location(root: ET.Element) -> Location | None:
    """The location in an XMP packet's exif:GPSLatitude / exif:GPSLongitude (attributes or elements)."""
    latitude = _xmp_coordinate(_xmp_value(root, "GPSLatitude"), "N", "S")
    longitude = _xmp_coordinate(_xmp_value(root, "GPSLongitude"), "E", "W")
    return location(latitude, longitude)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) between two points in decimal degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _degrees(value: object) -> float | None:
    """Degrees from (deg, min, sec) rationals (or fewer parts); None when any part is unusable."""
    parts = value if isinstance(value, (tuple, list)) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    try:
        numbers = [float(part) for part in parts]  # an IFDRational over 0 is NaN
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    if not all(math.isfinite(n) and n >= 0 for n in numbers) or any(n >= 60 for n in numbers[1:]):
        return None
    return sum(n / 60**i for i, n in enumerate(numbers))


def _reference(value: object) -> str:
    """'N', 'S', 'E', 'W' (or 'A'/'V' for the status) from str or bytes, padded or not; '' if unknown."""
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    text = str(value).strip("\0 ").upper() if isinstance(value, str) else ""
    return text[:1]


def _signed(degrees: float | None, reference: str, positive: str, negative: str) -> float | None:
    if degrees is None or reference not in (positive, negative):
        return None
    return -degrees if reference == negative else degrees


def _xmp_value(root: ET.Element, name: str) -> str:
    tag = f"{{{_EXIF_NS}}}{name}"
    for element in root.iter():
        if tag in element.attrib:
            return element.attrib[tag]
        if element.tag == tag:
            return element.text or ""
    return ""


def _xmp_coordinate(text: str, positive: str, negative: str) -> float | None:
    match = _XMP_COORDINATE.match(text)
    if match is None or match.group(4) not in (positive, negative):
        return None
    numbers = [float(g) for g in match.groups()[:3] if g is not None]
    if any(n >= 60 for n in numbers[1:]):
        return None
    return _signed(sum(n / 60**i for i, n in enumerate(numbers)), match.group(4), positive, negative)
