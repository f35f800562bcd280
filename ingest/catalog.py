"""The metric catalog: per domain, its table and each field's kind, unit, plausible range and SenML units.

This is the machine-readable form of the tables in ``ingest/CONTRACT.md``. Standard library only:
the edge gateway imports it to check readings before it sends them.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field

from cityos.ingest.rows import ENERGY, HEALTH, MEASUREMENTS, VEHICLES

NUMBER, BOOL, CHOICE, EVENT = "number", "bool", "choice", "event"
MAX_FLOAT = sys.float_info.max


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a reading.

    ``kind`` is ``number`` (a finite JSON number in ``[low, high]``), ``bool`` (``true``/``false``),
    ``choice`` (one of ``choices``) or ``event`` (the value 1, or ``true``). ``senml_units`` maps
    each unit a SenML record may give to the factor that converts it into ``unit``.
    """

    kind: str
    unit: str = ""
    low: float = -MAX_FLOAT
    high: float = MAX_FLOAT
    choices: tuple[str, ...] = ()
    senml_units: dict[str, float] = field(default_factory=dict, compare=False, hash=False)


WATT = {"W": 1.0, "kW": 1000.0}
KWH = {"kWh": 1.0, "Wh": 0.001}
ACCEL = {"m/s2": 1.0}

HEMS: dict[str, Field] = {
    "power_w": Field(NUMBER, "W", -30_000, 50_000, senml_units=WATT),
    "import_kwh": Field(NUMBER, "kWh", 0, 1e8, senml_units=KWH),
    "export_kwh": Field(NUMBER, "kWh", 0, 1e8, senml_units=KWH),
    "current_r_a": Field(NUMBER, "A", -500, 500, senml_units={"A": 1.0}),
    "current_t_a": Field(NUMBER, "A", -500, 500, senml_units={"A": 1.0}),
    "solar_w": Field(NUMBER, "W", 0, 30_000, senml_units=WATT),
    "solar_kwh": Field(NUMBER, "kWh", 0, 1e8, senml_units=KWH),
    "battery_soc_pct": Field(NUMBER, "%", 0, 100, senml_units={"%": 1.0, "%EL": 1.0}),
}

ROLES = ("snowplow", "patrol_car", "official_car", "bus")
VEHICLE: dict[str, Field] = {
    "lat": Field(NUMBER, "deg", -90, 90, senml_units={"lat": 1.0, "deg": 1.0}),
    "lon": Field(NUMBER, "deg", -180, 180, senml_units={"lon": 1.0, "deg": 1.0}),
    "speed_kmh": Field(NUMBER, "km/h", 0, 250, senml_units={"km/h": 1.0, "m/s": 3.6}),
    "heading_deg": Field(NUMBER, "deg", 0, 360, senml_units={"deg": 1.0, "rad": 180 / math.pi}),
    "gps_error_m": Field(NUMBER, "m", 0, 10_000, senml_units={"m": 1.0}),
    "accel_long": Field(NUMBER, "m/s2", -50, 50, senml_units=ACCEL),
    "accel_trans": Field(NUMBER, "m/s2", -50, 50, senml_units=ACCEL),
    "accel_vert": Field(NUMBER, "m/s2", -50, 50, senml_units=ACCEL),
    "role": Field(CHOICE, choices=ROLES),
    "blade_down": Field(BOOL),
}
#: Vehicle fields every reading must have.
VEHICLE_REQUIRED = ("lat", "lon")

#: Sleep stages and the codes stored as ``value`` (the stage's name is stored as ``label``).
SLEEP_STAGES = ("awake", "light", "deep", "rem")
SLEEP_CODES: dict[str, float] = {stage: float(code) for code, stage in enumerate(SLEEP_STAGES)}
HEALTH_FIELDS: dict[str, Field] = {
    "heart_rate_bpm": Field(NUMBER, "1/min", 20, 250, senml_units={"beat/min": 1.0, "1/min": 1.0}),
    "steps": Field(NUMBER, "count", 0, 100_000, senml_units={"count": 1.0, "steps": 1.0}),
    "body_temp_c": Field(NUMBER, "Cel", 30, 45, senml_units={"Cel": 1.0}),
    "sleep_stage": Field(CHOICE, choices=SLEEP_STAGES),
    "pillbox_open": Field(EVENT, "count", 1, 1, senml_units={"count": 1.0}),
}

#: Generic environment measurements (soil, air, water ...): any name of this form, any finite number.
ENV_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
ENV_FIELD = Field(NUMBER, "")


@dataclass(frozen=True, slots=True)
class Domain:
    """A domain: the table its rows go to and its fields."""

    name: str
    table: str
    fields: dict[str, Field] = field(compare=False, hash=False)
    #: For domains with free metric names (env): the pattern a name must match, and its field.
    free_names: re.Pattern[str] | None = None
    free_field: Field | None = None


DOMAINS: dict[str, Domain] = {
    "hems": Domain("hems", ENERGY, HEMS),
    "vehicle": Domain("vehicle", VEHICLES, VEHICLE),
    "health": Domain("health", HEALTH, HEALTH_FIELDS),
    "env": Domain("env", MEASUREMENTS, {}, ENV_NAME, ENV_FIELD),
}
TABLE_BY_DOMAIN: dict[str, str] = {d.name: d.table for d in DOMAINS.values()}
#: Names no reading field may have: ``t`` is the observation time, ``sn`` the reading's sequence number.
RESERVED = frozenset({"t", "sn"})


def field_for(domain: str, name: str) -> Field | None:
    """The catalog entry of field ``name`` in ``domain``, or ``None`` when the domain has no such field."""
    spec = DOMAINS[domain]
    found = spec.fields.get(name)
    if found is not None:
        return found
    if spec.free_names is not None and name not in RESERVED and spec.free_names.fullmatch(name):
        return spec.free_field
    return None
