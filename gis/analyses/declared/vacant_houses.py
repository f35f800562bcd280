"""空き家候補: addresses with no registered resident and a near-idle meter (staff only, audited).

Addresses are personal data: the route needs the ``registry:read`` scope and every call, from the route or
the command (run under the OS user), leaves an audit row. Command ``cityos gis vacant-houses`` (JSON lines)
and route ``GET /api/v1/gis/vacant-houses`` (GeoJSON); never exported: from the declaration below.
"""

from __future__ import annotations

import json

from cityos.gis.declarations import Analysis, Context, Param
from cityos.platform.audit import Access
from cityos.platform.exits import STAFF


def vacant_houses(conn, ctx: Context) -> list[dict]:
    """One row per candidate address: its attributes, consumption over the window and its point (GeoJSON)."""
    from cityos.gis.analyses.city_sql import vacant_house_candidates

    rows = vacant_house_candidates(conn, ctx.now, ctx.params["days"])
    for row in rows:
        row["geometry"] = json.loads(row["geometry"])
    return rows


ANALYSIS = Analysis(
    "vacant_houses", "Vacant-house candidates (staff only, audited)", "空き家候補", vacant_houses,
    use=STAFF, scope="registry:read",
    access=Access("addresses and meters", "addresses without residents", "vacant-house survey"),
    params=(Param("days", int, 30, "Window of near-zero consumption.", ge=7, le=365),),
    geometry="own", export=False, cli_output="jsonl", api_output="geojson",
    about="Addresses with no registered resident and a near-idle meter for ``days`` days.")
