"""The public layers served over OGC API Features and vector tiles: one entry per collection.

A layer is added by adding one :class:`Collection` here. Only public layers belong in this list;
resident data is served only as aggregates (see :mod:`cityos.gis.api`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Collection:
    """A table (or view) with a WGS84 ``geom`` column, served as a feature collection."""

    id: str
    title: str
    title_ja: str
    table: str
    id_column: str
    properties: tuple[str, ...]
    datetime_column: str | None = None


COLLECTIONS: dict[str, Collection] = {c.id: c for c in (
    Collection("boundary", "City boundary (国土数値情報 N03)", "行政区域", "gis.boundary", "code",
               ("code", "name", "source")),
    Collection("districts", "Districts", "町丁目", "gis.districts", "code", ("code", "name_ja", "name_en", "area_m2")),
    Collection("fire_water", "Fire-water facilities", "消防水利施設", "gis.fire_water", "id",
               ("id", "kind", "address", "diameter", "note")),
    Collection("bus_stops", "Bus stops", "バス停", "gis.bus_stops", "stop_id",
               ("stop_id", "name", "boardings_per_day")),
    Collection("facilities", "Public and commercial facilities", "施設", "gis.facilities", "id",
               ("id", "name", "kind", "district_code")),
    Collection("roads", "Roads", "道路", "gis.roads", "road_id", ("road_id", "name", "road_class")),
    Collection("accidents", "Traffic accidents with injuries (police)", "人身事故", "gis.accidents", "id",
               ("id", "occurred_at", "severity"), datetime_column="occurred_at"),
    Collection("snowplows", "Snowplows, latest position", "除雪車の現在位置", "gis.snowplow_positions", "device_id",
               ("device_id", "time", "speed_kmh", "heading_deg", "blade_down"), datetime_column="time"),
)}
