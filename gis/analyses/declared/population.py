"""地域・年齢別人口: residents per district by age group on a reference date (a registry aggregate).

Protected together with every other published figure of that date (:mod:`cityos.gis.statistics`): small
counts and whatever would let them be recovered are blank. Staff with ``registry:read`` get the exact figures
of any day at ``/api/v1/gis/registry/population`` (audited). A city without a registry extract gets, from the
command line, the loaded 地域・年齢別人口 (latest date on or before the reference date). Command ``cityos gis
population``, route ``GET /api/v1/gis/population``, export ``population`` and the open-data builder
``population_by_age`` (the standard 地域・年齢別人口 rows: per district and five-year band, total, male and
female, from the same protected figures, so the same cells are blank there and on the route): all from the
declaration below.
"""

from __future__ import annotations

import pandas as pd

from cityos.gis.declarations import Analysis, Context, OpenData, registry_aggregate


def population(conn, ctx: Context) -> pd.DataFrame:
    """One row per district: counts per age group, total and share of residents 65+; for the open dataset, one
    row per district and five-year band (total, male, female) of the same protected figures."""
    from cityos.gis.analyses.population import population_by_band, population_table
    from cityos.gis.sources import population_from_statistics

    if ctx.channel == "dataset":
        names = dict(conn.execute("select code, name_ja from gis.districts").fetchall())
        return population_by_band(ctx.statistics(conn), names)
    if ctx.channel == "cli" and not conn.execute("select exists (select from registry.residents)").fetchone()[0]:
        assert ctx.as_of is not None
        return population_from_statistics(conn, ctx.as_of, ctx.k)
    return population_table(ctx.statistics(conn))


ANALYSIS = Analysis(
    "population", "Population per district by age group", "地域・年齢別人口", population,
    **registry_aggregate(staff_exact="staff reading exact population per district"),
    dataset=OpenData("population_by_age", city=True),
    about="Residents per district and age group on a reference date, protected together with every other "
          "published figure of that date (small counts and whatever would let them be recovered are blank).")
