"""The SensorThings entity sets over the platform's own tables (no second copy of the data).

=====================  ==========================================================================
entity set             rows
=====================  ==========================================================================
Things                 a device (city vehicle or environment sensor)
Sensors                the same device, as the instrument
Locations              a vehicle's position the caller may see now (one per vehicle)
HistoricalLocations    a vehicle's stored positions (its track)
Datastreams            one per device and metric (vehicles: their motion metrics; sensors: each
                       metric they reported), ``unitOfMeasurement`` from the metric catalog; and per
                       sensor metric its hourly and daily means (``sensor:metric:1h``, ``:1d``)
ObservedProperties     a metric
Observations           a reading of the telemetry hypertables, or a complete bucket of a series roll-up
FeaturesOfInterest     the device's place (a vehicle's position; sensors without one: none)
=====================  ==========================================================================

Household meters and health devices are never entities here, whoever asks. Anonymous callers see
public devices only, by the rule every open route uses (``public`` and not revoked; vehicles' positions
through :mod:`cityos.platform.vehicle_privacy`); staff with the ``sta:read`` scope also see the city's
non-public vehicles and sensors, in real time.

Ids are strings: a device's id, ``device:metric`` for a Datastream, ``device:metric:microseconds`` for an
Observation, ``device@time`` for a HistoricalLocation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cityos.platform.api.sensors import POSITION_METRICS
from cityos.platform.vehicle_privacy import PUBLIC_POSITIONS, visible_sql
from cityos.sta.filter import BOOL, GEOM, HOLE, NUMBER, TEXT, TIME, Expr, Params

#: Domains the SensorThings API serves at all (never household energy or health).
SERVED_DOMAINS = ("vehicle", "env")
VEHICLE_METRICS = tuple(sorted(POSITION_METRICS))
OBSERVATION_TYPE = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"


@dataclass
class Context:
    """Who asks (anonymous or staff), the city's time zone (the roll-ups' buckets) and the statement's
    placeholder values."""

    staff: bool
    params: Params = field(default_factory=Params)
    zone: str = "Asia/Tokyo"


@dataclass(frozen=True)
class Series:
    """An aggregated Datastream of every environment sensor's metric: the mean of each complete bucket of a
    series roll-up (:mod:`cityos.platform.db.series_rollups`), the same numbers as the platform's series route."""

    rollup: str  # the roll-up's name (its watermark) and table under telemetry
    width: str  # a PostgreSQL interval
    duration: str  # ISO 8601
    label: str


#: The aggregated Datastreams, by the suffix of their id (``sensor:metric:1h``); ``raw`` is the readings.
SERIES = {"1h": Series("measurements_hourly", "1 hour", "PT1H", "hourly mean"),
          "1d": Series("measurements_daily", "1 day", "P1D", "daily mean")}


def device_visible(ctx: Context, alias: str = "d") -> str:
    """SQL: the device may be shown to this caller (the open routes' rule for anonymous callers)."""
    served = f"{alias}.domain in ('vehicle', 'env') and {alias}.revoked_at is null"
    return served if ctx.staff else f"{served} and {alias}.public"


def _positions(ctx: Context) -> str:
    """One position per vehicle: for anonymous callers the one the public may see now."""
    if ctx.staff:
        return "(select device_id, time, geom from telemetry.latest_positions)"
    return PUBLIC_POSITIONS


@dataclass(frozen=True)
class Prop:
    """A property of an entity: its SQL (over the entity's row alias ``{a}``), type, and how it is written."""

    sql: str
    type: str
    kind: str = "plain"  # plain | time | geojson | json


