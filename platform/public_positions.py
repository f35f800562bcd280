"""Public snowplow positions for every public exit: the live SSE/WebSocket feeds and the public MQTT tree.

One path, no second parser: positions come from the database after the ingest writer committed them
(so only readings that passed ingest's validation), announced by the trigger of
``telemetry.latest_positions`` on the channel :data:`CHANNEL` (migration 0011) for public, unrevoked
snowplows only. Every exit sends the same normalised event, :func:`position_event`: RFC 3339 UTC time
(``Z``), plain JSON numbers, ``blade_down`` true/false/null.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from cityos.platform.db.connection import connect
from cityos.platform.db.listen import ChannelListener

log = logging.getLogger(__name__)

CHANNEL = "cityos_public_positions"
SNAPSHOT = ("select device_id, time, st_y(geom) as lat, st_x(geom) as lon, speed_kmh, heading_deg, blade_down "
            "from gis.snowplow_positions order by device_id")


def rfc3339_utc(moment: datetime) -> str:
    """``moment`` as an RFC 3339 time in UTC with a ``Z`` (fractions only when there are any)."""
    if moment.tzinfo is None:
        raise ValueError("a time without UTC offset")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def position_event(row: Mapping[str, object]) -> dict:
    """The public event of a stored position (a row of ``gis.snowplow_positions`` or a notification)."""
    moment = row["time"]
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    blade = row.get("blade_down")
    return {"device_id": str(row["device_id"]), "t": rfc3339_utc(moment),  # type: ignore[arg-type]
            "lat": _number(row["lat"]), "lon": _number(row["lon"]), "speed_kmh": _number(row.get("speed_kmh")),
            "heading_deg": _number(row.get("heading_deg")), "blade_down": None if blade is None else bool(blade)}


def notification_event(payload: str) -> dict | None:
    """The event of one notification on :data:`CHANNEL` (None, logged, if it cannot be read: a bug)."""
    try:
        return position_event(json.loads(payload))
    except (ValueError, KeyError, TypeError):
        log.exception("unreadable public position notification", extra={"payload": payload[:200]})
        return None


def snowplow_snapshot(database_url: str) -> list[dict]:
    """The latest stored position of every public snowplow."""
    with connect(database_url, timeout=3) as conn, conn.cursor() as cur:
        cur.execute(SNAPSHOT)
        columns = [c.name for c in cur.description or []]
        return [position_event(dict(zip(columns, r, strict=True))) for r in cur.fetchall()]


class PositionListener(ChannelListener):
    """A thread that LISTENs on :data:`CHANNEL` and calls ``on_position(event)`` for each committed position.

    Reconnects with back-off after a database outage (positions committed meanwhile are not replayed:
    the next position of each vehicle follows within seconds, and the snapshot holds the latest).
    """

    def __init__(self, database_url: str, on_position: Callable[[dict], None], name: str = "public-positions"):
        super().__init__(database_url, CHANNEL, name)
        self.on_position = on_position

    def on_notify(self, payload: str) -> None:
        if (event := notification_event(payload)) is not None:
            self.on_position(event)
