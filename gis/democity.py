"""The demo city: Aizuwakamatsu's real outline and real hydrants, with synthetic people and streets.

Real (committed under ``gis/data/aizuwakamatsu``, see its SOURCES.md): the city boundary
(国土数値情報 N03 行政区域, MLIT, via smartnews-smri/japan-topography) and the 1,974 fire-water
facilities Code for AIZU published in 2014 for the 全国消火栓マップ (CC BY 4.0), read through the
same loader and boundary check as any city's file. Synthetic, generated inside the real boundary
and deterministic per seed: districts (町丁目) as Voronoi cells, denser in the urban centre; a street
grid with arterials; the resident-registry extract with a Japanese regional age pyramid (about a
third aged 65+); address points (a few percent empty); bus stops with boardings; facilities; police
accident points. Nothing needs a download.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import LineString, MultiPoint, MultiPolygon, Point, Polygon
from shapely.ops import voronoi_diagram

CENTRE_LONLAT = (139.9297, 37.4947)  # city hall
DATA = Path(__file__).with_name("data") / "aizuwakamatsu"
BOUNDARY_FILE = DATA / "boundary_n03_2021.geojson"
HYDRANTS_FILE = DATA / "hydrants_2014.csv"
ATTRIBUTION = ("境界: 国土数値情報（行政区域データ）国土交通省 を加工して作成; 消火栓: Code for AIZU "
               "全国消火栓マップ 会津若松市 (2014, CC BY 4.0)")
MEASURE_CRS = "EPSG:6677"
CITY_CODE = "07202"
TOWN_NAMES = ["栄町", "中町", "大町", "本町", "馬場町", "上町", "行仁町", "西栄町", "城東町", "門田町", "一箕町",
              "河東町", "北会津町", "扇町", "白虎町", "若松", "追手町", "東栄町", "花春町", "徒之町"]
TOWN_ROMAJI = ["Sakae-machi", "Naka-machi", "O-machi", "Hon-machi", "Baba-machi", "Kami-machi", "Gyonin-machi",
               "Nishisakae-machi", "Joto-machi", "Monden-machi", "Ikki-machi", "Kawahigashi-machi",
               "Kitaaizu-machi", "Ogi-machi", "Byakko-machi", "Wakamatsu", "Ote-machi", "Higashisakae-machi",
               "Hanaharu-machi", "Kachi-machi"]


@dataclass
class DemoCity:
    """Every demo layer, in WGS84."""

    boundary: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    addresses: gpd.GeoDataFrame
    residents: pd.DataFrame
    bus_stops: gpd.GeoDataFrame
    fire_water: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    accidents: gpd.GeoDataFrame


def _centre_xy() -> tuple[float, float]:
    point = gpd.GeoSeries([Point(*CENTRE_LONLAT)], crs="EPSG:4326").to_crs(MEASURE_CRS).iloc[0]
    return point.x, point.y


@lru_cache(maxsize=1)
def real_boundary() -> gpd.GeoDataFrame:
    """Aizuwakamatsu's boundary (code, name, MultiPolygon), WGS84."""
    from cityos.gis.loaders.boundary import read_boundary

    gdf, report = read_boundary(BOUNDARY_FILE, "07202")
    if report.fatal:
        raise RuntimeError(f"{BOUNDARY_FILE}: {report.fatal}")
    return gdf


def real_hydrants() -> gpd.GeoDataFrame:
    """The 2014 hydrants, read through the fire-water loader and checked against the real boundary."""
    from cityos.gis.loaders.fire_water import read_fire_water
    from cityos.gis.loaders.points import Boundary

    boundary = real_boundary()
    gdf, report = read_fire_water(HYDRANTS_FILE, Boundary("会津若松市", boundary.geometry.iloc[0], 100.0))
    if report.fatal:
        raise RuntimeError(f"{HYDRANTS_FILE}: {report.fatal}")
    gdf["attributes"] = [dict(a, source="Code for AIZU 全国消火栓マップ (CC BY 4.0)") for a in gdf["attributes"]]
    return gdf


def _outline() -> Polygon | MultiPolygon:
    return real_boundary().to_crs(MEASURE_CRS).geometry.iloc[0]


def _inside(rng: np.random.Generator, outline, count: int) -> list[Point]:
    minx, miny, maxx, maxy = outline.bounds
    points: list[Point] = []
    while len(points) < count:
        p = Point(minx + rng.random() * (maxx - minx), miny + rng.random() * (maxy - miny))
        if outline.contains(p):
            points.append(p)
    return points


