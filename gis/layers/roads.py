"""道路: road sections (snowplow coverage is computed per section)."""

from cityos.gis.declarations import Column, Layer

LAYER = Layer(
    "roads", "gis.roads", "Roads", "道路",
    (Column("road_id", not_null=True), Column("name", not_null=True), Column("road_class", not_null=True)),
    key="road_id", geometry="LineString", migration="0005_city_layers", demo=lambda city: city.roads, apps=True,
    order=5)
