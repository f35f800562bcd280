"""地区別電力使用: average power per home by district and local hour of day, this week and last.

HEMS homes whose owners consented to open data (not research or services) only: each exit asks the consent
registry for its own purpose (``consent_filter(ctx.exit, ...)``); districts with fewer than k homes are
blanked. Hours are local (``CITYOS_TIMEZONE``). Command ``cityos gis energy-by-district`` (JSON lines), route
``GET /api/v1/gis/energy-by-district``, export ``energy_by_district``: from the declaration below.
"""

from __future__ import annotations

from cityos.gis.declarations import Analysis, Context
from cityos.platform.exits import OPEN_ENERGY


def energy_by_district(conn, ctx: Context) -> list[dict]:
    """One row per district and hour: homes, average W per home this week and last week."""
    from cityos.gis.analyses.city_sql import energy_by_district as compute

    return compute(conn, ctx.now, ctx.k, ctx.exit, ctx.zone.key)


ANALYSIS = Analysis(
    "energy_by_district", "Household consumption per district and hour", "地区別電力使用", energy_by_district,
    not_audited="aggregates of open-data homes", use=OPEN_ENERGY, k_option=True, cli_output="jsonl",
    columns=("district_code", "hour", "homes", "avg_w_per_home", "avg_w_per_home_last_week"),
    about="Average power per home by district and local hour of day (the city's time zone, CITYOS_TIMEZONE), "
          "this week and last. HEMS homes whose owners consented to open data (not research or services) only; "
          "districts with fewer than k homes are blanked.")
