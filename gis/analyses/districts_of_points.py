"""Assign points (vehicle positions, addresses, events) to districts, in memory or on a Dask cluster.

The heavy joins of the platform run in PostGIS; this is the path for data that arrive as files or
outgrow one machine (a prefecture's positions): the same function runs per partition of a
dask-geopandas frame, so ``assign_districts_dask`` scales out on ``dask.distributed`` unchanged.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd


def assign_districts(points: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> pd.Series:
    """The ``code`` of the district containing each point (<NA> outside every district), indexed like ``points``."""
    joined = gpd.sjoin(points[["geometry"]], districts[["code", "geometry"]], how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]  # a point on a shared border: the first district
    return joined["code"].astype("string").reindex(points.index)


def points_per_district(points: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> pd.Series:
    """How many points fall in each district (districts without points: 0), sorted by district code."""
    counts = assign_districts(points, districts).value_counts()
    return counts.reindex(sorted(districts["code"]), fill_value=0).astype(int)


def points_per_district_dask(points, districts: gpd.GeoDataFrame) -> pd.Series:
    """:func:`points_per_district` over a dask-geopandas frame: partitions are joined where they live
    (the districts are broadcast to the workers) and only the per-district counts come back."""
    partial = points.map_partitions(lambda part: points_per_district(part, districts),
                                    meta=pd.Series(dtype=int, name="count"))
    return partial.compute().groupby(level=0).sum().reindex(sorted(districts["code"]), fill_value=0).astype(int)
