"""地域別電力使用: household consumption at the finest area that has k homes (route only).

Per district and local hour of day (the city's time zone, last 7 days), HEMS homes whose owners consented to
open data only (``consent_filter(ctx.exit, ...)``), shown at the finest level whose group has at least k homes:
the district, else its town (町), else the city's left-over homes (:mod:`cityos.gis.analyses.energy_areas`).
Route ``GET /api/v1/gis/energy-by-area``: from the declaration below.
"""

from __future__ import annotations

from cityos.gis.declarations import Analysis, Context
from cityos.platform.exits import OPEN_ENERGY


def energy_by_area(conn, ctx: Context) -> list[dict]:
    """One row per area and hour: ``level`` (district, town, city or suppressed), ``area`` and the averages."""
    from cityos.gis.analyses.energy_areas import energy_by_area_from_db

    return energy_by_area_from_db(conn, ctx.now, ctx.k, ctx.exit, ctx.zone.key)


ANALYSIS = Analysis(
    "energy_by_area", "Household consumption at the finest area with k homes", "地域別電力使用", energy_by_area,
    not_audited="aggregates of open-data homes", use=OPEN_ENERGY, cli=False, export=False,
    about="Per district and local hour of day (the city's time zone, last 7 days), HEMS homes whose owners "
          "consented to open data only, shown at the finest level whose group has at least k homes: the district, "
          "else its town (町), else the city's left-over homes. Each row gives ``level`` (district, town, city or "
          "suppressed) and ``area``.")
