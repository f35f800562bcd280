"""HTTP API of ingest: device registry, gateway enrolment and the dead-letter store."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from cityos.ingest import devices as registry
from cityos.ingest import ledger
from cityos.ingest.deadletters import list_dead_letters, replay
from cityos.ingest.dynsec import DynsecError
from cityos.platform.auth import Principal, require_scope
from cityos.platform.db.connection import connect
from cityos.platform.mqtt import BrokerAddress

router = APIRouter(prefix="/api/v1", tags=["devices"])


class DeviceIn(BaseModel):
    """A device to register."""

    device_id: str = Field(pattern=registry.DEVICE_ID.pattern, examples=["hems-0001"])
    domain: Literal["hems", "vehicle", "health", "env"]
    kind: str = Field("", examples=["smart_meter"])
    owner_subject: str | None = Field(None, description="Pseudonymous resident id; required for health devices.")
    district_code: str | None = None
    public: bool = False
    display_name: str = ""


class Credentials(BaseModel):
    """MQTT credentials of a device (the password is shown only in this response)."""

    device_id: str
    mqtt_username: str
    mqtt_password: str
    broker_host: str
    broker_port: int
    topic_prefix: str


class EnrolIn(BaseModel):
    token: str = Field(min_length=8)


def _credentials(request: Request, new: registry.NewDevice) -> Credentials:
    settings = request.app.state.settings
    address = BrokerAddress.parse(settings.mqtt_url) if settings.mqtt_url else None
    return Credentials(device_id=new.device_id, mqtt_username=new.mqtt_username, mqtt_password=new.mqtt_password,
                       broker_host=address.host if address else "", broker_port=address.port if address else 0,
                       topic_prefix=f"cityos/v1/{new.domain}/{new.device_id}/")


def _target(request: Request) -> registry.BrokerTarget | None:
    settings = request.app.state.settings
    return registry.broker_target(settings) if settings.mqtt_url else None


def _provision(request: Request, conn, new: registry.NewDevice) -> None:
    """Create the device's broker account in the caller's transaction (503, and nothing kept, if the broker refuses)."""
    if (target := _target(request)) is None:
        return
    try:
        registry.provision(conn, target, new)
    except DynsecError as exc:
        raise HTTPException(503, f"the broker did not take the device's account: {exc}") from exc


@router.post("/devices", status_code=201, response_model=Credentials, summary="Register a device")
def add_device(device: DeviceIn, request: Request, _: Principal = Depends(require_scope("devices:write"))):
    """Register a device and create its own MQTT user, allowed to publish only its own stream topics."""
    with connect(autocommit=True) as conn:
        try:
            with conn.transaction():
                new = registry.add_device(conn, **device.model_dump())
                _provision(request, conn, new)
        except registry.DeviceError as exc:
            raise HTTPException(409 if "exists" in str(exc) else 400, str(exc)) from exc
    return _credentials(request, new)


@router.get("/devices", summary="List devices")
def list_devices(domain: str | None = None, include_revoked: bool = False,
                 _: Principal = Depends(require_scope("devices:read"))) -> list[dict]:
    """Registered devices (no credentials)."""
    with connect(autocommit=True) as conn:
        return registry.list_devices(conn, domain=domain, include_revoked=include_revoked)


@router.post("/devices/{device_id}/revoke", summary="Revoke a device")
def revoke_device(device_id: str, request: Request, _: Principal = Depends(require_scope("devices:write"))):
    """Revoke a device: the broker disconnects and refuses it at once, and ingest refuses its messages."""
    with connect(autocommit=True) as conn:
        try:
            registry.revoke_device(conn, device_id)
        except registry.DeviceError as exc:
            raise HTTPException(404, str(exc)) from exc
        if (target := _target(request)) is not None:
            try:
                with conn.transaction():
                    registry.deprovision(conn, target, device_id)
            except DynsecError as exc:
                raise HTTPException(503, f"revoked in the registry (ingest refuses its messages), but the broker "
                                         f"was not changed: {exc}; run `cityos devices sync`") from exc
    return {"device_id": device_id, "revoked": True}


@router.get("/devices/fleet", summary="Silent devices and devices with refusals")
def devices_fleet(request: Request, days: int = Query(7, ge=1, le=400),
                  _: Principal = Depends(require_scope("devices:read"))) -> dict:
    """Active devices silent for longer than their expected interval, and devices whose messages were refused
    in the last ``days`` days (from the ledger ingest writes with the rows)."""
    with connect(autocommit=True) as conn:
        view = ledger.fleet(conn, days=days)
    return {key: [ledger.as_json(r) for r in rows] for key, rows in view.items()}


@router.get("/devices/{device_id}/stats", summary="A device's ledger per day")
def device_stats(device_id: str, request: Request, days: int = Query(7, ge=1, le=400), utc: bool = False,
                 _: Principal = Depends(require_scope("devices:read"))) -> dict:
    """Per day (the city's days, or UTC days with ``utc=true``): messages received, readings stored, duplicates
    absorbed, late readings, refusals by reason and the newest observation."""
    tz = "UTC" if utc else request.app.state.settings.timezone
    with connect(autocommit=True) as conn:
        rows = ledger.device_stats(conn, device_id, days=days, tz=tz)
    return {"device_id": device_id, "timezone": tz, "days": [ledger.as_json(r) for r in rows]}


@router.post("/devices/{device_id}/enrolment-token", summary="Create a one-time enrolment token")
def enrolment_token(device_id: str, _: Principal = Depends(require_scope("devices:write"))) -> dict:
    """A token a gateway exchanges once for its credentials (``cityos gateway enroll``)."""
    with connect(autocommit=True) as conn:
        if not conn.execute("select 1 from core.devices where device_id = %s and revoked_at is null",
                            (device_id,)).fetchone():
            raise HTTPException(404, f"no active device {device_id}")
        return {"device_id": device_id, "enrolment_token": registry.create_enrolment_token(conn, device_id)}


@router.post("/devices/enroll", response_model=Credentials, summary="Enrol a gateway with a one-time token")
def enroll(body: EnrolIn, request: Request):
    """Exchange a one-time enrolment token for the device's MQTT credentials."""
    with connect(autocommit=True) as conn:
        try:
            with conn.transaction():
                new = registry.redeem_enrolment_token(conn, body.token)
                _provision(request, conn, new)
        except registry.DeviceError as exc:
            raise HTTPException(403, str(exc)) from exc
    return _credentials(request, new)


@router.get("/devices/gaps", summary="Open gaps in devices' sequence numbers")
def device_gaps(device_id: str | None = None, stream: str | None = None,
                _: Principal = Depends(require_scope("devices:read"))) -> list[dict]:
    """Ranges of sequence numbers (payload field ``sn``) that never arrived, per device and stream, oldest first."""
    from cityos.ingest.gaps import open_gaps

    with connect(autocommit=True) as conn:
        return open_gaps(conn, device_id, stream)


@router.get("/deadletters", tags=["operations"], summary="List dead letters")
def dead_letters(reason: str | None = None, pending: bool = False, limit: int = Query(100, ge=1, le=1000),
                 before_id: int | None = None, _: Principal = Depends(require_scope("deadletters:read"))):
    """Rejected messages with topic, device, reason and payload, newest first."""
    with connect(autocommit=True) as conn:
        return list_dead_letters(conn, reason=reason, pending_only=pending, limit=limit, before_id=before_id)


class ReplayIn(BaseModel):
    ids: list[int] | None = None
    reason: str | None = None


@router.post("/deadletters/replay", tags=["operations"], summary="Replay dead letters")
def replay_dead_letters(body: ReplayIn, _: Principal = Depends(require_scope("deadletters:write"))) -> dict:
    """Run pending dead letters through ingest again (after registering a device or fixing a gateway)."""
    with connect() as conn:
        return replay(conn, ids=body.ids, reason=body.reason).__dict__
