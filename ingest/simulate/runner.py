"""Publish simulated streams through the broker, each device with its own MQTT credentials."""

from __future__ import annotations

import heapq
import json
import logging
import multiprocessing
import random
import resource
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import psycopg

from cityos.ingest.contract import topic_for
from cityos.ingest.devices import BrokerTarget, NewDevice, add_device, provision, rotate_password
from cityos.ingest.simulate import health, hems, vehicles
from cityos.ingest.simulate.routes import Segment, road_routes, road_segments
from cityos.platform import consent
from cityos.platform.db.connection import dedicated
from cityos.platform.mqtt import BrokerAddress, new_client

log = logging.getLogger(__name__)


@dataclass
class SimulationConfig:
    """What to simulate and how often each kind of device reports."""

    homes: int = 500
    snowplows: int = 30
    patrol_cars: int = 20
    wearables: int = 100
    hems_interval_s: float = 30.0
    health_interval_s: float = 60.0
    seed: int = 7
    #: Homes of the living-lab's pilot districts: the first ``pilot_districts`` districts (by code) hold
    #: ``pilot_share`` of the homes, so that their opted-in homes reach k and the district figures of the
    #: energy exits are published; the other homes are spread over the city (their districts stay blank).
    pilot_districts: int = 16
    pilot_share: float = 0.8
    #: Before publishing live, each home sends the readings of the last complete local day and of today so
    #: far (one batch, through the broker and ingest like any reading), so the daily energy dataset has a
    #: complete first day on the demo's first publish.
    backfill: bool = True
    backfill_step_s: float = 900.0
    timezone: str = "Asia/Tokyo"  # the city's (CITYOS_TIMEZONE): where the previous local day starts


def device_plan(config: SimulationConfig) -> list[tuple[str, str, str]]:
    """(device_id, domain, kind) of every simulated device."""
    plan = [(f"sim-hems-{i:04d}", "hems", "smart_meter") for i in range(1, config.homes + 1)]
    plan += [(f"sim-plow-{i:02d}", "vehicle", "snowplow") for i in range(1, config.snowplows + 1)]
    plan += [(f"sim-car-{i:02d}", "vehicle", "patrol_car") for i in range(1, config.patrol_cars + 1)]
    plan += [(f"sim-wear-{i:03d}", "health", "wearable") for i in range(1, config.wearables + 1)]
    return plan


def ensure_devices(conn: psycopg.Connection, config: SimulationConfig) -> dict[str, NewDevice]:
    """Register the simulated devices (once), give each a fresh password, grant the wearers' consent."""
    existing = {r[0] for r in conn.execute("select device_id from core.devices where device_id like 'sim-%' "
                                           "and revoked_at is null").fetchall()}
    # Homes sit at the demo city's addresses when it is loaded (for the per-district analyses).
    addresses = conn.execute("select address_id, district_code from gis.addresses order by address_id").fetchall()
    homes = [n for n, (_, domain, _) in enumerate(device_plan(config)) if domain == "hems"]
    placed = home_addresses(addresses, len(homes), config)
    rng = random.Random(config.seed)
    passwords = {}
    for n, (device_id, domain, kind) in enumerate(device_plan(config)):
        subject = f"sim-subject-{device_id.removeprefix('sim-')}" if domain in ("health", "hems") else None
        if device_id in existing:
            passwords[device_id] = rotate_password(conn, device_id)
        else:
            if domain == "hems" and placed:
                address = placed[homes.index(n)]
            else:
                address = addresses[(n * 97) % len(addresses)] if addresses and domain != "vehicle" else (None, None)
            metadata = {"simulated": True, **({"address_id": address[0]} if address[0] and domain == "hems" else {})}
            passwords[device_id] = add_device(conn, device_id, domain, kind=kind, owner_subject=subject,
                                              district_code=address[1], public=domain == "vehicle",
                                              metadata=metadata)
            if domain == "health" and subject:
                consent.grant(conn, subject, "health", "services", "simulator", "simulated resident")
                if rng.random() < 0.7:  # most wearers also agreed to anonymised open data
                    consent.grant(conn, subject, "health", "open_data", "simulator", "simulated resident")
            elif domain == "hems" and subject and rng.random() < 0.85:  # most demo households opted in
                for purpose in ("services", "research", "open_data"):
                    consent.grant(conn, subject, "energy", purpose, "simulator", "simulated household")
    return passwords


