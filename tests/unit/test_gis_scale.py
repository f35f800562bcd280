"""Assigning points to districts: in memory and on a local Dask cluster give the same counts."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from cityos.gis.analyses.districts_of_points import assign_districts, points_per_district, points_per_district_dask


@pytest.fixture(scope="module")
def districts() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": ["A", "B", "C"]},
                            geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 2, 2)], crs="EPSG:4326")


@pytest.fixture(scope="module")
def points() -> gpd.GeoDataFrame:
    rng = np.random.default_rng(7)
    xy = rng.uniform(-0.2, 2.2, size=(20_000, 2))
    return gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs="EPSG:4326")


def test_hand_checked_points_land_in_their_districts(districts):
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([0.5, 1.5, 1.0, 5.0], [0.5, 0.5, 1.5, 5.0]), crs="EPSG:4326")
    assert assign_districts(pts, districts).tolist()[:3] == ["A", "B", "C"]
    assert assign_districts(pts, districts).isna().tolist() == [False, False, False, True]


def test_a_local_dask_cluster_counts_the_same_as_memory(points, districts):
    dask_geopandas = pytest.importorskip("dask_geopandas")
    from distributed import Client, LocalCluster

    expected = points_per_district(points, districts)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster):
        counted = points_per_district_dask(dask_geopandas.from_geopandas(points, npartitions=8), districts)
    assert counted.to_dict() == expected.to_dict()
    assert expected.sum() == (points.geometry.x.between(0, 2) & points.geometry.y.between(0, 2)).sum()
