"""The energy dashboard's data: a household's own consumption beside its district's average."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query
from psycopg.rows import dict_row

from cityos.platform.auth import HOUSEHOLD_PREFIX, Principal, require_scope
from cityos.platform.db.connection import connect
from cityos.platform.exits import API_ENERGY_MY, consent_filter

router = APIRouter(prefix="/api/v1/energy", tags=["energy dashboard"])

MY_PROFILE = """
    with mine as (
        select extract(hour from time at time zone %(tz)s)::int as hour, avg(value) as w
        from telemetry.energy_readings
        where device_id = %(device)s and metric = 'power_w' and time >= now() - %(days)s * interval '1 day'
        group by 1
    ),
    neighbours as (
        select d.device_id from core.devices d
        where d.domain = 'hems' and d.revoked_at is null and d.district_code = %(district)s and {consenting}
    ),
    district as (
        select extract(hour from e.time at time zone %(tz)s)::int as hour, avg(e.value) as w,
               count(distinct e.device_id) as homes
        from telemetry.energy_readings e join neighbours using (device_id)
        where e.metric = 'power_w' and e.time >= now() - %(days)s * interval '1 day'
        group by 1
    )
    select h.hour, round(mine.w::numeric, 1)::float8 as my_w,
           case when district.homes >= %(k)s then round(district.w::numeric, 1)::float8 end as district_avg_w,
           case when district.homes >= %(k)s then district.homes end as homes
    from generate_series(0, 23) h(hour)
    left join mine using (hour) left join district using (hour)
    order by h.hour"""


@router.get("/my", summary="My home against my district / わが家と地区平均")
def my_energy(days: int = Query(7, ge=1, le=90),
              principal: Principal = Depends(require_scope(HOUSEHOLD_PREFIX))) -> dict:
    """Average power by local hour of day (the city's time zone, ``CITYOS_TIMEZONE``) of the signed-in household
    and of the homes of its district whose owners consented to energy services (the average and the number of
    homes shown only when at least k homes contribute: a count below k would tell a household how many
    neighbours share the service)."""
    from cityos.platform.settings import get_settings

    device_id = principal.households[0]
    with connect(autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        home = cur.execute("select district_code from core.devices where device_id = %s and domain = 'hems' "
                           "and revoked_at is null", (device_id,)).fetchone()
        if home is None:
            raise HTTPException(404, "this household's meter is not registered")
        query = MY_PROFILE.format(consenting=consent_filter(API_ENERGY_MY, "d.owner_subject"))
        rows = cur.execute(query, {"device": device_id, "district": home["district_code"], "days": days,
                                        "k": get_settings().k_anonymity, "tz": get_settings().timezone}).fetchall()
    return {"device_id": device_id, "district_code": home["district_code"], "days": days, "hours": rows}
