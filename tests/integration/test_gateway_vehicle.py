"""The vehicle adapter reads a gpsd-protocol feed over TCP and NMEA from a serial line (a pty)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import threading
from datetime import UTC, datetime, timedelta

import pytest

from cityos.ingest.gateway.adapters.vehicle import Settings, VehicleAdapter
from cityos.ingest.gateway.clock import Clock
from cityos.ingest.gateway.emitter import Emitter
from cityos.ingest.gateway.outbox import EVENT, Outbox
from helpers import run_async

START = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
#: km/h once a second: cruising, then a harsh brake (50 -> 20 km/h in one second), then cruising.
SPEEDS = [50.0] * 12 + [20.0] + [20.0] * 8


def _tpv(n: int, speed: float) -> bytes:
    report = {"class": "TPV", "mode": 3, "time": (START + timedelta(seconds=n)).isoformat().replace("+00:00", "Z"),
              "lat": 37.49 + n * 1e-4, "lon": 139.93, "speed": speed / 3.6, "track": 0.0, "eph": 3.0}
    return (json.dumps(report) + "\n").encode()


def _rmc(n: int, speed: float) -> bytes:
    t = START + timedelta(seconds=n)
    body = (f"GPRMC,{t:%H%M%S}.00,A,3729.{4000 + n:04d},N,13955.8000,E,{speed / 1.852:.2f},0.0,"
            f"{t:%d%m%y},,,A")
    checksum = 0
    for char in body:
        checksum ^= ord(char)
    return f"${body}*{checksum:02X}\r\n".encode()


@pytest.fixture()
def outbox(tmp_path):
    box = Outbox(tmp_path / "outbox.db", max_bytes=10_000_000, boot="test")
    yield box
    box.close()


def _adapter(outbox: Outbox, **source) -> VehicleAdapter:
    emitter = Emitter(outbox, Clock(), outbox.counters, "plow-gw-01")
    settings = Settings(type="vehicle", interval_s=5, role="snowplow", **source)
    return VehicleAdapter(settings, emitter.sink("vehicle", "vehicle"))


def _stored(outbox: Outbox) -> list[tuple[int, dict]]:
    rows = []
    while (batch := outbox.next_batch()) is not None:
        rows += [(batch.priority, r) for r in json.loads(batch.payload)["batch"]]
        outbox.acked(batch.ids)
    return rows


async def _serve_gpsd(lines: list[bytes]) -> tuple[asyncio.AbstractServer, int]:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert (await reader.readline()).startswith(b"?WATCH=")
        writer.write(b'{"class":"VERSION","release":"3.22"}\n')
        for line in lines:
            writer.write(line)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _run_until(adapter: VehicleAdapter, fixes: int) -> None:
    task = asyncio.create_task(adapter.run())
    for _ in range(200):
        if adapter.fixes >= fixes:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_gpsd_positions_every_interval_and_the_harsh_brake_at_once(outbox):
    async def scenario() -> VehicleAdapter:
        server, port = await _serve_gpsd([_tpv(n, s) for n, s in enumerate(SPEEDS)])
        adapter = _adapter(outbox, gpsd=f"127.0.0.1:{port}")
        async with server:
            await _run_until(adapter, len(SPEEDS))
        return adapter

    run_async(scenario())
    rows = _stored(outbox)
    events = [r for priority, r in rows if priority == EVENT]
    assert len(events) == 1 and events[0]["accel_long"] == pytest.approx(-8.333, abs=0.01)
    assert events[0]["t"] == "2026-01-10T08:00:12.000000Z" and events[0]["role"] == "snowplow"
    routine = [r["t"][17:19] for priority, r in rows if priority != EVENT]
    assert routine == ["00", "05", "10", "17"]  # every 5 s of receiver time, counted again after the event


def test_nmea_from_a_serial_line_gives_the_same_readings(outbox):
    controller, device = pty.openpty()
    tty = os.ttyname(device)

    def feed() -> None:
        for n, speed in enumerate(SPEEDS):
            os.write(controller, _rmc(n, speed))

    async def scenario() -> None:
        adapter = _adapter(outbox, nmea=tty)
        threading.Thread(target=feed, daemon=True).start()
        await _run_until(adapter, len(SPEEDS))

    try:
        run_async(scenario())
    finally:
        os.close(controller)
        os.close(device)
    rows = _stored(outbox)
    assert sum(1 for priority, _ in rows if priority == EVENT) == 1
    assert len(rows) == 5


def test_nmea_from_a_recorded_file_is_read_once_to_the_end(outbox, tmp_path):
    """The setting says "serial device (or file)": a log file gives its fixes and the adapter stops,
    instead of looping on "Pipe transport is for pipes/sockets only"."""
    log = tmp_path / "drive.nmea"
    log.write_bytes(b"".join(_rmc(n, speed) for n, speed in enumerate(SPEEDS)))
    adapter = _adapter(outbox, nmea=log)

    async def scenario() -> None:
        await asyncio.wait_for(adapter.run(), timeout=10)

    run_async(scenario())
    assert adapter.fixes == len(SPEEDS) and adapter.finished
    assert outbox.counters.snapshot().get("source_errors", 0) == 0
    rows = _stored(outbox)
    assert sum(1 for priority, _ in rows if priority == EVENT) == 1
    assert len(rows) == 5