@dataclass(frozen=True)
class Relation:
    """A navigation property: the target set, to-many or not, and the columns that join them
    (pairs of this entity's column and the target's column)."""

    target: str
    many: bool
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class EntitySet:
    """An entity set: its SQL source, properties, internal columns and navigation properties."""

    name: str
    singular: str
    props: dict[str, Prop]
    columns: tuple[str, ...]
    relations: dict[str, Relation]
    default_order: tuple[tuple[str, str], ...] = (("id", "asc"),)
    #: shortcuts for paths through a to-one relation (``Datastream/id``), over the own row
    paths: dict[str, Prop] = field(default_factory=dict)
    #: what makes any order total (columns over ``{a}``); the id unless the rows' key is cheaper to sort by
    tiebreak: tuple[str, ...] = ("{a}.id",)

    def source(self, ctx: Context) -> str:
        return SOURCES[self.name](ctx)

    def resolve(self, path: list[str], alias: str, ctx: Context, depth: int = 0) -> Expr | None:
        """The expression of a property path over this entity's row ``alias``, or None if there is none."""
        joined = "/".join(path)
        if joined in self.paths:
            prop = self.paths[joined]
            return Expr(prop.sql.format(a=alias), prop.type)
        if len(path) == 1 and path[0] in self.props:
            prop = self.props[path[0]]
            if prop.kind in ("json", "unit"):
                return None
            return Expr(prop.sql.format(a=alias), prop.type)
        if len(path) == 2 and path[0] in self.props and self.props[path[0]].kind == "json":
            key = ctx.params.add(path[1], "text")
            return Expr(f"({self.props[path[0]].sql.format(a=alias)} ->> {key})", TEXT)
        relation = self.relations.get(path[0])
        if relation is None or len(path) < 2 or depth >= 3:
            return None
        target = ENTITY_SETS[relation.target]
        inner_alias = f"n{depth + 1}"
        inner = target.resolve(path[1:], inner_alias, ctx, depth + 1)
        if inner is None:
            return None
        join = " and ".join(f"{inner_alias}.{theirs} = {alias}.{ours}" for ours, theirs in relation.pairs)
        if relation.many or inner.scope:
            # any of the related entities (FROST's reading of Things?$filter=Datastreams/name eq 'x'): the
            # condition made of this value goes into an exists over them
            scope = f"exists (select 1 from {target.source(ctx)} {inner_alias} where {join} and " \
                    f"{inner.scope or HOLE})"
            return Expr(inner.sql, inner.type, scope)
        return Expr(f"(select {inner.sql} from {target.source(ctx)} {inner_alias} where {join} limit 1)", inner.type)


def _things(ctx: Context) -> str:
    return f"""(select d.device_id as id, d.display_name as name, d.domain || ' ' || d.kind as description,
        jsonb_build_object('domain', d.domain, 'kind', d.kind, 'district_code', d.district_code) as properties,
        d.domain, d.kind from core.devices d where {device_visible(ctx)})"""


def _sensors(ctx: Context) -> str:
    return f"""(select d.device_id as id, coalesce(nullif(d.display_name, ''), d.device_id) || ' sensor' as name,
        d.domain || ' ' || d.kind as description, 'text/plain' as encoding_type,
        d.domain || '/' || d.kind as metadata from core.devices d where {device_visible(ctx)})"""


def _locations(ctx: Context) -> str:
    return f"""(select p.device_id as id, coalesce(nullif(d.display_name, ''), d.device_id) || ' position' as name,
        'where the vehicle is (or was, for vehicles shown with a delay)' as description,
        'application/geo+json' as encoding_type, p.geom, p.device_id
        from {_positions(ctx)} p join core.devices d using (device_id) where {device_visible(ctx)})"""


def _historical_locations(ctx: Context) -> str:
    delay = "true" if ctx.staff else visible_sql("d", "v.time")
    return f"""(select v.device_id || '@' || to_char(v.time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        as id, v.time, v.device_id
        from telemetry.vehicle_positions v join core.devices d using (device_id)
        where {device_visible(ctx)} and {delay})"""


_METRIC_ARRAY = "array[" + ", ".join(f"'{m}'" for m in VEHICLE_METRICS) + "]"


_SERIES_VALUES = ", ".join(f"('{key}', '{s.label}', '{s.duration}')" for key, s in SERIES.items())


def _datastreams(ctx: Context) -> str:
    zone = ctx.params.add(ctx.zone, "text")
    return f"""(select d.device_id || ':' || m.metric || case when s.series = 'raw' then '' else ':' || s.series end
            as id,
        coalesce(nullif(d.display_name, ''), d.device_id) || ' ' || m.metric
            || case when s.series = 'raw' then '' else ' (' || s.label || ')' end as name,
        case when s.series = 'raw' then '' else s.label || ' of ' end
            || m.metric || ' of ' || d.domain || ' ' || d.kind || ' ' || d.device_id as description,
        '{OBSERVATION_TYPE}' as observation_type,
        case when s.series = 'raw' then '{{}}'::jsonb else jsonb_build_object('aggregation', 'mean',
            'resultInterval', s.duration, 'timeZone', {zone}::text, 'source', d.device_id || ':' || m.metric) end
            as properties,
        d.device_id, m.metric, d.domain, s.series
        from core.devices d cross join lateral (
            select lv.metric from telemetry.latest_values lv where lv.device_id = d.device_id and d.domain = 'env'
            union all select unnest({_METRIC_ARRAY}) where d.domain = 'vehicle') m
        cross join lateral (select 'raw', '', '' union all select * from (values {_SERIES_VALUES}) v
                            where d.domain = 'env') s(series, label, duration)
        where {device_visible(ctx)})"""


def _observed_properties(ctx: Context) -> str:
    return f"""(select distinct ds.metric as id, ds.metric as name, 'urn:cityos:metric:' || ds.metric as definition,
        'the metric ' || ds.metric || ' of the platform''s metric catalog' as description
        from {_datastreams(ctx)} ds)"""


