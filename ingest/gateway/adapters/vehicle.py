"""Vehicle adapter: GNSS from gpsd (JSON protocol over TCP) or an NMEA serial device, acceleration from speed.

Every fix updates the motion estimate; a position reading is stored every ``interval_s`` (1 to 20 s)
and a harsh brake (longitudinal acceleration at or below ``harsh_brake_ms2``) is stored at once as
an event, which the sender publishes ahead of routine readings. The receiver's time is used as the
observation time (GNSS time does not depend on the gateway's clock).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from cityos.ingest.gateway.adapters.base import Adapter, AdapterSettings, resolve
from cityos.ingest.gateway.outbox import EVENT
from cityos.ingest.gateway.vehicle.gnss import HARSH_BRAKE_MS2, Fix, Motion, NmeaFixes, from_tpv

log = logging.getLogger(__name__)


class Settings(AdapterSettings):
    """``[[adapters]] type = "vehicle"``: ``gpsd = "127.0.0.1:2947"`` or ``nmea = "/dev/ttyACM0"``."""

    DOMAIN: ClassVar[str] = "vehicle"
    type: Literal["vehicle"]
    gpsd: str | None = Field(None, description="host:port of gpsd.")
    nmea: Path | None = Field(None, description="Serial device (or file) with NMEA 0183 sentences.")
    interval_s: float = Field(5, ge=1, le=20)
    role: Literal["snowplow", "patrol_car", "official_car", "bus"] = "official_car"
    harsh_brake_ms2: float = Field(HARSH_BRAKE_MS2, le=-1, ge=-15)
    reconnect_s: float = Field(2, ge=0.1, le=60)

    @model_validator(mode="after")
    def _one_source(self) -> Settings:
        if (self.gpsd is None) == (self.nmea is None):
            raise ValueError("give exactly one source: gpsd = \"host:port\" or nmea = \"/dev/tty...\"")
        return self

    def resolve_paths(self, base: Path) -> None:
        self.nmea = resolve(self.nmea, base)


class VehicleAdapter(Adapter):
    """Reads fixes, stores positions at the interval and harsh brakes at once."""

    settings: Settings

    def __init__(self, settings: Settings, sink):
        super().__init__(settings, sink)
        self.motion = Motion()
        self.last_sent: float | None = None
        self.fixes = 0
        self.finished = False

    def metrics(self, fix: Fix, accel: float | None) -> dict[str, object]:
        values = {"lat": fix.lat, "lon": fix.lon, "speed_kmh": fix.speed_kmh, "heading_deg": fix.heading_deg,
                  "gps_error_m": fix.error_m, "accel_long": accel, "role": self.settings.role}
        return {k: v for k, v in values.items() if v is not None}

    def on_fix(self, fix: Fix) -> None:
        """Handle one fix: a harsh brake goes at once; a position every ``interval_s``."""
        self.fixes += 1
        accel = self.motion.update(fix)
        if accel is not None and accel <= self.settings.harsh_brake_ms2:
            self.sink.emit(self.metrics(fix, accel), t=fix.t, priority=EVENT)
            self.sink.count("harsh_brakes")
            self.last_sent = fix.t
            return
        if self.last_sent is None or fix.t - self.last_sent >= self.settings.interval_s - 1e-6:
            self.sink.emit(self.metrics(fix, accel), t=fix.t)
            self.last_sent = fix.t

    async def _gpsd(self) -> None:
        host, _, port = (self.settings.gpsd or "").rpartition(":")
        reader, writer = await asyncio.open_connection(host or "127.0.0.1", int(port or 2947))
        try:
            writer.write(b'?WATCH={"enable":true,"json":true};\n')
            await writer.drain()
            while line := await reader.readline():
                if (fix := from_tpv(line)) is not None:
                    self.on_fix(fix)
        finally:
            writer.close()

    def _sentence(self, nmea: NmeaFixes, line: bytes) -> None:
        for fix in nmea.feed(line.decode("ascii", "replace")):
            self.on_fix(fix)

    async def _nmea_file(self, path: Path) -> None:
        """A recorded log (a regular file): read once, to the end, then the adapter stops."""
        nmea = NmeaFixes()
        with open(path, "rb") as log_file:
            for i, line in enumerate(log_file):
                self._sentence(nmea, line)
                if i % 500 == 499:
                    await asyncio.sleep(0)  # let the sender run on long logs
        for fix in nmea.flush():
            self.on_fix(fix)
        self.finished = True

    async def _nmea(self) -> None:
        """Sentences from a serial device (set its speed first, e.g. ``stty -F /dev/ttyACM0 9600``) or a
        recorded file (read once)."""
        path = self.settings.nmea
        assert path is not None
        if path.is_file():
            await self._nmea_file(path)
            return
        nmea = NmeaFixes()
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        device = open(path, "rb", buffering=0)  # noqa: SIM115 - owned by the transport below
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), device)
        try:
            while line := await reader.readline():
                self._sentence(nmea, line)
        finally:
            transport.close()

    async def run(self) -> None:
        while True:
            try:
                await (self._gpsd() if self.settings.gpsd else self._nmea())
            except (OSError, ValueError, json.JSONDecodeError) as exc:
                self.sink.count("source_errors")
                log.warning("vehicle: GNSS source failed (%s); retrying", exc)
            if self.finished:
                log.info("vehicle: NMEA file %s read to the end (%d fixes)", self.settings.nmea, self.fixes)
                return
            await asyncio.sleep(self.settings.reconnect_s)

    def status(self) -> dict[str, object]:
        return {"fixes": self.fixes, "last_sent": self.last_sent, "finished": self.finished}


def make(settings: Settings, sink, outbox) -> VehicleAdapter:
    """The registry's factory."""
    return VehicleAdapter(settings, sink)
