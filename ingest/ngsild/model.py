"""Which NGSI-LD entity each registered device is, and what of it a caller may see.

A device is one entity, ``urn:ngsi-ld:{Type}:{device_id}``. Its type follows the Smart Data Models
where one fits: city vehicles are ``Vehicle`` (dataModel.Transportation), weather and air-quality
stations ``WeatherObserved`` / ``AirQualityObserved``, every other device (household meters,
wearables, other environment sensors) ``Device`` (dataModel.Device). Its attributes are its latest
values (one Property per metric, with ``observedAt`` and ``unitCode``), a vehicle's position
(``location``, a GeoProperty) with ``speed`` and ``heading``, and ``name`` / ``category``.

Anonymous callers and API keys see public devices only (city vehicles and environment sensors; the
registry refuses to make household or health devices public), vehicles through the same
:data:`~cityos.platform.vehicle_privacy.PUBLIC_POSITIONS` as every open route (patrol cars 15 minutes
late). A token with the scope :data:`READ_SCOPE` sees every device, audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from cityos.ingest.catalog import DOMAINS
from cityos.ingest.ngsild.problems import NgsiError
from cityos.platform.auth import Principal
from cityos.platform.vehicle_privacy import PUBLIC_POSITIONS

#: Staff scope that shows personal devices (household meters, wearables) and real-time patrol cars.
READ_SCOPE = "telemetry:read"
#: Service scope of producers (a city moving from a FIWARE IoT Agent) writing readings over NGSI-LD.
WRITE_SCOPE = "telemetry:write"
ENTITY_PREFIX = "urn:ngsi-ld:"


@dataclass(frozen=True)
class EntityType:
    """An entity type: its short name, the devices it covers and the Smart Data Model it follows."""

    name: str
    domain: str
    kinds: tuple[str, ...] | None  # None: every other kind of the domain
    model: str


TYPES: list[EntityType] = [
    EntityType("Vehicle", "vehicle", None, "https://smartdatamodels.org/dataModel.Transportation/Vehicle"),
    EntityType("WeatherObserved", "env", ("weather", "weather_station"),
               "https://smartdatamodels.org/dataModel.Weather/WeatherObserved"),
    EntityType("AirQualityObserved", "env", ("air_quality", "air"),
               "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"),
    EntityType("Device", "env", None, "https://smartdatamodels.org/dataModel.Device/Device"),
    EntityType("Device", "hems", None, "https://smartdatamodels.org/dataModel.Device/Device"),
    EntityType("Device", "health", None, "https://smartdatamodels.org/dataModel.Device/Device"),
]
TYPE_NAMES = sorted({t.name for t in TYPES})


def _type_sql() -> str:
    cases = []
    for t in TYPES:
        kinds = f" and d.kind in ({', '.join(repr(k) for k in t.kinds)})" if t.kinds else ""
        cases.append(f"when d.domain = '{t.domain}'{kinds} then '{t.name}'")
    return "case " + " ".join(cases) + " end"


#: SQL of an entity's type from a device row ``d``.
TYPE_SQL = _type_sql()

#: Vehicle attributes kept as columns of the position (attribute -> (column, unitCode)).
VEHICLE_ATTRS = {"speed": ("speed_kmh", "KMH"), "heading": ("heading_deg", "DD")}
#: Attributes every entity has, from the registry (attribute -> column of ``e``).
REGISTRY_ATTRS = {"name": "display_name", "category": "kind"}
#: UN/CEFACT common codes of the catalog's units.
UNIT_CODES = {"W": "WTT", "kWh": "KWH", "A": "AMP", "%": "P1", "km/h": "KMH", "deg": "DD", "m": "MTR",
              "m/s2": "MSK", "1/min": "C94", "count": "C62", "Cel": "CEL"}


def unit_code(domain: str, metric: str) -> str | None:
    """The unitCode of ``metric`` of ``domain`` (None when the catalog gives no unit)."""
    spec = DOMAINS.get(domain)
    field = spec.fields.get(metric) if spec else None
    return UNIT_CODES.get(field.unit) if field and field.unit else None


def entity_id(type_name: str, device_id: str) -> str:
    """The entity id of a device."""
    return f"{ENTITY_PREFIX}{type_name}:{device_id}"


def device_of(entity: str) -> str:
    """The device id named by an entity id (400 when it is not one of ours)."""
    if not entity.startswith(ENTITY_PREFIX) or len(entity) > 300:
        raise NgsiError("BadRequestData", f"an entity id here is urn:ngsi-ld:<Type>:<device id>, not {entity[:100]!r}")
    return entity.rsplit(":", 1)[-1]


def sees_everything(principal: Principal | None) -> bool:
    """Whether the caller sees personal devices and real-time patrol cars."""
    return principal is not None and principal.allows(READ_SCOPE)


def entities_sql(staff: bool) -> str:
    """The entities a caller may see, one row per device (a CTE body over ``core.devices d``)."""
    positions = "telemetry.latest_positions" if staff else PUBLIC_POSITIONS
    visible = "true" if staff else "d.public and d.domain in ('vehicle', 'env')"
    return f"""
        select d.device_id, d.domain, d.kind, d.display_name, d.created_at, {TYPE_SQL} as type,
               coalesce(pos.geom, md.geom) as geom, coalesce(pos.time, d.created_at) as geom_time,
               pos.time as pos_time, pos.speed_kmh, pos.heading_deg
        from core.devices d
        left join {positions} pos on pos.device_id = d.device_id
        left join lateral (
            select case when jsonb_typeof(d.metadata -> 'lon') = 'number'
                             and jsonb_typeof(d.metadata -> 'lat') = 'number'
                        then st_setsrid(st_point((d.metadata ->> 'lon')::float8, (d.metadata ->> 'lat')::float8), 4326)
                   end as geom) md on true
        where d.revoked_at is null and {visible}"""
