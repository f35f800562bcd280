"""The ECHONET Lite adapter (pychonet) polls a real node over a real socket: both ends on UDP 3610,
in two network namespaces joined by a veth pair."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from itertools import pairwise
from pathlib import Path

import pytest

from cityos.ingest.gateway.adapters.echonet import EchonetAdapter, Settings
from cityos.ingest.gateway.clock import Clock
from cityos.ingest.gateway.emitter import Emitter
from cityos.ingest.gateway.outbox import Outbox
from helpers import missing, run_async

RESPONDER = Path(__file__).with_name("echonet") / "responder.py"
GATEWAY_IP, DEVICE_IP, ABSENT_IP = "10.231.0.1", "10.231.0.2", "10.231.0.3"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def home_lan():
    """A namespace holding the device, joined to this one by a veth pair (10.231.0.0/24)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        missing("network namespaces need root and iproute2")
    ns, host_if = f"el{uuid.uuid4().hex[:6]}", f"vel{uuid.uuid4().hex[:6]}"
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("addr", "add", f"{GATEWAY_IP}/24", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("netns", "exec", ns, "ip", "addr", "add", f"{DEVICE_IP}/24", "dev", "eth0")
        _ip("netns", "exec", ns, "ip", "link", "set", "eth0", "up")
        _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        _ip("netns", "exec", ns, "ip", "route", "add", "default", "dev", "eth0")
        device = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, str(RESPONDER)], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        assert device.stdout.readline().strip() == "ready"
        yield ns
        device.kill()
        device.wait(5)
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _rows(outbox: Outbox) -> list[dict]:
    import json

    rows = []
    while (batch := outbox.next_batch()) is not None:
        rows += json.loads(batch.payload)["batch"]
        outbox.acked(batch.ids)
    return rows


@pytest.fixture()
def adapter(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10_000_000, boot="test")
    emitter = Emitter(outbox, Clock(), outbox.counters, "hems-el-01")
    settings = Settings(type="echonet", hosts=[DEVICE_IP, ABSENT_IP], local_ip=GATEWAY_IP, timeout_s=1)
    yield EchonetAdapter(settings, emitter.sink("hems", "echonet"), outbox), outbox
    outbox.close()


async def _poll_rounds(adapter: EchonetAdapter, rounds: int) -> None:
    server, api = adapter.connect()
    try:
        for _ in range(rounds):
            for host in adapter.settings.hosts:
                await adapter.poll(api, host)
            await asyncio.sleep(0.05)
    finally:
        server.close()


def test_meter_solar_and_battery_are_read_over_udp_3610(home_lan, adapter):
    echonet, outbox = adapter
    run_async(_poll_rounds(echonet, 1))
    rows = _rows(outbox)
    merged = {k: v for row in rows for k, v in row.items() if k != "t"}
    assert merged["power_w"] == 850.0 and merged["current_r_a"] == 8.0 and merged["current_t_a"] == -0.2
    assert merged["solar_w"] == 2400.0 and merged["solar_kwh"] == pytest.approx(1234.567)
    assert merged["battery_soc_pct"] == 64.0
    assert "export_kwh" not in merged  # 0xFFFFFFFE: no measurement


def test_a_device_that_does_not_answer_is_counted_and_the_others_still_polled(home_lan, adapter):
    echonet, outbox = adapter
    run_async(_poll_rounds(echonet, 1))
    assert outbox.counters.get("echonet_no_answer") >= 1
    assert outbox.counters.get("echonet_readings") == 3


def test_the_cumulative_counter_keeps_growing_across_its_wrap(home_lan, adapter):
    echonet, outbox = adapter
    run_async(_poll_rounds(echonet, 4))  # the node's 6-digit counter advances 400,000 a read: it wraps
    totals = [row["import_kwh"] for row in _rows(outbox) if "import_kwh" in row]
    assert len(totals) == 4
    assert [round(b - a, 3) for a, b in pairwise(totals)] == [40_000.0] * 3  # x 0.1 kWh
