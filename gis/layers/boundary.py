"""行政区域: the city's outline (国土数値情報 N03), against which every loader checks positions."""

from cityos.gis.declarations import Column, Layer


def _read(path, boundary, source_layer, code):
    from cityos.gis.loaders.boundary import read_boundary

    return read_boundary(path, code)


def _store(conn, frame, source):
    from cityos.gis.loaders.boundary import store_boundary

    return store_boundary(conn, frame, source)


LAYER = Layer(
    "boundary", "gis.boundary", "City boundary (国土数値情報 N03)", "行政区域",
    (Column("code", not_null=True), Column("name", not_null=True), Column("source", not_null=True),
     Column("loaded_at", "timestamp with time zone", published=False, optional=True, not_null=True)),
    key="code", geometry="MultiPolygon", migration="0013_city_boundary", reader=_read, store=_store,
    demo=lambda city: city.boundary, apps=True, order=0)