def _districts(rng: np.random.Generator, count: int, radius: float) -> gpd.GeoDataFrame:
    cx, cy = _centre_xy()
    outline = _outline()
    urban = count * 6 // 7
    r = radius * np.sqrt(rng.random(urban)) ** 1.4  # denser seeds in the centre
    a = rng.random(urban) * 2 * np.pi
    seeds = [p for p in (Point(cx + ri * np.cos(ai), cy + ri * np.sin(ai)) for ri, ai in zip(r, a, strict=True))
             if outline.contains(p)]
    seeds += _inside(rng, outline.difference(Point(cx, cy).buffer(radius)), count - len(seeds))
    cells = [c.intersection(outline) for c in voronoi_diagram(MultiPoint(seeds), envelope=outline.buffer(1000)).geoms]
    cells = [c for c in cells if not c.is_empty]
    rows = []
    for i, cell in enumerate(sorted(cells, key=lambda c: (round(c.centroid.y, -2), c.centroid.x))):
        town = i % len(TOWN_NAMES)
        chome = i // len(TOWN_NAMES) + 1
        poly = cell if isinstance(cell, Polygon) else max(cell.geoms, key=lambda g: g.area)
        rows.append({"code": f"{CITY_CODE}-{i + 1:03d}", "name_ja": f"{TOWN_NAMES[town]}{chome}丁目",
                     "name_en": f"{TOWN_ROMAJI[town]} {chome}-chome", "geometry": MultiPolygon([poly])})
    gdf = gpd.GeoDataFrame(rows, crs=MEASURE_CRS)
    gdf["area_m2"] = gdf.area.round(1)
    return gdf


