"""バス停カバー率: the share of residents (and of residents 65+) within 300 m and 500 m of a bus stop.

A registry aggregate on a reference date, protected with the population figures of the same date
(:mod:`cityos.gis.statistics`); badly served districts are flagged. Staff with ``registry:read`` get the
exact figures of any day at ``/api/v1/gis/registry/bus-coverage`` (audited). Command ``cityos gis
bus-coverage``, route ``GET /api/v1/gis/bus-coverage``, export ``bus_coverage``: from the declaration below.
"""

from __future__ import annotations

import pandas as pd

from cityos.gis.declarations import Analysis, Context, registry_aggregate


def bus_coverage(conn, ctx: Context) -> pd.DataFrame:
    """One row per district: residents and residents 65+ within 300 m / 500 m of a stop, shares, poorly served."""
    from cityos.gis.analyses.bus_coverage import coverage_table

    return coverage_table(ctx.statistics(conn))


ANALYSIS = Analysis(
    "bus_coverage", "Bus-stop coverage per district", "バス停カバー率", bus_coverage,
    **registry_aggregate(staff_exact="staff reading exact bus-stop coverage per district"),
    about="Share of residents (and of residents 65+) within 300 m and 500 m of a stop; badly served districts "
          "(reference dates only; protected with the population figures of the same date).")
