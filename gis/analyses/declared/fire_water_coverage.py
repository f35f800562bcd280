"""消防水利の地区別充足: fire-water facilities per district and the share of each district within reach of one.

The 消防水利の基準 (消防庁告示) asks that every point of a built-up area lie within a set distance of a
fire-water source (100 to 140 m by land use); fire departments check it district by district before
placing new hydrants. Per district: the facilities inside it (all, hydrants, cisterns), per km², and the
share of its area within ``radius_m`` of any facility (counting facilities just across its edge).
Non-personal: public layers only. The whole analysis is this file: the command ``cityos gis
fire-water-coverage``, the route ``GET /api/v1/gis/fire-water-coverage``, the export and the open-data
builder ``fire_water_coverage`` are derived from the declaration below.
"""

from __future__ import annotations

import pandas as pd

from cityos.gis.declarations import Analysis, Context, Param

#: Metres are measured in the plane rectangular zone of the city (EPSG:6677, as every analysis here).
MEASURE_SRID = 6677

SQL = """
with fw as (select id, kind, geom, st_transform(geom, %(srid)s) as g from gis.fire_water
            where %(kind)s::text is null or kind = %(kind)s),
     d as (select code, name_ja, geom, st_transform(geom, %(srid)s) as g from gis.districts)
select d.code as district_code, d.name_ja,
       count(fw.id)::int as facilities,
       (count(fw.id) filter (where fw.kind = '消火栓'))::int as hydrants,
       (count(fw.id) filter (where fw.kind = '防火水槽'))::int as cisterns,
       round((count(fw.id) / nullif(st_area(d.g) / 1e6, 0))::numeric, 2)::float8 as per_km2,
       coalesce((select round((st_area(st_intersection(d.g, st_union(st_buffer(near.g, %(radius)s, 16))))
                               / nullif(st_area(d.g), 0))::numeric, 4)::float8
                 from fw near where st_dwithin(near.g, d.g, %(radius)s)), 0) as covered_share
from d left join fw on st_intersects(d.geom, fw.geom)
group by d.code, d.name_ja, d.g
order by d.code
"""


def fire_water_coverage(conn, ctx: Context) -> pd.DataFrame:
    """One row per district: facilities, hydrants, cisterns, per_km2 and covered_share (0-1)."""
    with conn.cursor() as cur:
        cur.execute(SQL, {"srid": MEASURE_SRID, "kind": ctx.params["kind"], "radius": ctx.params["radius_m"]})
        names = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=names)


ANALYSIS = Analysis(
    "fire_water_coverage", "Fire-water coverage per district", "消防水利の地区別充足", fire_water_coverage,
    not_audited="public layers only",
    params=(Param("radius_m", float, 140.0, "Reach of a facility in metres (消防水利の基準: 100-140 m).",
                  ge=10, le=1000),
            Param("kind", str, None, "Only facilities of this 種別 (e.g. 消火栓); default every kind.")),
    dataset=True, max_age=3600)