def _features(ctx: Context) -> str:
    return f"""(select d.device_id as id, coalesce(nullif(d.display_name, ''), d.device_id) as name,
        'the place observed by ' || d.device_id as description, 'application/geo+json' as encoding_type, p.geom
        from core.devices d left join {_positions(ctx)} p using (device_id) where {device_visible(ctx)})"""


_OBS_COLUMNS = ("{d}.device_id || ':' || {m} || ':' || (extract(epoch from {t}) * 1000000)::bigint as id, "
                "{t} as phenomenon_time, {t} as result_time, {v} as result, {d}.device_id, {m} as metric, "
                "null::timestamptz as phenomenon_end, 'raw'::text as series")


def _series_observations(ctx: Context, key: str, where: str) -> str:
    """The Observations of the aggregated Datastreams ``key``: the roll-up's complete buckets (before its
    watermark), each an interval ``[bucket, next bucket)`` in the city's time zone with its mean."""
    series = SERIES[key]
    zone = ctx.params.add(ctx.zone, "text")
    end = f"((r.bucket at time zone {zone} + interval '{series.width}') at time zone {zone})"
    return (f"select r.device_id || ':' || r.metric || ':{key}:' || (extract(epoch from r.bucket) * 1000000)::bigint "
            f"as id, r.bucket as phenomenon_time, {end} as result_time, r.avg as result, r.device_id, r.metric, "
            f"{end} as phenomenon_end, '{key}'::text as series "
            f"from telemetry.{series.rollup} r join core.devices d using (device_id) "
            f"where r.zone = {zone} and r.bucket < (select w.done_until from cityos_meta.rollup_watermarks w "
            f"where w.rollup = '{series.rollup}' and w.zone = {zone}) and d.domain = 'env' and {where}")


def observations_source(ctx: Context, device_id: str | None = None, metric: str | None = None,
                        domain: str | None = None, series: str | None = None) -> str:
    """The Observations of the caller's devices; one Datastream's (``device_id``, ``metric``, ``domain``,
    ``series`` known) read straight from its hypertable or roll-up, so the index on (device, metric, time)
    serves it."""
    parts = []
    one = device_id is not None and metric is not None
    if series in SERIES or (series is None and domain in (None, "env")):
        for key in ([series] if series in SERIES else list(SERIES)):
            where = device_visible(ctx)
            if one:
                where += f" and r.device_id = {ctx.params.add(device_id, 'text')} and r.metric = " \
                         f"{ctx.params.add(metric, 'text')}"
            parts.append(_series_observations(ctx, key, where))
    if series in SERIES:
        domain = "none"
    if domain in (None, "env"):
        where = device_visible(ctx)
        if one:
            where += f" and m.device_id = {ctx.params.add(device_id, 'text')} and m.metric = " \
                     f"{ctx.params.add(metric, 'text')}"
        columns = _OBS_COLUMNS.format(d="m", m="m.metric", t="m.time", v="m.value")
        parts.append(f"select {columns} from telemetry.measurements m join core.devices d using (device_id) "
                     f"where d.domain = 'env' and {where}")
    if domain in (None, "vehicle"):
        where = device_visible(ctx) + ("" if ctx.staff else f" and {visible_sql('d', 'v.time')}")
        if one and metric in VEHICLE_METRICS:
            where += f" and v.device_id = {ctx.params.add(device_id, 'text')}"
            columns = _OBS_COLUMNS.format(d="v", m=ctx.params.add(metric, "text"), t="v.time",
                                          v=f"v.{metric}::float8")  # metric: one of VEHICLE_METRICS
            parts.append(f"select {columns} from telemetry.vehicle_positions v join core.devices d using (device_id) "
                         f"where d.domain = 'vehicle' and v.{metric} is not null and {where}")
        elif not one:
            values = ", ".join(f"('{m}', v.{m}::float8)" for m in VEHICLE_METRICS)
            columns = _OBS_COLUMNS.format(d="v", m="x.metric", t="v.time", v="x.value")
            parts.append(f"select {columns} from telemetry.vehicle_positions v join core.devices d using (device_id) "
                         f"cross join lateral (values {values}) x(metric, value) "
                         f"where d.domain = 'vehicle' and x.value is not null and {where}")
    if not parts:
        return "(select null::text as id, null::timestamptz as phenomenon_time, null::timestamptz as result_time, " \
               "null::float8 as result, null::text as device_id, null::text as metric, " \
               "null::timestamptz as phenomenon_end, null::text as series where false)"
    return "(" + " union all ".join(parts) + ")"


SOURCES = {
    "Things": _things, "Sensors": _sensors, "Locations": _locations, "HistoricalLocations": _historical_locations,
    "Datastreams": _datastreams, "ObservedProperties": _observed_properties, "FeaturesOfInterest": _features,
    "Observations": observations_source,
}

