"""Creating Observations through the SensorThings API: ``POST /sta/v1.1/Observations`` (one) and
``POST /sta/v1.1/CreateObservations`` (the DataArray extension, for bulk).

They take the MQTT readings' way in: each device's observations become one cityos ``readings`` message on
the device's own topic, which :func:`cityos.ingest.pipeline.process_message` parses, validates and admits
exactly as the ingest worker does; a refused message becomes a dead letter (``core.dead_letters``, replayable)
and the caller gets 400 with its reason; accepted rows (and the device's ledger) are written by
:func:`cityos.ingest.writer.write_batch`
(the latest values too, so the public feeds announce them).

Who may: a device, with HTTP Basic auth as its MQTT user and password, for its own Datastreams; a service,
with a bearer token with the ``sta:write`` scope (audited), for any city vehicle or sensor. Household meters
and health devices have no Datastreams here, so nothing can be written for them this way.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cityos.ingest.admission import Admission
from cityos.ingest.http_readings import add_readings
from cityos.ingest.writer import Batch, write_batch
from cityos.platform.auth import audit, caller_address, lookup_token, request_detail
from cityos.platform.db.connection import connect
from cityos.sta.entities import SERVED_DOMAINS
from cityos.sta.read import PREFIX, quote_id
from cityos.sta.routes import Refusal, _error

router = APIRouter(prefix=PREFIX, tags=["SensorThings API"])
WRITE_SCOPE = "sta:write"
#: Most observations in one request (the readings format's batch limit).
MAX_OBSERVATIONS = 10_000
MAX_BODY = 4 * 1024 * 1024
_admission = Admission()


def verify_password(password: str, stored: str | None) -> bool:
    """``password`` against a registry's ``$7$`` (PBKDF2-SHA512, Mosquitto's form) hash, in constant time."""
    parts = (stored or "").split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        iterations, salt, digest = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations), digest)


async def _writer(request: Request, conn_url: str) -> str | None:
    """The device id a device may write for, or None for a service (any device); refusals raise."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            device_id, _, password = base64.b64decode(credentials.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Refusal(401, "cannot read the Basic credentials", {"WWW-Authenticate": "Basic"}) from None

        def check() -> bool:
            with connect(conn_url, autocommit=True, timeout=3) as conn:
                row = conn.execute("select mqtt_password_hash from core.devices where device_id = %s "
                                   "and revoked_at is null", (device_id,)).fetchone()
            return bool(row) and verify_password(password, row[0])

        if not await asyncio.to_thread(check):
            raise Refusal(401, "unknown device or wrong password", {"WWW-Authenticate": "Basic"})
        return device_id
    if scheme.lower() == "bearer" and credentials.strip():
        detail = request_detail(request, WRITE_SCOPE)
        principal = await lookup_token(conn_url, credentials.strip())
        if principal is None:
            await audit(conn_url, None, "invalid_token", request.url.path, detail, caller_address(request))
            raise Refusal(401, "invalid or expired token", {"WWW-Authenticate": "Bearer"})
        if not principal.allows(WRITE_SCOPE):
            await audit(conn_url, principal, "denied", request.url.path, detail, caller_address(request))
            raise Refusal(403, f"this token lacks the scope {WRITE_SCOPE!r}")
        await audit(conn_url, principal, f"{request.method} {request.url.path}", request.url.path, detail,
                    caller_address(request), subject="city devices' observations", reason="service writing "
                    "observations")
        return None
    raise Refusal(401, "a device (Basic auth) or a service token (Bearer, sta:write) is required",
                  {"WWW-Authenticate": 'Basic realm="cityos", Bearer'})


def _datastream_id(value: object) -> str:
    if not isinstance(value, dict) or not isinstance(value.get("@iot.id"), str):
        raise Refusal(400, 'an Observation names its Datastream: {"Datastream": {"@iot.id": "device:metric"}}')
    return value["@iot.id"]


def _time(value: object) -> str:
    if isinstance(value, str) and "/" not in value:
        return value
    raise Refusal(400, "phenomenonTime must be one instant in RFC 3339 (intervals are not stored here)")


