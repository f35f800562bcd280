"""Optional: heart rate from a Bluetooth LE chest strap or watch (Heart Rate Service 0x180D) through ``bleak``.

Install with ``pip install 'cityos[gateway,ble]'``. NOT tested on hardware: the parser of the Heart
Rate Measurement characteristic (0x2A37) is unit-tested; the Bluetooth side needs a real device.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar, Literal

from pydantic import Field

from cityos.ingest.gateway.adapters.base import Adapter, AdapterSettings

log = logging.getLogger(__name__)
HEART_RATE_MEASUREMENT = "00002a37-0000-1000-8000-00805f9b34fb"


class Settings(AdapterSettings):
    """``[[adapters]] type = "ble_heart_rate"``."""

    DOMAIN: ClassVar[str] = "health"
    type: Literal["ble_heart_rate"]
    address: str = Field(description="The sensor's Bluetooth address (or platform id).")
    interval_s: float = Field(60, ge=1, le=3600, description="Store at most one reading per interval.")


def parse_measurement(data: bytes) -> int | None:
    """Beats per minute from a Heart Rate Measurement value (flags bit 0: 16-bit value), None if malformed."""
    if len(data) < 2:
        return None
    if data[0] & 0x01:
        return int.from_bytes(data[1:3], "little") if len(data) >= 3 else None
    return data[1]


class BleHeartRateAdapter(Adapter):
    """Subscribes to heart-rate notifications; reconnects when the sensor goes away."""

    settings: Settings

    async def run(self) -> None:
        from bleak import BleakClient  # optional dependency

        last = 0.0
        loop = asyncio.get_running_loop()

        def on_value(_: object, data: bytearray) -> None:
            nonlocal last
            bpm = parse_measurement(bytes(data))
            if bpm is None:
                self.sink.count("malformed")
            elif loop.time() - last >= self.settings.interval_s:
                last = loop.time()
                self.sink.emit({"heart_rate_bpm": float(bpm)})

        while True:
            try:
                async with BleakClient(self.settings.address) as client:
                    await client.start_notify(HEART_RATE_MEASUREMENT, on_value)
                    while client.is_connected:
                        await asyncio.sleep(1)
            except Exception as exc:  # the radio comes and goes
                self.sink.count("disconnects")
                log.warning("ble: %s", exc)
            await asyncio.sleep(5)


def make(settings: Settings, sink, outbox) -> BleHeartRateAdapter:
    """The registry's factory."""
    return BleHeartRateAdapter(settings, sink)
