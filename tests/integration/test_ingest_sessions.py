"""Worker sessions: stable identities, and no orphaned member of the ingest share group.

Mosquitto keeps handing an offline member of a shared subscription its share of the messages. A
worker whose id changes (a re-created container under a new host name) or that is scaled away
leaves a session that holds acknowledged readings nobody reads. Real broker, real workers, while a
device publishes: every acknowledged reading is stored.
"""

from __future__ import annotations

import json
import socket
from datetime import timedelta

import psycopg
import pytest
from publisher import Stream
from servers import Workers

from cityos.ingest import sessions
from cityos.ingest.worker import drain_session
from helpers import hours_ago, wait_for

pytestmark = pytest.mark.windowed

DEVICE = "hems-sessions"
TOPIC = f"cityos/v1/hems/{DEVICE}/readings"
BASE = hours_ago(24)


def _payload(seq: int) -> str:
    return json.dumps({"t": (BASE + timedelta(milliseconds=seq)).isoformat(), "power_w": seq})


def _stored(url: str) -> tuple[set[int], int]:
    with psycopg.connect(url) as conn:
        values = [int(r[0]) for r in conn.execute(
            "select value from telemetry.energy_readings where device_id = %s and metric = 'power_w'",
            (DEVICE,)).fetchall()]
    return set(values), len(values)


def _all_stored(url: str, acked: set[int], timeout: float = 90) -> None:
    assert acked, "the publisher got no PUBACK at all"
    wait_for(lambda: acked <= _stored(url)[0], timeout=timeout, interval=0.5,
             message=lambda: f"{len(acked - _stored(url)[0])} acknowledged readings not stored")
    values, rows = _stored(url)
    assert rows == len(values), "a reading was stored twice"


@pytest.fixture()
def device(register, database_url, test_broker):
    """The publishing device, and no parked session of an earlier test left in the share group."""
    register(DEVICE, "hems")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from telemetry.energy_readings where device_id = %s", (DEVICE,))
        sessions.sweep(conn, -1, 0, lambda cid: drain_session(database_url, test_broker.url, cid), after_s=0)


@pytest.fixture()
def running(database_url, test_broker, tmp_path):
    """Start ``cityos ingest`` process trees; every one still running is stopped at the end."""
    started: list[Workers] = []

    def start(name: str, workers: int, **kwargs) -> Workers:
        proc = Workers(database_url, test_broker.url, tmp_path / name, workers, public_feed=False, **kwargs)
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def _open_sessions(url: str) -> dict[str, str | None]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("select client_id, end_reason from core.ingest_sessions").fetchall())


def test_scaling_down_and_up_and_recreating_under_a_new_host_name_loses_no_acknowledged_reading(
        device, running, test_broker, database_url):
    ingest = running("two", 2)
    with Stream(test_broker.url, TOPIC, _payload, 4000, rate=250) as stream:
        stream.progress(0.15)
        assert ingest.stop() == 0  # the only instance: keeps its sessions, messages queue for them
        ingest = running("one", 1)  # scaled down: worker 1's session is drained and ended, not left behind
        stream.progress(0.4)
        _all_stored(database_url, set(stream.publisher.acked), timeout=60)
        assert _open_sessions(database_url)["cityos-ingest-0-1"] == "scaled_down"
        assert ingest.stop() == 0
        ingest = running("two-again", 2)  # scaled up
        stream.progress(0.6)
        ingest.kill9()
        # A re-created container: a new host name, the same instance ordinal, so the same sessions.
        ingest = running("recreated", 2, hostname="ingest-recreated")
    _all_stored(database_url, stream.publisher.acked)
    sessions_now = _open_sessions(database_url)
    assert {cid for cid, reason in sessions_now.items() if reason is None} == {"cityos-ingest-0-0",
                                                                              "cityos-ingest-0-1"}
    assert all(reason in ("scaled_down", "left") for cid, reason in sessions_now.items()
               if socket.gethostname() in cid), "a pre-ordinal (host-named) session was not ended"


def test_an_instance_stopping_while_another_stays_ends_its_sessions_and_loses_nothing(
        device, running, test_broker, database_url):
    first = running("first", 1)
    second = running("second", 1)
    with Stream(test_broker.url, TOPIC, _payload, 2000, rate=250) as stream:
        stream.progress(0.3)
        assert second.stop() == 0  # instance 1 leaves for good: instance 0 stays
        assert _open_sessions(database_url)["cityos-ingest-1-0"] == "left"
    _all_stored(database_url, stream.publisher.acked)
    assert first.alive()


def test_the_session_of_a_crashed_instance_is_drained_ended_and_shown_until_then(
        device, running, test_broker, database_url):
    running("staying", 1)
    crashed = running("crashed", 1)
    with Stream(test_broker.url, TOPIC, _payload, 2000, rate=250) as stream:
        stream.progress(0.3)
        crashed.kill9()  # its session stays in the share group and keeps taking its share
        stream.progress(0.6)
    acked = stream.publisher.acked
    assert not acked <= _stored(database_url)[0], "the crashed worker's session held nothing: no test"
    assert sessions.overview(database_url)["orphaned"] == ["cityos-ingest-1-0"]
    # The staying instance's keeper does this after ORPHAN_AFTER_S; here at once, the same functions.
    with psycopg.connect(database_url, autocommit=True) as conn:
        ended = sessions.sweep(conn, 0, 1, lambda cid: drain_session(database_url, test_broker.url, cid), after_s=0)
    assert [cid for cid, _ in ended] == ["cityos-ingest-1-0"] and ended[0][1] > 0
    _all_stored(database_url, acked, timeout=30)
    overview = sessions.overview(database_url)
    assert overview["orphaned"] == [] and overview["instances"] == [0]
