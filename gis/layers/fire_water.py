"""消防水利施設一覧 (standard municipal open dataset 09): hydrants, cisterns and other fire water."""

from cityos.gis.declarations import Column, Layer


def _read(path, boundary, source_layer, code):
    from cityos.gis.loaders.fire_water import read_fire_water

    return read_fire_water(path, boundary)


LAYER = Layer(
    "fire_water", "gis.fire_water", "Fire-water facilities", "消防水利施設",
    (Column("id", not_null=True), Column("kind", not_null=True), Column("address", not_null=True),
     Column("diameter", not_null=True), Column("note", not_null=True),
     Column("attributes", "jsonb", published=False, not_null=True)),
    key="id", migration="0005_city_layers", reader=_read, demo=lambda city: city.fire_water, apps=True, order=2)
