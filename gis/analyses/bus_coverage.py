"""Bus-stop coverage: who lives within 300 m and 500 m of a stop, per district and per stop.

Distances are straight lines measured in the plane rectangular zone (EPSG:6677); they stand in
for walking distance (a street-network distance would be longer, typically by 20-30 %), which is
the usual first screening in Japanese public-transport plans. Residents are placed at their
address point.
"""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd

from cityos.gis.analyses.disclosure import Cell, Statistics, protect
from cityos.gis.analyses.suppression import suppress_counts
from cityos.gis.loaders.vectors import MEASURE_CRS

RADII = (300, 500)
#: The published counts: column -> (age set, place set) of :mod:`cityos.gis.analyses.disclosure`.
COUNTS = {"residents": ("all", "placed"), "residents_65_plus": ("age_65_plus", "placed"),
          "within_300m": ("all", "within_300m"), "within_300m_65_plus": ("age_65_plus", "within_300m"),
          "within_500m": ("all", "within_500m"), "within_500m_65_plus": ("age_65_plus", "within_500m")}


def nearest_stop_distance(people: gpd.GeoDataFrame, stops: gpd.GeoDataFrame) -> pd.Series:
    """Metres from each person's address point to the nearest stop."""
    p = people[["geometry"]].to_crs(MEASURE_CRS)
    s = stops[["geometry"]].to_crs(MEASURE_CRS)
    joined = gpd.sjoin_nearest(p, s, how="left", distance_col="distance_m")
    return joined.groupby(level=0)["distance_m"].min().reindex(people.index)


def place_classes(people: gpd.GeoDataFrame, stops: gpd.GeoDataFrame) -> pd.Series:
    """Each person's distance class to the nearest stop: ``within_300m``, ``300_500m``, ``beyond_500m``,
    or ``no_address`` when they have no address point."""
    placed = people.geometry.notna() & ~people.geometry.is_empty
    out = pd.Series("no_address", index=people.index, dtype=object)
    if placed.any() and len(stops):
        distance = nearest_stop_distance(people[placed], stops)
        out[placed] = np.select([distance <= RADII[0], distance <= RADII[1]], ["within_300m", "300_500m"],
                                "beyond_500m")
    elif placed.any():
        out[placed] = "beyond_500m"
    return out


def coverage_table(stats: Statistics, poor_share: float = 0.6) -> pd.DataFrame:
    """Per district: residents with an address point and residents 65+ within each radius, their shares,
    and whether the district is badly served (share within 500 m below ``poor_share``), as protected by
    the disclosure step (a blank is <NA>; a share only where both its counts are shown)."""
    rows = []
    for code in stats.districts():
        row: dict[str, object] = {"district_code": code}
        for column, (age, place) in COUNTS.items():
            row[column] = stats.value(code, Cell(age, "all", place))
        for radius in RADII:
            for suffix, whole in (("", "residents"), ("_65_plus", "residents_65_plus")):
                part, of = row[f"within_{radius}m{suffix}"], row[whole]
                row[f"share_{radius}m{suffix}"] = round(part / of, 4) if part is not None and of else None
        share = row["share_500m"]
        row["badly_served"] = None if share is None else share < poor_share
        rows.append(row)
    columns = ["district_code", *COUNTS, *[f"share_{r}m{s}" for r in RADII for s in ("", "_65_plus")],
               "badly_served"]
    table = pd.DataFrame(rows, columns=columns)
    for column in COUNTS:
        table[column] = table[column].astype("Int64")
    for column in columns:
        if column.startswith("share_"):
            table[column] = table[column].astype("Float64")
    table["badly_served"] = table["badly_served"].astype("boolean")
    return table


def coverage_by_district(people: gpd.GeoDataFrame, stops: gpd.GeoDataFrame, k: int = 10,
                         poor_share: float = 0.6, as_of: date | None = None) -> pd.DataFrame:
    """:func:`coverage_table` of ``people`` (one row per resident: ``district_code``, ``age``, optional
    ``sex``, an address point or none). Published outputs pass the whole linked microdata
    (:mod:`cityos.gis.statistics`)."""
    frame = pd.DataFrame({"district_code": people["district_code"].astype(str), "age": people["age"],
                          "sex": people.get("sex", "X"),
                          "place": place_classes(people, stops)})
    return coverage_table(protect(frame, as_of or date.today(), k), poor_share)


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