_ID = Prop("{a}.id", TEXT)
_NAME = Prop("{a}.name", TEXT)
_DESCRIPTION = Prop("{a}.description", TEXT)
_ENCODING = Prop("{a}.encoding_type", TEXT)

ENTITY_SETS: dict[str, EntitySet] = {e.name: e for e in (
    EntitySet("Things", "Thing",
              {"id": _ID, "name": _NAME, "description": _DESCRIPTION,
               "properties": Prop("{a}.properties", TEXT, "json")},
              ("domain", "kind"),
              {"Datastreams": Relation("Datastreams", True, (("id", "device_id"),)),
               "Locations": Relation("Locations", True, (("id", "device_id"),)),
               "HistoricalLocations": Relation("HistoricalLocations", True, (("id", "device_id"),))}),
    EntitySet("Sensors", "Sensor",
              {"id": _ID, "name": _NAME, "description": _DESCRIPTION, "encodingType": _ENCODING,
               "metadata": Prop("{a}.metadata", TEXT)}, (),
              {"Datastreams": Relation("Datastreams", True, (("id", "device_id"),))}),
    EntitySet("Locations", "Location",
              {"id": _ID, "name": _NAME, "description": _DESCRIPTION, "encodingType": _ENCODING,
               "location": Prop("{a}.geom", GEOM, "geojson")}, ("device_id",),
              {"Things": Relation("Things", True, (("device_id", "id"),)),
               "HistoricalLocations": Relation("HistoricalLocations", True, (("device_id", "device_id"),))}),
    EntitySet("HistoricalLocations", "HistoricalLocation",
              {"id": _ID, "time": Prop("{a}.time", TIME, "time")}, ("device_id",),
              {"Thing": Relation("Things", False, (("device_id", "id"),)),
               "Locations": Relation("Locations", True, (("device_id", "device_id"),))},
              (("time", "desc"), ("id", "asc"))),
    EntitySet("Datastreams", "Datastream",
              {"id": _ID, "name": _NAME, "description": _DESCRIPTION,
               "observationType": Prop("{a}.observation_type", TEXT),
               "unitOfMeasurement": Prop("null", TEXT, "unit"), "properties": Prop("{a}.properties", TEXT, "json")},
              ("device_id", "metric", "domain", "series"),
              {"Thing": Relation("Things", False, (("device_id", "id"),)),
               "Sensor": Relation("Sensors", False, (("device_id", "id"),)),
               "ObservedProperty": Relation("ObservedProperties", False, (("metric", "id"),)),
               "Observations": Relation("Observations", True, (("device_id", "device_id"), ("metric", "metric"),
                                                               ("series", "series")))},
              paths={"Thing/id": Prop("{a}.device_id", TEXT), "Sensor/id": Prop("{a}.device_id", TEXT),
                     "ObservedProperty/id": Prop("{a}.metric", TEXT)}),
    EntitySet("ObservedProperties", "ObservedProperty",
              {"id": _ID, "name": _NAME, "definition": Prop("{a}.definition", TEXT), "description": _DESCRIPTION}, (),
              {"Datastreams": Relation("Datastreams", True, (("id", "metric"),))}),
    EntitySet("Observations", "Observation",
              {"id": _ID, "phenomenonTime": Prop("{a}.phenomenon_time", TIME, "interval"),
               "resultTime": Prop("{a}.result_time", TIME, "time"), "result": Prop("{a}.result", NUMBER)},
              ("device_id", "metric", "series", "phenomenon_end"),
              {"Datastream": Relation("Datastreams", False, (("device_id", "device_id"), ("metric", "metric"),
                                                              ("series", "series"))),
               "FeatureOfInterest": Relation("FeaturesOfInterest", False, (("device_id", "id"),))},
              (("phenomenonTime", "asc"),),
              paths={"Datastream/id": Prop("({a}.device_id || ':' || {a}.metric || case when {a}.series = 'raw' "
                                           "then '' else ':' || {a}.series end)", TEXT),
                     "FeatureOfInterest/id": Prop("{a}.device_id", TEXT)},
              # the hypertables' key, in the id's order: one Datastream's page is an index scan, not a sort
              tiebreak=("{a}.device_id", "{a}.metric", "{a}.phenomenon_time", "{a}.series")),
    EntitySet("FeaturesOfInterest", "FeatureOfInterest",
              {"id": _ID, "name": _NAME, "description": _DESCRIPTION, "encodingType": _ENCODING,
               "feature": Prop("{a}.geom", GEOM, "geojson")}, (),
              {"Observations": Relation("Observations", True, (("id", "device_id"),))}),
)}

__all__ = ["BOOL", "ENTITY_SETS", "Context", "EntitySet", "Prop", "Relation", "device_visible",
           "observations_source"]
