"""町丁目: the districts every aggregate is published by."""

from cityos.gis.declarations import Column, Layer

LAYER = Layer(
    "districts", "gis.districts", "Districts", "町丁目",
    (Column("code", not_null=True), Column("name_ja", not_null=True), Column("name_en", not_null=True),
     Column("area_m2", "double precision", optional=True)),
    key="code", geometry="MultiPolygon", migration="0001_core", demo=lambda city: city.districts, apps=True,
    order=1)
