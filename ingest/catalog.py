"""The metric catalog as the server uses it: each domain's table, beside the contract's fields.

The fields (kind, unit, plausible range, SenML units) are the payload contract's
(:mod:`cityos.ingest.contract`, which the edge gateway imports too), re-exported here under their
historic names; this module adds which table a domain's rows go to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cityos.ingest.contract import (
    ACCEL,
    BOOL,
    CHOICE,
    ENV_FIELD,
    ENV_NAME,
    EVENT,
    FIELDS,
    FREE_NAMES,
    HEALTH_FIELDS,
    HEMS,
    KWH,
    MAX_FLOAT,
    NUMBER,
    RESERVED,
    ROLES,
    SLEEP_CODES,
    SLEEP_STAGES,
    VEHICLE,
    VEHICLE_REQUIRED,
    WATT,
    Field,
    field_for,
)
from cityos.ingest.rows import ENERGY, HEALTH, MEASUREMENTS, VEHICLES

__all__ = ["ACCEL", "BOOL", "CHOICE", "DOMAINS", "ENV_FIELD", "ENV_NAME", "EVENT", "HEALTH_FIELDS", "HEMS", "KWH",
           "MAX_FLOAT", "NUMBER", "RESERVED", "ROLES", "SLEEP_CODES", "SLEEP_STAGES", "TABLE_BY_DOMAIN", "VEHICLE",
           "VEHICLE_REQUIRED", "WATT", "Domain", "Field", "field_for"]


@dataclass(frozen=True, slots=True)
class Domain:
    """A domain: the table its rows go to and its fields."""

    name: str
    table: str
    fields: dict[str, Field] = field(compare=False, hash=False)
    #: For domains with free metric names (env): the pattern a name must match, and its field.
    free_names: re.Pattern[str] | None = None
    free_field: Field | None = None


_TABLES = {"hems": ENERGY, "vehicle": VEHICLES, "health": HEALTH, "env": MEASUREMENTS}
DOMAINS: dict[str, Domain] = {
    name: Domain(name, _TABLES[name], fields, *FREE_NAMES.get(name, (None, None))) for name, fields in FIELDS.items()
}
TABLE_BY_DOMAIN: dict[str, str] = {d.name: d.table for d in DOMAINS.values()}
