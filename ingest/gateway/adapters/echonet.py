"""ECHONET Lite adapter: discovers the home's devices with pychonet and polls meters, solar and batteries.

Polls at ``interval_s``: the low-voltage smart meter (0x0288: cumulative kWh from 0xE0 with the
coefficient 0xD3 and unit 0xE1, bought-back energy 0xE3, instantaneous W 0xE7 and A 0xE8), home
solar (0x0279: W 0xE0, kWh 0xE1) and storage batteries (0x027D: state of charge 0xE4). A device that
does not answer is counted and tried again next round; "no measurement" values are left out;
counter wraps are unwrapped with the state kept in the outbox (so a restart does not lose it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar, Literal

from pydantic import Field

from cityos.ingest.gateway.adapters.base import Adapter, AdapterSettings
from cityos.ingest.gateway.echonet import properties as p

log = logging.getLogger(__name__)
GET = 0x62


class Settings(AdapterSettings):
    """``[[adapters]] type = "echonet"``."""

    DOMAIN: ClassVar[str] = "hems"
    type: Literal["echonet"]
    hosts: list[str] = Field(default_factory=list, description="Device addresses; empty: discover by multicast.")
    interval_s: float = Field(60, ge=5, le=3600)
    local_ip: str | None = Field(None, description="Address of the gateway's interface on the home LAN.")
    timeout_s: float = Field(5, ge=0.5, le=30)


def meter_metrics(props: dict[int, bytes], unwrap: dict[int, p.CounterUnwrap]) -> dict[str, object]:
    """Contract metrics (``power_w``, ``import_kwh``, ``export_kwh``, ``current_*_a``) of a smart meter's EDTs."""
    metrics: dict[str, object] = {}
    if (power := p.signed(props.get(p.METER_INSTANT_POWER, b""))) is not None:
        metrics["power_w"] = float(power)
    current_r, current_t = p.meter_currents(props.get(p.METER_INSTANT_CURRENT, b""))
    metrics.update({k: v for k, v in (("current_r_a", current_r), ("current_t_a", current_t)) if v is not None})
    scale = p.meter_scale(props.get(p.METER_COEFFICIENT), props.get(p.METER_UNIT))
    digits = p.unsigned(props.get(p.METER_DIGITS, b"")) or 8
    for epc, name in ((p.METER_CUMULATIVE_NORMAL, "import_kwh"), (p.METER_CUMULATIVE_REVERSE, "export_kwh")):
        raw = p.unsigned(props.get(epc, b""))
        if raw is None:
            continue
        counter = unwrap.setdefault(epc, p.CounterUnwrap(digits))
        counter.digits = digits  # the meter's declaration (0xD7) wins over a saved or default one
        total = counter.update(raw)
        if total is not None:
            metrics[name] = round(total * scale, 6)
    return metrics


def solar_metrics(props: dict[int, bytes]) -> dict[str, object]:
    metrics: dict[str, object] = {}
    if (power := p.unsigned(props.get(p.SOLAR_INSTANT_POWER, b""))) is not None:
        metrics["solar_w"] = float(power)
    if (energy := p.unsigned(props.get(p.SOLAR_CUMULATIVE, b""))) is not None:
        metrics["solar_kwh"] = round(energy * 0.001, 6)
    return metrics


def battery_metrics(props: dict[int, bytes]) -> dict[str, object]:
    soc = p.unsigned(props.get(p.BATTERY_SOC, b""))
    return {} if soc is None else {"battery_soc_pct": float(soc)}


POLLED = {
    p.SMART_METER: [p.METER_COEFFICIENT, p.METER_DIGITS, p.METER_UNIT, p.METER_CUMULATIVE_NORMAL,
                    p.METER_CUMULATIVE_REVERSE, p.METER_INSTANT_POWER, p.METER_INSTANT_CURRENT],
    p.SOLAR: [p.SOLAR_INSTANT_POWER, p.SOLAR_CUMULATIVE],
    p.BATTERY: [p.BATTERY_SOC],
}


