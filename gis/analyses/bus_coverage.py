"""Bus-stop coverage: who lives within 300 m and 500 m of a stop, per district and per stop.

Distances are straight lines measured in the plane rectangular zone (EPSG:6677); they stand in
for walking distance (a street-network distance would be longer, typically by 20-30 %), which is
the usual first screening in Japanese public-transport plans. Residents are placed at their
address point.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from cityos.gis.analyses.suppression import suppress_counts
from cityos.gis.loaders.vectors import MEASURE_CRS

RADII = (300, 500)


def nearest_stop_distance(people: gpd.GeoDataFrame, stops: gpd.GeoDataFrame) -> pd.Series:
    """Metres from each person's address point to the nearest stop."""
    p = people[["geometry"]].to_crs(MEASURE_CRS)
    s = stops[["geometry"]].to_crs(MEASURE_CRS)
    joined = gpd.sjoin_nearest(p, s, how="left", distance_col="distance_m")
    return joined.groupby(level=0)["distance_m"].min().reindex(people.index)


def coverage_by_district(people: gpd.GeoDataFrame, stops: gpd.GeoDataFrame, k: int = 10,
                         poor_share: float = 0.6) -> pd.DataFrame:
    """Per district: residents and residents 65+ within each radius, their shares, and whether the
    district is badly served (share within 500 m below ``poor_share``).

    ``people``: one row per resident with ``district_code``, ``age`` and an address point.
    """
    frame = pd.DataFrame({"district_code": people["district_code"], "elderly": people["age"] >= 65,
                          "distance_m": nearest_stop_distance(people, stops)})
    rows = []
    for code, group in frame.groupby("district_code"):
        row: dict[str, object] = {"district_code": code, "residents": len(group),
                                  "residents_65_plus": int(group["elderly"].sum())}
        for radius in RADII:
            near = group["distance_m"] <= radius
            row[f"within_{radius}m"] = int(near.sum())
            row[f"within_{radius}m_65_plus"] = int((near & group["elderly"]).sum())
        rows.append(row)
    columns = ["district_code", "residents", "residents_65_plus",
               *[f"within_{r}m{s}" for r in RADII for s in ("", "_65_plus")]]
    table = pd.DataFrame(rows, columns=columns)
    for radius in RADII:
        table[f"share_{radius}m"] = (table[f"within_{radius}m"] / table["residents"]).round(4)
        table[f"share_{radius}m_65_plus"] = (table[f"within_{radius}m_65_plus"] /
                                             table["residents_65_plus"].where(table["residents_65_plus"] > 0)).round(4)
    table["badly_served"] = table["share_500m"] < poor_share
    counts = ["residents_65_plus"] + [f"within_{r}m{s}" for r in RADII for s in ("", "_65_plus")]
    out = suppress_counts(table, counts, k, total="residents")
    hidden = out["residents"].isna()
    share_columns = [c for c in out.columns if c.startswith("share_")]
    out.loc[hidden, share_columns] = pd.NA
    small_elderly = out["residents_65_plus"].isna()
    out.loc[small_elderly, [c for c in share_columns if c.endswith("65_plus")]] = pd.NA
    return out.sort_values("district_code").reset_index(drop=True)


def catchment_by_stop(people: gpd.GeoDataFrame, stops: gpd.GeoDataFrame, radius: float = 300,
                      k: int = 10) -> pd.DataFrame:
    """Per stop: residents within ``radius`` (a resident may count for several stops) and daily
    boardings per 100 catchment residents; catchments below ``k`` are suppressed."""
    p = people[["geometry"]].to_crs(MEASURE_CRS)
    s = stops[["stop_id", "boardings_per_day", "geometry"]].to_crs(MEASURE_CRS)
    buffers = s.set_geometry(s.geometry.buffer(radius))
    joined = gpd.sjoin(p, buffers, predicate="within")
    catchment = joined.groupby("stop_id").size().reindex(s["stop_id"], fill_value=0)
    table = pd.DataFrame({"stop_id": s["stop_id"].to_numpy(), "boardings_per_day": s["boardings_per_day"].to_numpy(),
                          "catchment_residents": catchment.to_numpy()})
    table["boardings_per_100_residents"] = (100 * table["boardings_per_day"] /
                                            table["catchment_residents"].where(table["catchment_residents"] > 0)
                                            ).round(2)
    out = suppress_counts(table, ["catchment_residents"], k)
    out.loc[out["catchment_residents"].isna(), "boardings_per_100_residents"] = pd.NA
    return out
