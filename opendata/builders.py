"""Builders: the source of each dataset, registered by name and named in its definition file.

A builder reads the platform's database and returns a :class:`~cityos.opendata.anonymise.Table`.
Builders of personal data read per-person contributions and aggregate them with
:func:`~cityos.opendata.anonymise.aggregate`, which leaves out everyone without consent; the gate
checks the result again before anything is uploaded. Add a dataset's source by adding a function
here with ``@builder("name")``.

A GIS analysis is not rewritten here: its declaration (``gis/analyses/declared/<analysis>.py``,
``dataset=OpenData(...)``) names its builder, which :func:`_declared` derives (the rows of its ``dataset``
view); no builder of this file is named after a declared analysis or its dataset.

Metric names come from the one metric catalog (:mod:`cityos.ingest.catalog`, what ingest stores)
through :func:`catalog_metric`: a name the catalog does not know stops this module from loading,
instead of giving a dataset that can never have rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg

from cityos.ingest.catalog import DOMAINS, field_for
from cityos.ingest.rows import VEHICLES
from cityos.opendata.anonymise import Table, aggregate
from cityos.opendata.definitions import Portal

if TYPE_CHECKING:
    from cityos.gis.declarations import Analysis

#: The default city time zone (``CITYOS_TIMEZONE``); a build takes the setting's.
DEFAULT_ZONE = ZoneInfo("Asia/Tokyo")


class UnknownMetric(LookupError):
    """A builder names a metric the metric catalog does not have."""


def catalog_metric(domain: str, name: str) -> str:
    """``name``, checked against the metric catalog's ``domain`` (raises :class:`UnknownMetric`)."""
    if domain not in DOMAINS:
        raise UnknownMetric(f"no domain {domain!r} in the metric catalog; known: {', '.join(sorted(DOMAINS))}")
    if DOMAINS[domain].table == VEHICLES:
        raise UnknownMetric("vehicle readings are columns of telemetry.vehicle_positions, not named metrics")
    if field_for(domain, name) is None:
        known = ", ".join(sorted(DOMAINS[domain].fields)) or "names of the form " + str(DOMAINS[domain].free_names)
        raise UnknownMetric(f"the metric catalog has no {domain} metric {name!r}; known: {known}")
    return name


IMPORT_KWH = catalog_metric("hems", "import_kwh")
HEART_RATE = catalog_metric("health", "heart_rate_bpm")
STEPS = catalog_metric("health", "steps")


@dataclass(frozen=True)
class BuildContext:
    """What a builder may use besides the database."""

    portal: Portal
    k: int
    now: datetime
    params: dict = field(default_factory=dict)
    consented: frozenset[str] | None = None
    public_base_url: str = ""
    zone: ZoneInfo = DEFAULT_ZONE  # the city's time zone: days and months run from local midnight

    @property
    def tz(self) -> str:
        """The zone's IANA name, for ``at time zone %(tz)s`` in SQL."""
        return self.zone.key


Builder = Callable[[psycopg.Connection, BuildContext], Table]
BUILDERS: dict[str, Builder] = {}
#: builder -> the raw telemetry tables it reads: late readings there make its datasets due again.
READS: dict[str, tuple[str, ...]] = {}


#: builder -> the declared analysis it is derived from (:func:`_declared`).
DERIVED: dict[str, str] = {}


def builder(name: str, reads: tuple[str, ...] = ()) -> Callable[[Builder], Builder]:
    """Register a builder under ``name`` (once: a second builder of the same name is an error); ``reads``: the raw
    telemetry tables it reads."""
    def register(function: Builder) -> Builder:
        if name in BUILDERS:
            raise ValueError(f"two builders are named {name!r}")
        BUILDERS[name] = function
        READS[name] = reads
        return function
    return register


def _frame(conn: psycopg.Connection, sql: str, params: dict | tuple = ()) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        columns = [c.name for c in cur.description or []]
        return pd.DataFrame(cur.fetchall(), columns=columns)


