"""除雪状況: every road with the time a snowplow last passed with its blade down within the last hours.

City vehicles only (not personal data). The route answers GeoJSON, the command JSON lines (optionally only
the roads not plowed), the export the last 12 hours. Command ``cityos gis snowplow-coverage``, route
``GET /api/v1/gis/snowplow-coverage``, export ``snowplow_coverage``: from the declaration below.
"""

from __future__ import annotations

import json
from datetime import timedelta

from cityos.gis.declarations import Analysis, Context, Param


def snowplow_coverage(conn, ctx: Context) -> list[dict]:
    """One row per road: its attributes, when it was last plowed (None: not in that time) and its geometry."""
    from cityos.gis.analyses.city_sql import snowplow_coverage as compute

    rows = compute(conn, ctx.now - timedelta(hours=ctx.params["hours"]))
    for row in rows:
        row["geometry"] = json.loads(row["geometry"])
    return rows


def _not_plowed(rows: list[dict], ctx: Context) -> list[dict]:
    return [r for r in rows if not (ctx.params.get("not_plowed") and r.get("plowed"))]


ANALYSIS = Analysis(
    "snowplow_coverage", "Roads and when they were last plowed", "除雪状況", snowplow_coverage,
    not_audited="city vehicles", geometry="own",
    params=(Param("hours", int, 12, "Plowed within the last N hours.", ge=1, le=24 * 14),
            Param("not_plowed", bool, False, "Only roads not plowed in that time.", channels=("cli",))),
    views={"cli": _not_plowed}, cli_output="jsonl", api_output="geojson",
    about="Every road with the last time a snowplow passed with its blade down within the last ``hours``.")
