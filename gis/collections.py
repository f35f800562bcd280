"""The public layers served over OGC API Features and vector tiles: one entry per collection.

Derived from the layer declarations (:mod:`cityos.gis.layers`, one file per layer): a layer declared with
``ogc=True`` is a collection. Only public layers are; resident data is served only as aggregates (see
:mod:`cityos.gis.api`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cityos.gis.declarations import layers


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


COLLECTIONS: dict[str, Collection] = {
    layer.id: Collection(layer.id, layer.title, layer.title_ja, layer.table, layer.key, layer.properties,
                         layer.datetime_column)
    for layer in layers().values() if layer.ogc}
