"""Positions in real files: read, order detected per row, checked against Japan and the city boundary.

Latitude and longitude ranges of Japan do not overlap (20-46 N, 122-154 E), so a row whose two
numbers fit only the other way round was written swapped and is repaired (and reported). A point
farther than the tolerance outside the city's boundary (the ``boundary`` layer) is refused with
the distance; one inside the tolerance is kept and noted.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from cityos.gis.loaders.report import LoadReport

LAT_RANGE = (20.0, 46.0)
LON_RANGE = (122.0, 154.0)
_NUMBER = re.compile(r"^[+-]?\d+(\.\d*)?([eE][+-]?\d+)?$")


def number(value: object) -> float | None:
    """A coordinate cell as a float (full-width digits and stray spaces allowed); None if unreadable."""
    text = unicodedata.normalize("NFKC", str(value or "")).replace(" ", "").replace("\u3000", "").strip("\"'")
    if not _NUMBER.match(text):
        return None
    result = float(text)
    return result if math.isfinite(result) else None


def in_japan(lat: float, lon: float) -> bool:
    return LAT_RANGE[0] <= lat <= LAT_RANGE[1] and LON_RANGE[0] <= lon <= LON_RANGE[1]


@dataclass
class Boundary:
    """The city's outline (WGS84) and how far outside it a point may lie."""

    name: str
    geometry: BaseGeometry
    tolerance_m: float = 100.0

    def __post_init__(self) -> None:
        centre = self.geometry.centroid
        local = f"+proj=aeqd +lat_0={centre.y} +lon_0={centre.x} +ellps=GRS80 +units=m"
        self._to_local = Transformer.from_crs("EPSG:4326", local, always_xy=True).transform
        self._local = shapely.transform(self.geometry, lambda xy: np.column_stack(self._to_local(xy[:, 0], xy[:, 1])))
        shapely.prepare(self._local)

    def distance_m(self, lon: float, lat: float) -> float:
        """Metres from the point to the city (0 inside)."""
        return float(self._local.distance(Point(self._to_local(lon, lat))))


def read_point(lat_cell: object, lon_cell: object, line: int, report: LoadReport,
               boundary: Boundary | None = None) -> Point | None:
    """The row's position, or None after refusing the row in ``report``."""
    lat, lon = number(lat_cell), number(lon_cell)
    if lat is None or lon is None:
        blank = not str(lat_cell or "").strip() and not str(lon_cell or "").strip()
        report.refuse(line, "blank coordinates" if blank else
                      f"unreadable coordinates (latitude {lat_cell!r}, longitude {lon_cell!r})")
        return None
    if not in_japan(lat, lon) and in_japan(lon, lat):
        lat, lon = lon, lat
        report.repair(line, "latitude and longitude were swapped")
    if not in_japan(lat, lon):
        report.refuse(line, f"position {lat}, {lon} is outside Japan")
        return None
    if boundary is not None:
        distance = boundary.distance_m(lon, lat)
        if distance > boundary.tolerance_m:
            report.refuse(line, f"position {lat}, {lon} is {distance:,.0f} m outside {boundary.name} "
                                f"(tolerance {boundary.tolerance_m:,.0f} m)")
            return None
        if distance > 0:
            report.notes.append(f"line {line}: {distance:,.0f} m outside {boundary.name}, within the tolerance")
    return Point(lon, lat)


def split_location(cell: object) -> tuple[str, str]:
    """A combined ``"lat,lon"`` cell (LinkData 位置 fields) as two cells."""
    parts = re.split(r"[,\s]+", unicodedata.normalize("NFKC", str(cell or "")).strip())
    return (parts[0], parts[1]) if len(parts) == 2 else ("", "")