class Writer:
    """Writes observations of several Datastreams through the ingest pipeline, one message per device."""

    def __init__(self, conn: psycopg.Connection, own_device: str | None, client: str):
        self.conn, self.own_device, self.client = conn, own_device, client

    def _stream(self, datastream_id: str) -> tuple[str, str, str]:
        device_id, _, metric = datastream_id.partition(":")
        if ":" in metric:  # sensor:metric:1h, an aggregated Datastream: computed from the readings, not written
            raise Refusal(400, "aggregated Datastreams (hourly and daily means) are computed from the readings; "
                               "write to the sensor's own Datastream (device:metric)")
        row = self.conn.execute("select domain from core.devices where device_id = %s and revoked_at is null",
                                (device_id,)).fetchone()
        if row is None or row[0] not in SERVED_DOMAINS or not metric:
            raise Refusal(404, "no such Datastream")
        if self.own_device is not None and device_id != self.own_device:
            raise Refusal(403, "a device writes its own Datastreams only")
        return device_id, metric, row[0]

    def write(self, items: list[tuple[str, str, object]]) -> list[str]:
        """Store ``(datastream id, time, result)`` items; the created Observations' ids, or ``error: reason``."""
        if len(items) > MAX_OBSERVATIONS:
            raise Refusal(413, f"at most {MAX_OBSERVATIONS} observations in one request")
        by_device: dict[tuple[str, str], list[int]] = {}
        readings: dict[tuple[str, str], list[dict]] = {}
        for index, (datastream_id, when, result) in enumerate(items):
            device_id, metric, domain = self._stream(datastream_id)
            readings.setdefault((domain, device_id), []).append({"t": when, metric: result})
            by_device.setdefault((domain, device_id), []).append(index)
        answers = [""] * len(items)
        now = datetime.now(UTC)
        batch = Batch(received_at=now)
        for (domain, device_id), found in readings.items():
            outcome = add_readings(batch, self.conn, domain, device_id, found, now=now, admission=_admission,
                                   client_id=self.client)
            if outcome.dead_letter is not None:
                for index in by_device[(domain, device_id)]:
                    answers[index] = f"error: {outcome.dead_letter.reason}: {outcome.dead_letter.detail}"[:300]
                continue
            for index in by_device[(domain, device_id)]:
                datastream_id, when, _ = items[index]
                try:
                    stamp = datetime.fromisoformat(when.replace("Z", "+00:00"))
                    answers[index] = f"{datastream_id}:{int(stamp.timestamp() * 1_000_000)}"
                except ValueError:  # a form ingest reads but Python does not: the id is still findable by time
                    answers[index] = f"{datastream_id}:{when}"
        write_batch(self.conn, batch)
        return answers


async def _create(request: Request, parse) -> JSONResponse:
    settings = request.app.state.settings
    try:
        own = await _writer(request, settings.database_url)
        body = await request.body()
        if len(body) > MAX_BODY:
            raise Refusal(413, f"the body is larger than {MAX_BODY} bytes")
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise Refusal(400, "the body is not JSON") from None
        items = parse(document)

        def in_thread() -> list[str]:
            with connect(settings=settings) as conn:
                answers = Writer(conn, own, f"sta:{own or 'service'}").write(items)
                conn.commit()
                return answers

        answers = await asyncio.to_thread(in_thread)
    except Refusal as exc:
        return _error(exc.status, exc.message, exc.headers)
    base = settings.api_url.rstrip("/") + PREFIX
    links = [a if a.startswith("error") else f"{base}/Observations({quote_id(a)})" for a in answers]
    return JSONResponse(links, status_code=201) if parse is _data_array else \
        (_error(400, links[0].removeprefix("error: ")) if links[0].startswith("error") else
         JSONResponse({"@iot.selfLink": links[0], "@iot.id": answers[0]}, status_code=201,
                      headers={"Location": links[0]}))


def _single(document: object) -> list[tuple[str, str, object]]:
    if not isinstance(document, dict):
        raise Refusal(400, "an Observation is a JSON object")
    unknown = set(document) - {"phenomenonTime", "resultTime", "result", "Datastream"}
    if unknown:
        raise Refusal(400, f"not supported in an Observation here: {', '.join(sorted(unknown))[:200]}")
    return [(_datastream_id(document.get("Datastream")), _time(document.get("phenomenonTime")),
             document.get("result"))]


def _data_array(document: object) -> list[tuple[str, str, object]]:
    if not isinstance(document, list):
        raise Refusal(400, "CreateObservations takes an array of {Datastream, components, dataArray}")
    items = []
    for group in document:
        if not isinstance(group, dict) or not isinstance(group.get("dataArray"), list):
            raise Refusal(400, "each item has Datastream, components and dataArray")
        datastream_id = _datastream_id(group.get("Datastream"))
        components = group.get("components")
        if not isinstance(components, list) or set(components) - {"phenomenonTime", "resultTime", "result"} or \
                "phenomenonTime" not in components or "result" not in components:
            raise Refusal(400, "components are phenomenonTime and result (and optionally resultTime)")
        at, value = components.index("phenomenonTime"), components.index("result")
        for row in group["dataArray"]:
            if not isinstance(row, list) or len(row) != len(components):
                raise Refusal(400, "each dataArray row has one value per component")
            items.append((datastream_id, _time(row[at]), row[value]))
            if len(items) > MAX_OBSERVATIONS:
                raise Refusal(413, f"at most {MAX_OBSERVATIONS} observations in one request")
    return items


@router.post("/Observations", status_code=201, summary="Create one Observation")
async def create_observation(request: Request) -> JSONResponse:
    """One Observation of a Datastream (``{"phenomenonTime", "result", "Datastream": {"@iot.id"}}``), validated
    like an MQTT reading; 201 with its link, or 400 with the reason it was dead-lettered."""
    return await _create(request, _single)


@router.post("/CreateObservations", status_code=201, summary="Create Observations (DataArray)")
async def create_observations(request: Request) -> JSONResponse:
    """Many Observations in the DataArray form; the answer lists each one's link or ``error: reason``."""
    return await _create(request, _data_array)
