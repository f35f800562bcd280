"""バス停: stops with boardings and weekday departures (a point table, a vector file or a GTFS-JP feed)."""

from cityos.gis.declarations import Column, Layer


def _read(path, boundary, source_layer, code):
    from cityos.gis.loaders.gtfs import is_gtfs, read_gtfs
    from cityos.gis.loaders.run import read_generic

    if is_gtfs(path):
        return read_gtfs(path, boundary)
    return read_generic(LAYER, path, boundary, source_layer)


LAYER = Layer(
    "bus_stops", "gis.bus_stops", "Bus stops", "バス停",
    (Column("stop_id", not_null=True), Column("name", not_null=True),
     Column("boardings_per_day", "double precision", optional=True),
     Column("departures_per_weekday", "integer", published=False, optional=True)),
    key="stop_id", migration="0005_city_layers", reader=_read, demo=lambda city: city.bus_stops, order=3)