@builder("fire_water")
def fire_water(conn: psycopg.Connection, ctx: BuildContext) -> Table:
    """消防水利施設一覧: every fire-water facility with its standard-format columns."""
    frame = _frame(conn, """
        select id, kind, address, diameter, note, attributes->>'町字ID' as town_id,
               coalesce(attributes->>'建物名等(方書)', '') as building,
               round(st_y(geom)::numeric, 6)::float8 as lat, round(st_x(geom)::numeric, 6)::float8 as lon
        from gis.fire_water order by id""")
    frame.insert(0, "city_code", ctx.portal.city_code)
    frame.insert(1, "city_name", ctx.portal.city_name)
    frame["prefecture"] = ctx.portal.prefecture
    return Table(frame)


@builder("bus_stops")
def bus_stops(conn: psycopg.Connection, ctx: BuildContext) -> Table:
    """Bus stops with average boardings per day."""
    return Table(_frame(conn, """
        select stop_id, name, boardings_per_day,
               round(st_y(geom)::numeric, 6)::float8 as lat, round(st_x(geom)::numeric, 6)::float8 as lon
        from gis.bus_stops order by stop_id"""))


@builder("energy_by_district_day", reads=("telemetry.energy_readings",))
def energy_by_district_day(conn: psycopg.Connection, ctx: BuildContext) -> Table:
    """Electricity bought per home per day (kWh) per district, from opted-in homes only; complete local days
    (the city's time zone) up to the last midnight."""
    days = int(ctx.params.get("days", 90))
    end = ctx.now.astimezone(ctx.zone).replace(hour=0, minute=0, second=0, microsecond=0)
    homes = _frame(conn, """
        select d.owner_subject as subject_id, d.district_code,
               (e.time at time zone %(tz)s)::date as day,
               max(e.value) - min(e.value) as kwh
        from telemetry.energy_readings e join core.devices d using (device_id)
        where e.metric = %(metric)s and e.time >= %(start)s and e.time < %(end)s
          and d.domain = 'hems' and d.owner_subject is not null and d.district_code is not null
        group by 1, 2, 3 having count(*) >= 2""",
                   {"start": end - timedelta(days=days), "end": end, "metric": IMPORT_KWH, "tz": ctx.tz})
    table = aggregate(homes, ["district_code", "day"], "subject_id", {"kwh_per_home": ("kwh", "mean")}, ctx.k,
                      ctx.consented, size_column="homes")
    frame = table.frame
    frame["kwh_per_home"] = frame["kwh_per_home"].round(2)
    frame["day"] = frame["day"].astype(str)
    return Table(frame, table.contributors)


@builder("snowplow_tracks", reads=("telemetry.vehicle_positions",))
def snowplow_tracks(conn: psycopg.Connection, ctx: BuildContext) -> Table:
    """Snowplow positions of the last days, one per vehicle and minute (city vehicles, not personal data)."""
    days = int(ctx.params.get("days", 7))
    frame = _frame(conn, """
        select distinct on (p.device_id, time_bucket('1 minute', p.time))
               p.device_id, time_bucket('1 minute', p.time) as time,
               round(st_y(p.geom)::numeric, 4)::float8 as lat, round(st_x(p.geom)::numeric, 4)::float8 as lon,
               p.speed_kmh, p.blade_down
        from telemetry.vehicle_positions p join core.devices d using (device_id)
        where d.public and d.kind = 'snowplow' and p.time >= %(since)s and p.time < %(until)s
        order by p.device_id, time_bucket('1 minute', p.time), p.time""",
                   {"since": ctx.now - timedelta(days=days), "until": ctx.now})
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["speed_kmh"] = frame["speed_kmh"].astype(float).round(0)
    return Table(frame)


