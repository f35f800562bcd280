"""Producers over NGSI-LD: upserts and attribute updates become readings, exactly like MQTT messages.

An entity (``urn:ngsi-ld:<Type>:<device id>`` of a registered device) is turned into one message of
the payload contract (``{"batch": [{"t": observedAt, metric: value, ...}, ...]}`` on the device's
``readings`` topic) and handed to :func:`cityos.ingest.pipeline.process_message`, the worker's own
path: the same parser, validation, consent admission, dead letters (with the reason), writer and
per-device ledger.
A vehicle's ``location`` (a GeoJSON Point) becomes ``lat``/``lon``, ``speed`` and ``heading`` its
``speed_kmh`` and ``heading_deg``; every other attribute is a metric of the device's domain. ``name``
and ``category`` belong to the device registry and are refused here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from cityos.ingest.admission import Admission
from cityos.ingest.http_readings import add_readings
from cityos.ingest.ngsild.model import REGISTRY_ATTRS, TYPE_SQL, VEHICLE_ATTRS, device_of
from cityos.ingest.ngsild.problems import NgsiError
from cityos.ingest.ngsild.terms import Context
from cityos.ingest.writer import Batch, write_batch

MAX_ENTITIES = 1000
MAX_INSTANCES = 10_000
_RESERVED = {"id", "type", "@context", "createdAt", "modifiedAt", "scope"}


@dataclass
class Outcome:
    """What a batch operation did: entity ids stored, and the problems of the others."""

    success: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)

    def fail(self, entity: str, err: NgsiError) -> None:
        self.errors.append({"entityId": entity, "error": err.body()})


def _instances(name: str, value: object, key_values: bool) -> list[tuple[object, str | None]]:
    """(value, observedAt) of each instance of one attribute in a body."""
    items = value if isinstance(value, list) and not key_values else [value]
    out: list[tuple[object, str | None]] = []
    for item in items:
        if key_values or not isinstance(item, dict) or ("type" not in item and "value" not in item):
            out.append((item, None))
            continue
        if item.get("type", "Property") not in ("Property", "GeoProperty"):
            raise NgsiError("BadRequestData", f"{name}: only Properties and GeoProperties are stored")
        if "value" not in item:
            raise NgsiError("BadRequestData", f"{name}: a Property needs a value")
        observed = item.get("observedAt")
        if observed is not None and not isinstance(observed, str):
            raise NgsiError("BadRequestData", f"{name}: observedAt is a date-time string")
        out.append((item["value"], observed))
    return out


def readings_of(attrs: dict, ctx: Context, domain: str, *, key_values: bool, now: datetime) -> list[dict]:
    """Readings of the payload contract from an entity's attributes, one per observation time."""
    by_time: dict[str, dict] = {}
    arrival = now.astimezone(UTC).isoformat()
    count = 0
    for raw_name, value in attrs.items():
        if raw_name in _RESERVED:
            continue
        name = ctx.compact(ctx.expand(raw_name))
        if name in REGISTRY_ATTRS:
            raise NgsiError("BadRequestData", f"{name} is set in the device registry, not by readings")
        for item, observed in _instances(name, value, key_values):
            count += 1
            if count > MAX_INSTANCES:
                raise NgsiError("BadRequestData", f"at most {MAX_INSTANCES} attribute instances per request")
            reading = by_time.setdefault(observed or arrival, {"t": observed or arrival})
            if domain == "vehicle" and name == "location":
                if not (isinstance(item, dict) and item.get("type") == "Point"
                        and isinstance(item.get("coordinates"), list) and len(item["coordinates"]) == 2):
                    raise NgsiError("BadRequestData", "location: a GeoJSON Point [lon, lat]")
                reading["lon"], reading["lat"] = item["coordinates"]
            elif domain == "vehicle" and name in VEHICLE_ATTRS:
                reading[VEHICLE_ATTRS[name][0]] = item
            else:
                reading[name] = item
    if not by_time:
        raise NgsiError("BadRequestData", "the entity has no attribute to store")
    return list(by_time.values())


def store_entity(conn: psycopg.Connection, entity_id: str, type_name: str | None, attrs: dict, ctx: Context, *,
                 key_values: bool, client: str, admission: Admission) -> None:
    """Store one entity's attributes as readings of its device (NgsiError with the reason if refused)."""
    device = device_of(entity_id)
    row = conn.execute(f"select d.domain, {TYPE_SQL} from core.devices d where d.device_id = %s "
                       "and d.revoked_at is null", (device,)).fetchone()
    if row is None:
        raise NgsiError("ResourceNotFound", f"no registered device {device}: register it first "
                                            "(POST /api/v1/devices)")
    domain, actual = row
    if entity_id != f"urn:ngsi-ld:{actual}:{device}" or (type_name and ctx.compact(ctx.expand(type_name)) != actual):
        raise NgsiError("BadRequestData", f"device {device} is the entity urn:ngsi-ld:{actual}:{device} of type "
                                          f"{actual}")
    now = datetime.now(UTC)
    readings = readings_of(attrs, ctx, domain, key_values=key_values, now=now)
    batch = Batch(received_at=now)
    outcome = add_readings(batch, conn, domain, device, readings, now=now, admission=admission, client_id=client)
    write_batch(conn, batch)  # rows or dead letter, and the device's ledger, in one transaction
    if (letter := outcome.dead_letter) is not None:
        raise NgsiError("BadRequestData", f"refused ({letter.reason}): {letter.detail}; kept as a dead letter")


def upsert(conn: psycopg.Connection, entities: list, ctx_of, *, key_values: bool, client: str) -> Outcome:
    """Store a batch of entities; each succeeds or fails on its own."""
    if not isinstance(entities, list) or not entities:
        raise NgsiError("BadRequestData", "the body is a non-empty JSON array of entities")
    if len(entities) > MAX_ENTITIES:
        raise NgsiError("BadRequestData", f"at most {MAX_ENTITIES} entities per request")
    admission = Admission()
    admission.refresh(conn, force=True)
    result = Outcome()
    for entity in entities:
        entity_id = entity.get("id") if isinstance(entity, dict) else None
        if not isinstance(entity_id, str):
            result.fail(str(entity_id), NgsiError("BadRequestData", "every entity needs an id"))
            continue
        try:
            ctx = ctx_of(entity)
            store_entity(conn, entity_id, entity.get("type"), entity, ctx, key_values=key_values, client=client,
                         admission=admission)
            result.success.append(entity_id)
        except NgsiError as err:
            result.fail(entity_id, err)
    return result
