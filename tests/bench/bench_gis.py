"""GIS throughput on the demo city, with the baselines measured in the same run.

Run with the local runtime up (``./cityos up``):  ``.venv/bin/python tests/bench/bench_gis.py``

It loads the demo city (about 120,000 residents) into a database ``cityos_bench_gis`` on the
platform's server and prints:
- 1,000,000 vehicle positions assigned to districts: in PostGIS (GiST index, one query) and in
  geopandas (``sjoin``), plus the same on a local Dask cluster (2 workers);
- bus-stop coverage (300 m / 500 m) for every resident;
- vector tiles (MVT) of the API service: p50/p95 over the city's tiles at zoom 12-15.
The machine is shared and noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import warnings
from datetime import date
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cityos.gis.analyses.bus_coverage import coverage_by_district
from cityos.gis.analyses.districts_of_points import points_per_district, points_per_district_dask
from cityos.gis.democity import generate_city, load_city
from cityos.gis.sources import bus_stops, residents_at_addresses
from cityos.gis.store import read_layer
from cityos.platform.settings import load_settings
from helpers import create_database


def tiles_covering(west: float, south: float, east: float, north: float, z: int) -> list[tuple[int, int, int]]:
    """Web-Mercator tiles (z, x, y) over a lon/lat box."""
    def tile(lon: float, lat: float) -> tuple[int, int]:
        n = 2 ** z
        y = (1 - np.log(np.tan(np.radians(lat)) + 1 / np.cos(np.radians(lat))) / np.pi) / 2 * n
        return int((lon + 180) / 360 * n), int(y)
    (x0, y0), (x1, y1) = tile(west, north), tile(east, south)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def timed(label: str, action):
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    print(f"  {label:<58} {seconds:8.2f} s")
    return result, seconds


def random_points(districts: gpd.GeoDataFrame, n: int, seed: int = 3) -> gpd.GeoDataFrame:
    west, south, east, north = districts.total_bounds
    rng = np.random.default_rng(seed)
    return gpd.GeoDataFrame(geometry=gpd.points_from_xy(rng.uniform(west, east, n), rng.uniform(south, north, n)),
                            crs="EPSG:4326")


def postgis_join(url: str, points: gpd.GeoDataFrame) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create unlogged table if not exists bench_points (id bigint, geom geometry(Point, 4326))")
        conn.execute("truncate bench_points")
        with conn.cursor() as cur, cur.copy("copy bench_points (id, geom) from stdin") as copy:
            for i, (x, y) in enumerate(zip(points.geometry.x, points.geometry.y, strict=True)):
                copy.write_row((i, f"SRID=4326;POINT({x} {y})"))
        conn.execute("analyze bench_points")

        def join() -> dict[str, int]:
            return dict(conn.execute("select d.code, count(*) from bench_points p join gis.districts d "
                                     "on st_intersects(d.geom, p.geom) group by d.code").fetchall())
        counts, _ = timed("PostGIS: 1,000,000 points -> districts (join, GiST)", join)
        return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--tiles", type=int, default=300)
    args = parser.parse_args()
    logging.getLogger("distributed").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    settings = load_settings()
    url = create_database(settings, "cityos_bench_gis")
    city, _ = timed("demo city generated", generate_city)
    with psycopg.connect(url) as conn:
        timed("demo city loaded into PostGIS", lambda: (load_city(conn, city), conn.commit()))
        districts = read_layer(conn, "select code, geom from gis.districts")
    print(f"districts: {len(districts)}, residents: {len(city.residents):,}")

    points = random_points(districts, args.points)
    print(f"\nAssigning {args.points:,} vehicle positions to districts")
    pg_counts = postgis_join(url, points)
    gp_counts, gp_s = timed("geopandas: sjoin in memory", lambda: points_per_district(points, districts))
    try:
        import dask_geopandas
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster):
            frame = dask_geopandas.from_geopandas(points, npartitions=8)
            dask_counts, _ = timed("dask-geopandas: LocalCluster, 2 worker processes",
                                   lambda: points_per_district_dask(frame, districts))
        assert dask_counts.to_dict() == gp_counts.to_dict()
    except ImportError:
        print("  dask-geopandas not installed: skipped")
    same = {k: v for k, v in gp_counts.items() if v} == pg_counts
    print(f"  same counts in PostGIS and geopandas: {same}")

    print("\nBus-stop coverage for every resident")
    with psycopg.connect(url) as conn:
        people, read_s = timed("residents at their addresses read from PostGIS", lambda: residents_at_addresses(
            conn, date.today()))
        stops = bus_stops(conn)
    table, cover_s = timed(f"coverage_by_district ({len(people):,} residents, {len(stops)} stops)",
                           lambda: coverage_by_district(people, stops, 10))
    print(f"  badly served districts: {int(table['badly_served'].sum())} of {len(table)}")

    print("\nVector tiles from the API service (its database: the platform's, with the demo city)")
    api = settings.api_url
    west, south, east, north = districts.total_bounds
    tiles = [t for z in (12, 13, 14, 15) for t in tiles_covering(west, south, east, north, z)]
    rng = np.random.default_rng(5)
    picks = [tiles[i] for i in rng.integers(0, len(tiles), args.tiles)]
    times = []
    key = httpx.post(f"{api}/api/v1/keys", json={"name": "bench_gis", "contact": "bench@example.jp"}).json()
    with httpx.Client(timeout=30, headers={"X-API-Key": key["api_key"]}) as client:  # 600 a minute, not 120
        for collection in ("roads", "fire_water", "districts"):
            client.get(f"{api}/ogc/tiles/{collection}/{picks[0][0]}/{picks[0][1]}/{picks[0][2]}.pbf")
        for n, tile in enumerate(picks):
            collection = ("roads", "fire_water", "districts")[n % 3]
            started = time.perf_counter()
            response = client.get(f"{api}/ogc/tiles/{collection}/{tile[0]}/{tile[1]}/{tile[2]}.pbf")
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    cut = statistics.quantiles(times, n=100)
    print(f"  {len(times)} tiles (roads, fire_water, districts at z12-15): p50 {cut[49]:.1f} ms, "
          f"p95 {cut[94]:.1f} ms, max {max(times):.1f} ms")
    print(f"\nsummary: 1M-point join PostGIS vs geopandas {gp_s:.2f} s in memory; coverage {cover_s:.2f} s "
          f"(+{read_s:.2f} s read); tiles p95 {cut[94]:.1f} ms")


if __name__ == "__main__":
    main()