def home_addresses(addresses: list[tuple[str, str]], homes: int, config: SimulationConfig) -> list[tuple[str, str]]:
    """An (address_id, district_code) for each home: ``pilot_share`` of them in the pilot districts (round robin
    over the districts, then over each district's addresses), the rest spread over the whole city."""
    if not addresses:
        return []
    by_district: dict[str, list[tuple[str, str]]] = {}
    for address in addresses:
        by_district.setdefault(address[1], []).append(address)
    pilots = sorted(by_district)[:config.pilot_districts]
    in_pilots = round(homes * config.pilot_share) if pilots else 0
    placed = [by_district[pilots[i % len(pilots)]][(i // len(pilots)) % len(by_district[pilots[i % len(pilots)]])]
              for i in range(in_pilots)]
    placed += [addresses[(n * 97) % len(addresses)] for n in range(in_pilots, homes)]
    return placed


def raise_file_limit(needed: int) -> None:
    """Raise this process's open-file limit to ``needed`` (up to the hard limit) or fail clearly."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RuntimeError(f"simulating this many devices needs {needed} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class Simulation:
    """Every device as its own MQTT client; a scheduler publishes each reading when it is due."""

    def __init__(self, broker_url: str, passwords: dict[str, str], config: SimulationConfig,
                 only: set[str] | None = None, roads: Sequence[Segment] = ()):
        self.address = BrokerAddress.parse(broker_url)
        self.config = config
        self.rng = random.Random(config.seed)
        self.clients: dict[str, mqtt.Client] = {}
        self.passwords = passwords
        self.published = 0
        self.refused: dict[str, str] = {}
        self._stop = threading.Event()
        route = road_routes(roads)
        self.devices: dict[str, object] = {}
        self.domains: dict[str, str] = {}
        for device_id, domain, kind in device_plan(config):
            if only is not None and device_id not in only:
                continue
            self.domains[device_id] = domain
            if domain == "hems":
                self.devices[device_id] = hems.Home.random(device_id, self.rng)
            elif domain == "vehicle":
                interval = self.rng.choice([1, 2, 5, 10, 20])
                cruise = 25 if kind == "snowplow" else 40
                self.devices[device_id] = vehicles.Vehicle(device_id, kind, route, interval, cruise)
            else:
                self.devices[device_id] = health.Wearer.random(device_id, self.rng)

    def _interval(self, device: object) -> float:
        if isinstance(device, vehicles.Vehicle):
            return device.interval_s
        if isinstance(device, hems.Home):
            return self.config.hems_interval_s
        return self.config.health_interval_s

    def _topic(self, device_id: str) -> str:
        return topic_for(self.domains[device_id], device_id)

    def connect(self) -> None:
        """Connect every device with its own credentials (three file descriptors each)."""
        raise_file_limit(3 * len(self.devices) + 100)
        for device_id in self.devices:
            client = new_client(BrokerAddress(self.address.host, self.address.port, device_id,
                                              self.passwords[device_id], self.address.tls), f"sim-{device_id}")
            client.on_connect = self._on_connect
            client.connect_async(self.address.host, self.address.port, keepalive=60)
            client.loop_start()
            self.clients[device_id] = client

    def _on_connect(self, client: mqtt.Client, _u, _f, reason_code, _p) -> None:
        if reason_code.is_failure:
            self.refused[client._client_id.decode()] = str(reason_code)
            log.warning("broker refused a simulated device", extra={"client": client._client_id.decode(),
                                                                     "reason": str(reason_code)})

    def stop(self) -> None:
        self._stop.set()

    def wait_connected(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until every device is connected or refused."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._stop.is_set():
            if all(c.is_connected() or c._client_id.decode() in self.refused for c in self.clients.values()):
                return
            time.sleep(0.1)

    def backfill(self, end: datetime, zone: ZoneInfo, step_s: float) -> int:
        """Each home's readings from the start of the previous local day (in ``zone``) to ``end``, every
        ``step_s`` on a fixed grid (a second run sends the same times, which ingest stores once), published as
        one batch per home; readings sent."""
        local_midnight = end.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        start = (local_midnight - timedelta(days=1)).astimezone(UTC)
        times = [start + timedelta(seconds=step_s * i) for i in range(int((end - start).total_seconds() // step_s))]
        sent = 0
        for device_id, device in self.devices.items():
            if not isinstance(device, hems.Home) or not times:
                continue
            rng = random.Random(f"{self.config.seed}-{device_id}")
            batch = [hems.reading(device, t, rng) for t in times]
            for chunk in range(0, len(batch), 5000):
                self.clients[device_id].publish(self._topic(device_id),
                                                json.dumps({"batch": batch[chunk:chunk + 5000]}), qos=1)
            sent += len(batch)
        return sent

    def run(self, duration_s: float | None = None) -> int:
        """Publish until ``duration_s`` passes or :meth:`stop`; readings published."""
        started = time.monotonic()
        queue = [(started + self.rng.uniform(0, self._interval(d)), device_id)
                 for device_id, d in self.devices.items()]
        heapq.heapify(queue)
        while not self._stop.is_set() and queue:
            due, device_id = queue[0]
            now = time.monotonic()
            if duration_s is not None and now - started >= duration_s:
                break
            if due > now:
                time.sleep(min(due - now, 0.2))
                continue
            heapq.heappop(queue)
            device = self.devices[device_id]
            t = datetime.now(UTC)
            if isinstance(device, hems.Home):
                payload = hems.reading(device, t, self.rng)
            elif isinstance(device, vehicles.Vehicle):
                payload = device.step(t, self.rng)
            else:
                assert isinstance(device, health.Wearer)
                payload = health.reading(device, t, self.config.health_interval_s, self.rng)
            self.clients[device_id].publish(self._topic(device_id), json.dumps(payload), qos=1)
            self.published += 1
            heapq.heappush(queue, (due + self._interval(device), device_id))
        return self.published

    def close(self) -> None:
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()


#: paho's network loop uses select(), which cannot watch file descriptors above 1024; each client
#: holds three, so one process runs at most this many devices.
DEVICES_PER_PROCESS = 250


def _run_share(broker_url: str, passwords: dict[str, str], config: SimulationConfig, only: set[str],
               duration_s: float | None, published, roads: Sequence[Segment]) -> None:
    sim = Simulation(broker_url, passwords, config, only, roads)
    signal.signal(signal.SIGTERM, lambda *_: sim.stop())
    sim.connect()
    try:
        count = 0
        if config.backfill:
            sim.wait_connected(30)
            count += sim.backfill(datetime.now(UTC), ZoneInfo(config.timezone), config.backfill_step_s)
        count += sim.run(duration_s)
    finally:
        sim.close()
    with published.get_lock():
        published.value += count


def simulate(database_url: str, broker_url: str, target: BrokerTarget, config: SimulationConfig,
             duration_s: float | None = None) -> int:
    """Register the devices, update the broker's credentials, publish; readings published.

    Devices are spread over processes of :data:`DEVICES_PER_PROCESS` each.
    """
    # a connection of its own, not the process's pool: this process forks its publishers next, and a pool's
    # threads and sockets must not be half-inherited by them
    with dedicated(database_url, autocommit=True) as conn, conn.transaction():
        devices = ensure_devices(conn, config)
        provision(conn, target, *devices.values())  # each device's account, with its fresh password
        roads = road_segments(conn)
    passwords = {device_id: new.mqtt_password for device_id, new in devices.items()}
    ids = [device_id for device_id, _, _ in device_plan(config)]
    shares = [set(ids[i::-(-len(ids) // DEVICES_PER_PROCESS)]) for i in range(-(-len(ids) // DEVICES_PER_PROCESS))]
    ctx = multiprocessing.get_context("fork")
    published = ctx.Value("q", 0)
    procs = [ctx.Process(target=_run_share, args=(broker_url, passwords, config, share, duration_s, published, roads))
             for share in shares]
    for proc in procs:
        proc.start()

    def forward(_signum, _frame) -> None:
        for proc in procs:
            proc.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in procs:
        proc.join()
    return published.value