class EchonetAdapter(Adapter):
    """Polls the configured (or discovered) ECHONET Lite devices."""

    settings: Settings

    def __init__(self, settings: Settings, sink, outbox=None):
        super().__init__(settings, sink)
        self.outbox = outbox
        self.unwrap: dict[tuple[str, int, int, int], dict[int, p.CounterUnwrap]] = {}
        self.devices: dict[str, list[tuple[int, int, int]]] = {}

    def _load_unwrap(self, key: tuple[str, int, int, int]) -> dict[int, p.CounterUnwrap]:
        if key not in self.unwrap:
            saved = (self.outbox.get_state(f"echonet-unwrap:{key}") if self.outbox else None) or {}
            self.unwrap[key] = {int(epc): p.CounterUnwrap(**state) for epc, state in saved.items()}
        return self.unwrap[key]

    def _save_unwrap(self, key: tuple[str, int, int, int]) -> None:
        if self.outbox:
            self.outbox.set_state(f"echonet-unwrap:{key}", {str(e): c.state() for e, c in self.unwrap[key].items()})

    async def _discover(self, api, host: str) -> list[tuple[int, int, int]]:
        if not await api.discover(host):
            return []
        await asyncio.sleep(0.1)
        instances = api.state.get(host, {}).get("instances", {})
        found = [(gc, cc, ci) for gc, classes in instances.items() for cc, insts in classes.items()
                 for ci in insts if (gc, cc) in POLLED]
        for gc, cc, ci in found:  # pychonet asks only for properties the device's Get map lists
            await api.getAllPropertyMaps(host, gc, cc, ci)
        return found

    async def poll(self, api, host: str) -> int:
        """One round for ``host``; returns readings stored."""
        if not self.devices.get(host):
            self.devices[host] = await self._discover(api, host)
            if not self.devices[host]:
                self.sink.count("no_answer")
                return 0
        stored = 0
        for gc, cc, ci in self.devices[host]:
            epcs = POLLED[(gc, cc)]
            ok = await api.echonetMessage(host, gc, cc, ci, GET, [{"EPC": e} for e in epcs])
            if not ok:
                self.sink.count("no_answer")
                continue
            props = {e: bytes(v) for e, v in api.state[host]["instances"][gc][cc][ci].items()
                     if isinstance(e, int) and isinstance(v, bytes | bytearray)}
            if (gc, cc) == p.SMART_METER:
                key = (host, gc, cc, ci)
                counters = self._load_unwrap(key)
                faults = sum(c.faults for c in counters.values())
                metrics = meter_metrics(props, counters)
                if (new := sum(c.faults for c in counters.values()) - faults) > 0:
                    self.sink.count("counter_faults", new)
                    log.warning("echonet: %s cumulative energy beyond the meter's %s digits: counter fault, "
                                "reading refused", host, p.unsigned(props.get(p.METER_DIGITS, b"")) or 8)
                self._save_unwrap(key)
            elif (gc, cc) == p.SOLAR:
                metrics = solar_metrics(props)
            else:
                metrics = battery_metrics(props)
            if metrics and self.sink.emit(metrics):
                stored += 1
            elif not metrics:
                self.sink.count("no_measurement")
        return stored

    def connect(self):
        """pychonet's UDP server on port 3610 and its API client: (server, api)."""
        from pychonet import ECHONETAPIClient
        from pychonet.lib.udpserver import UDPServer

        server = UDPServer(local_ip=self.settings.local_ip)
        server.run("0.0.0.0", 3610, loop=asyncio.get_running_loop())
        api = ECHONETAPIClient(server)
        api.configure(message_timeout=max(1, int(self.settings.timeout_s * 10)))
        return server, api

    async def run(self) -> None:
        server, api = self.connect()
        try:
            while True:
                for host in self.settings.hosts or ["224.0.23.0"]:
                    try:
                        await self.poll(api, host)
                    except Exception:  # a misbehaving device must not stop the others
                        self.sink.count("errors")
                        log.exception("echonet: polling %s failed", host)
                await asyncio.sleep(self.settings.interval_s)
        finally:
            server.close()

    def status(self) -> dict[str, object]:
        return {"devices": {h: [f"{gc:02X}{cc:02X}{ci:02X}" for gc, cc, ci in d] for h, d in self.devices.items()}}


def make(settings: Settings, sink, outbox) -> EchonetAdapter:
    """The registry's factory."""
    return EchonetAdapter(settings, sink, outbox)
