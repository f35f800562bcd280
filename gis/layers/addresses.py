"""Address points (one per building or household address), for coverage and vacancy analyses; not public."""

from cityos.gis.declarations import Column, Layer

LAYER = Layer(
    "addresses", "gis.addresses", "Address points", "住所点",
    (Column("address_id", not_null=True), Column("district_code")),
    key="address_id", migration="0005_city_layers", ogc=False, export=False, demo=lambda city: city.addresses,
    order=8)
