"""潜在的な事故危険箇所: accident-risk hotspots from harsh braking of city vehicles and police accident points.

H3 cells with harsh-brake counts, accidents, Gi* z-score and p-value, hot and latent flags
(:mod:`cityos.gis.analyses.hotspots`). The route answers GeoJSON with every cell; its permutation test costs
in proportion to ``permutations``, so callers without an API key get at most
``CITYOS_ANONYMOUS_MAX_PERMUTATIONS``. The command prints the hot cells as JSON lines; the export keeps the
cells with a brake or an accident. The open-data builder ``accident_hotspots`` counts the brakes of public city
vehicles only and keeps the cells with a brake or an accident, by cell, with rounded figures and each cell's
polygon. Command ``cityos gis hotspots``, route ``GET /api/v1/gis/hotspots``, export ``hotspots`` and the
builder: from the declaration below.
"""

from __future__ import annotations

import pandas as pd

from cityos.gis.declarations import Analysis, Context, OpenData, Param
from cityos.platform.exits import Use

#: What the route shows of each cell.
PROPERTIES = ("cell", "harsh_brakes", "accidents", "gi_z", "gi_p", "hot", "latent")


def hotspots(conn, ctx: Context) -> pd.DataFrame:
    """One row per H3 cell with brakes or accidents, Gi* statistics and the cell's polygon (GeoJSON); the open
    dataset counts the brakes of public city vehicles only."""
    from cityos.gis.analyses.hotspots import HARSH_BRAKE_MS2, cell_polygon
    from cityos.gis.analyses.hotspots import hotspots as compute
    from cityos.gis.sources import accident_points, vehicle_observations

    days = ctx.params["days"]
    brakes = vehicle_observations(conn, days, HARSH_BRAKE_MS2, public_only=ctx.channel == "dataset")
    table = compute(brakes, accident_points(conn, days), permutations=ctx.params.get("permutations") or 999)
    table["geometry"] = [{"type": "Polygon", "coordinates": [cell_polygon(c)]} for c in table["cell"]]
    return table


def _hot(table: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    if ctx.params.get("latent_only"):
        table = table[table["latent"]]
    return table[table["hot"]].drop(columns=["geometry"])


def _seen(table: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    return table[(table["harsh_brakes"] > 0) | (table["accidents"] > 0)].drop(columns=["lat", "lon"])


def _published(table: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """The open dataset: cells with a brake or an accident by cell, figures rounded, centre and polygon."""
    table = table[(table["harsh_brakes"] > 0) | (table["accidents"] > 0)].sort_values("cell")
    table = table.assign(gi_z=table["gi_z"].astype(float).round(4), gi_p=table["gi_p"].astype(float).round(4),
                         lat=table["lat"].round(5), lon=table["lon"].round(5))
    return table[[*PROPERTIES, "lat", "lon", "geometry"]]


ANALYSIS = Analysis(
    "hotspots", "Accident-risk hotspots", "潜在的な事故危険箇所", hotspots,
    not_audited="city vehicles and police points",
    use=Use("non_personal", note="city vehicles and police accident points"), geometry="own",
    params=(Param("days", int, 365, "Harsh brakes and accidents of the last N days.", ge=1, le=3650),
            Param("permutations", int, 999, "Permutations of the Gi* test; without an API key at most "
                  "CITYOS_ANONYMOUS_MAX_PERMUTATIONS (999)", ge=99, le=9999, channels=("api", "dataset"),
                  keyless_max="anonymous_max_permutations"),
            Param("latent_only", bool, False, "Only latent hotspots (harsh braking without accidents).",
                  channels=("cli",))),
    views={"cli": _hot, "api": lambda t, ctx: t[[*PROPERTIES, "geometry"]], "export": _seen, "dataset": _published},
    cli_output="jsonl", api_output="geojson", feature_id="cell",
    dataset=OpenData("accident_hotspots", reads=("telemetry.vehicle_positions",), geometry=True),
    about="H3 cells with harsh-brake counts, accidents, Gi* z-score and p-value, hot and latent flags.")
