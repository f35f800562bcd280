"""人身事故: police points of traffic accidents with injuries."""

from cityos.gis.declarations import Column, Layer

LAYER = Layer(
    "accidents", "gis.accidents", "Traffic accidents with injuries (police)", "人身事故",
    (Column("id", not_null=True), Column("occurred_at", "timestamp with time zone"),
     Column("severity", not_null=True)),
    key="id", migration="0005_city_layers", datetime_column="occurred_at", demo=lambda city: city.accidents,
    order=6)