def _roads(radius: float, spacing: float) -> gpd.GeoDataFrame:
    cx, cy = _centre_xy()
    outline = Point(cx, cy).buffer(radius).intersection(_outline())
    rows = []
    steps = int(radius // spacing)
    for axis in ("ew", "ns"):
        for k in range(-steps, steps + 1):
            offset = k * spacing
            line = (LineString([(cx - radius, cy + offset), (cx + radius, cy + offset)]) if axis == "ew" else
                    LineString([(cx + offset, cy - radius), (cx + offset, cy + radius)])).intersection(outline)
            if line.geom_type == "MultiLineString":
                line = max(line.geoms, key=lambda g: g.length)
            if line.is_empty or line.length < spacing or line.geom_type != "LineString":
                continue
            cls = "primary" if k % 5 == 0 else "residential"
            # one road segment per block, so coverage analyses work per street section
            n = max(1, int(line.length // spacing))
            for j in range(n):
                seg = LineString([line.interpolate(j / n, normalized=True),
                                  line.interpolate((j + 1) / n, normalized=True)])
                name = f"{'東西' if axis == 'ew' else '南北'}線{k:+d}"
                rows.append({"road_id": f"{axis}{k:+03d}-{j:03d}", "name": name, "road_class": cls, "geometry": seg})
    return gpd.GeoDataFrame(rows, crs=MEASURE_CRS)


def _birth_dates(rng: np.random.Generator, n: int, as_of: date) -> np.ndarray:
    # A regional Japanese city: few children, many people in their 60s and 70s.
    bands = [(0, 14, 0.115), (15, 29, 0.13), (30, 49, 0.21), (50, 64, 0.205), (65, 74, 0.16), (75, 99, 0.18)]
    probs = np.array([b[2] for b in bands])
    choice = rng.choice(len(bands), size=n, p=probs / probs.sum())
    lo = np.array([bands[c][0] for c in choice])
    hi = np.array([bands[c][1] for c in choice])
    age_days = ((lo + rng.random(n) * (hi - lo + 1)) * 365.25).astype(int)
    return np.array([as_of - timedelta(days=int(d)) for d in age_days])


def load_city(conn, city: DemoCity) -> dict[str, int]:
    """Store every declared layer the demo city makes (replacing what is there) in one transaction per layer,
    then the resident registry."""
    from cityos.gis.declarations import layers
    from cityos.gis.store import replace_layer

    counts = {}
    for layer in layers().values():
        if layer.demo is None:
            continue
        frame = layer.demo(city)
        if layer.store is not None:
            counts[layer.id] = layer.store(conn, frame, ATTRIBUTION)
        else:
            counts[layer.id] = replace_layer(conn, layer.table, frame,
                                             [c for c in layer.column_names if c in frame.columns])
    columns = ["person_id", "household_id", "district_code", "address_id", "birth_date", "sex", "moved_in",
               "moved_out"]
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("truncate registry.residents")
        with cur.copy(f"copy registry.residents ({', '.join(columns)}) from stdin") as copy:
            for row in city.residents[columns].itertuples(index=False, name=None):
                copy.write_row(row)
    counts["residents"] = len(city.residents)
    return counts


def generate_city(seed: int = 1, residents: int = 120_000, as_of: date | None = None) -> DemoCity:
    """The demo city for ``seed`` (same seed, same city)."""
    rng = np.random.default_rng(seed)
    as_of = as_of or date(2026, 11, 1)
    radius = 6000.0
    districts = _districts(rng, 140, radius)
    roads = _roads(radius, 400.0)
    cx, cy = _centre_xy()
    households = residents // 2 + 1
    # household address points: denser near the centre, inside the city
    r = radius * 0.97 * np.sqrt(rng.random(households)) ** 1.6
    a = rng.random(households) * 2 * np.pi
    points = gpd.GeoDataFrame({"address_id": [f"ADR{i:06d}" for i in range(households)]},
                              geometry=gpd.points_from_xy(cx + r * np.cos(a), cy + r * np.sin(a)), crs=MEASURE_CRS)
    points = gpd.sjoin(points, districts[["code", "geometry"]], predicate="within").drop(columns="index_right")
    points = points.rename(columns={"code": "district_code"}).reset_index(drop=True)
    occupied = rng.random(len(points)) > 0.04  # about 4 % of addresses have nobody registered
    sizes = rng.choice([1, 2, 3, 4, 5], size=len(points), p=[0.33, 0.3, 0.17, 0.13, 0.07])
    sizes[~occupied] = 0
    household_of = np.repeat(np.arange(len(points)), sizes)[:residents]
    n = len(household_of)
    registry = pd.DataFrame({
        "person_id": [f"P{i:07d}" for i in range(n)],
        "household_id": [f"H{h:06d}" for h in household_of],
        "district_code": points["district_code"].to_numpy()[household_of],
        "address_id": points["address_id"].to_numpy()[household_of],
        "birth_date": _birth_dates(rng, n, as_of),
        "sex": rng.choice(["M", "F"], size=n),
        "moved_in": None, "moved_out": None,
    })
    stop_idx = rng.choice(len(roads), size=400, replace=False)
    stops = gpd.GeoDataFrame({"stop_id": [f"BS{i:04d}" for i in range(400)],
                              "name": [f"バス停{i:04d}" for i in range(400)]},
                             geometry=roads.geometry.iloc[stop_idx].interpolate(0.5, normalized=True).to_numpy(),
                             crs=MEASURE_CRS)
    dist = np.hypot(stops.geometry.x - cx, stops.geometry.y - cy)
    stops["boardings_per_day"] = np.round(rng.gamma(2.0, 40.0, 400) * np.exp(-dist / 3000) * 3, 1)
    fire = real_hydrants().to_crs(MEASURE_CRS)
    fac_kinds = rng.choice(["school", "community_centre", "hospital", "supermarket", "clinic", "city_office"], 300)
    fac_idx = rng.integers(0, len(points), 300)
    facilities = gpd.GeoDataFrame({"id": [f"F{i:04d}" for i in range(300)],
                                   "name": [f"{k} {i}" for i, k in enumerate(fac_kinds)], "kind": fac_kinds,
                                   "district_code": points["district_code"].iloc[fac_idx].to_numpy()},
                                  geometry=points.geometry.iloc[fac_idx].to_numpy(), crs=MEASURE_CRS)
    junctions = rng.choice(len(roads), size=40, replace=False)
    acc_road = rng.choice(junctions, 600)
    acc_geom = [roads.geometry.iloc[j].interpolate(0.0).buffer(30).representative_point() for j in acc_road]
    start = pd.Timestamp("2025-11-01", tz="Asia/Tokyo")
    accidents = gpd.GeoDataFrame({"id": [f"AC{i:05d}" for i in range(600)],
                                  "occurred_at": [start + pd.Timedelta(minutes=int(m)) for m in
                                                  rng.integers(0, 365 * 24 * 60, 600)],
                                  "severity": rng.choice(["軽傷", "重傷", "死亡"], 600, p=[0.9, 0.09, 0.01])},
                                 geometry=acc_geom, crs=MEASURE_CRS)
    to4326 = lambda g: g.to_crs("EPSG:4326")  # noqa: E731
    return DemoCity(real_boundary(), to4326(districts), to4326(roads), to4326(points), registry, to4326(stops),
                    to4326(fire), to4326(facilities), to4326(accidents))