@builder("health_by_district_month", reads=("telemetry.health_readings",))
def health_by_district_month(conn: psycopg.Connection, ctx: BuildContext) -> Table:
    """Per district and month: opted-in wearers, mean heart rate and mean daily steps; plus a whole-city row.

    Each wearer's day gives its mean heart rate and its steps (the sum of the day's readings: each
    reading counts the steps since the previous one); a month's figures are the means over its
    wearer-days. Districts with fewer than k wearers are blanked; the city row merges them, so small
    districts still count towards a published figure.
    """
    months = int(ctx.params.get("months", 12))
    start = (ctx.now.astimezone(ctx.zone).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
             - pd.DateOffset(months=months)).to_pydatetime()
    daily = _frame(conn, """
        select dv.owner_subject as subject_id, coalesce(r.district_code, dv.district_code) as district_code,
               to_char(h.time at time zone %(tz)s, 'YYYY-MM') as month,
               (h.time at time zone %(tz)s)::date as day,
               avg(h.value) filter (where h.metric = %(heart_rate)s) as heart_rate,
               sum(h.value) filter (where h.metric = %(steps)s) as steps
        from telemetry.health_readings h join core.devices dv using (device_id)
        left join registry.residents r on r.person_id = dv.owner_subject
        where h.time >= %(start)s and h.metric in (%(heart_rate)s, %(steps)s) and dv.owner_subject is not null
        group by 1, 2, 3, 4""", {"start": start, "heart_rate": HEART_RATE, "steps": STEPS, "tz": ctx.tz})
    values = {"heart_rate_mean": ("heart_rate", "mean"), "steps_per_day": ("steps", "mean")}
    districts = aggregate(daily.dropna(subset=["district_code"]), ["district_code", "month"], "subject_id",
                          values, ctx.k, ctx.consented, size_column="wearers")
    city_rows = daily.assign(district_code="all")
    city = aggregate(city_rows, ["district_code", "month"], "subject_id", values, ctx.k, ctx.consented,
                     size_column="wearers")
    frame = pd.concat([districts.frame, city.frame], ignore_index=True)
    frame["heart_rate_mean"] = frame["heart_rate_mean"].round(1)
    frame["steps_per_day"] = frame["steps_per_day"].round(0)
    return Table(frame, districts.contributors | city.contributors)


def _declared(analysis: Analysis) -> Builder:
    """The builder of a declared analysis (:mod:`cityos.gis.declarations`): the rows of its ``dataset`` view,
    parameters from the definition's ``[source.params]`` (checked like the CLI's and the API's), the city's
    columns first and the geometry kept or dropped as its :class:`~cityos.gis.declarations.OpenData` says."""
    dataset = analysis.open_data
    assert dataset is not None

    def build(conn: psycopg.Connection, ctx: BuildContext) -> Table:
        given = {p.name: ctx.params[p.name] for p in analysis.params_of("dataset") if p.name in ctx.params}
        day = None
        if analysis.reference_date:
            from cityos.gis.statistics import latest_reference_date

            day = latest_reference_date(ctx.now)
        declared = analysis.context(ctx.k, ctx.zone, ctx.now, channel="dataset", as_of=day, **given)
        result = analysis.view("dataset", analysis.run(conn, declared), declared)
        frame = pd.DataFrame(result) if isinstance(result, list) else result
        if not dataset.geometry:
            frame = frame.drop(columns=["geometry"], errors="ignore")
        frame = frame.reset_index(drop=True)
        if dataset.city:
            frame.insert(0, "city_code", ctx.portal.city_code)
            frame.insert(1, "city_name", ctx.portal.city_name)
        return Table(frame)

    build.__doc__ = f"{analysis.title} / {analysis.title_ja} (the declared analysis {analysis.id})."
    return build


def _register_declared() -> None:
    from cityos.gis.declarations import analyses

    for analysis in analyses().values():
        if (dataset := analysis.open_data) is not None:
            builder(dataset.builder, reads=dataset.reads)(_declared(analysis))
            DERIVED[dataset.builder] = analysis.id


_register_declared()
