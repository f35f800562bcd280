"""地域・年齢別人口 (standard municipal open dataset 11): published counts per area and date, for a city without a
registry extract; a table without geometry, read by the population analyses only."""

from cityos.gis.declarations import Column, Layer


def _read(path, boundary, source_layer, code):
    from cityos.gis.loaders.population_stats import read_population

    return read_population(path)


def _store(conn, frame, source):
    from cityos.gis.loaders.population_stats import store_population

    return store_population(conn, frame)


LAYER = Layer(
    "population", "gis.area_population", "Population by area and age", "地域・年齢別人口",
    (Column("area_code", not_null=True), Column("area_name", not_null=True), Column("as_of", "date", not_null=True),
     Column("total", "integer"), Column("male", "integer"), Column("female", "integer"),
     Column("households", "integer"), Column("age_bands", "jsonb", not_null=True)),
    key="area_code", geometry=None, migration="0013_city_boundary", ogc=False, export=False, reader=_read,
    store=_store, order=9)
