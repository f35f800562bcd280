"""施設: public and commercial facilities (schools, clinics, community centres...)."""

from cityos.gis.declarations import Column, Layer

LAYER = Layer(
    "facilities", "gis.facilities", "Public and commercial facilities", "施設",
    (Column("id", not_null=True), Column("name", not_null=True), Column("kind", not_null=True),
     Column("district_code")),
    key="id", migration="0005_city_layers", demo=lambda city: city.facilities, apps=True, order=4)
