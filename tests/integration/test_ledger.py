"""Every reading accounted for: a gateway that was offline for seven days delivers its backlog, and the
per-device ledger, the hourly roll-up, the latest values and the next publish all come out right.

Ten HEMS homes behind one gateway (the test's publisher, as the gateway forwards each home's stream)
report the current hour first; then the gateway comes back after seven days and delivers each home's
backlog of hourly readings stamped up to seven days ago, part of it twice (a re-delivery), and two
messages ingest must refuse. Real workers, broker, database and CKAN.
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from ckanapi import RemoteCKAN
from publisher import Publisher, Stream
from servers import Workers

from cityos.ingest.devices import add_device
from cityos.opendata.definitions import DATASETS_DIR, load_definitions
from cityos.opendata.run import due, last_published, late_arrivals, run
from cityos.platform import consent
from cityos.platform.db.maintenance import run_maintenance
from helpers import hours_ago, wait_for

# Readings are stamped relative to now (ingest's 30-day window): re-run with the clock a year ahead.
pytestmark = pytest.mark.windowed

HOMES = 10  # the default k: a district-day with fewer homes is blank in the open data
DAYS_OFFLINE = 7
DISTRICT = "LG1"


def _home(n: int) -> str:
    return f"led-home-{n:02d}"


def _topic(device: str) -> str:
    return f"cityos/v1/hems/{device}/readings"


def _backlog(n: int, now: datetime) -> list[bytes]:
    """One home's backlog: an hourly cumulative meter reading for each hour it was offline, six hours a message."""
    start = (now - timedelta(days=DAYS_OFFLINE)).replace(minute=0, second=0, microsecond=0)
    hours = [start + timedelta(hours=h) for h in range(DAYS_OFFLINE * 24 - 2)]
    readings = [{"t": t.isoformat(), "import_kwh": 1000 + n + h * 0.5, "power_w": 300 + h % 7}
                for h, t in enumerate(hours)]
    return [json.dumps({"batch": readings[i:i + 6]}).encode() for i in range(0, len(readings), 6)]


def _rows(conn: psycopg.Connection, device: str) -> int:
    return conn.execute("select count(*) from telemetry.energy_readings where device_id = %s",
                        (device,)).fetchone()[0]


def _ledger(conn: psycopg.Connection, device: str) -> dict:
    row = conn.execute("select sum(messages), sum(stored), sum(duplicates), sum(late) from core.device_ledger "
                       "where device_id = %s", (device,)).fetchone()
    refused = conn.execute("select coalesce(sum(value::bigint), 0) from core.device_ledger, jsonb_each_text(refused) "
                           "where device_id = %s", (device,)).fetchone()[0]
    return {"messages": int(row[0] or 0), "stored": int(row[1] or 0), "duplicates": int(row[2] or 0),
            "late": int(row[3] or 0), "refused": int(refused)}


@pytest.fixture(scope="module")
def offline_week(database_url, test_broker, settings, tmp_path_factory):
    """The homes, a first publish, the current readings, then the week's backlog; what was sent per home."""
    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from core.device_ledger where device_id like 'led-home-%%'")
        conn.execute("delete from telemetry.energy_readings where device_id like 'led-home-%%'")
        conn.execute("delete from telemetry.latest_values where device_id like 'led-home-%%'")
        conn.execute("insert into gis.districts (code, name_ja, geom) values (%s, '台帳町', "
                     "st_multi(st_makeenvelope(139.80, 37.40, 139.81, 37.41, 4326))) on conflict do nothing",
                     (DISTRICT,))
        if conn.execute("select value from cityos_meta.settings where key = 'rollup_mode'").fetchone()[0] \
                == "platform_table":
            conn.execute("delete from telemetry.energy_hourly where device_id like 'led-home-%%'")
        seed_day = now - timedelta(days=DAYS_OFFLINE + 3)
        for n in range(HOMES):  # other homes of the district with data before the week: the first publish has rows
            device = f"led-seed-{n:02d}"
            conn.execute("insert into core.devices (device_id, domain, owner_subject, district_code) "
                         "values (%s, 'hems', %s, %s) on conflict do nothing", (device, f"led-s-{n:02d}", DISTRICT))
            conn.execute("insert into telemetry.energy_readings (time, device_id, metric, value) values "
                         "(%s, %s, 'import_kwh', 10), (%s, %s, 'import_kwh', 12) on conflict do nothing",
                         (seed_day, device, seed_day + timedelta(hours=2), device))
            consent.grant(conn, f"led-s-{n:02d}", "energy", "open_data", "test")
        for n in range(HOMES):
            conn.execute("delete from core.devices where device_id = %s", (_home(n),))
            test_broker.provision(database_url, add_device(conn, _home(n), "hems", owner_subject=f"led-r-{n:02d}",
                                                           district_code=DISTRICT))
            consent.grant(conn, f"led-r-{n:02d}", "energy", "open_data", "test")
    folder, prefix = _definitions(tmp_path_factory.mktemp("ledger-defs"))
    publishing = settings.model_copy(update={"database_url": database_url})
    first = run(publishing, folder=folder)  # published before the backlog: the week's days are empty
    assert [r.status for r in first.results] == ["published"], first.results
    home = tmp_path_factory.mktemp("ledger-ingest")
    workers = Workers(database_url, test_broker.url, home)
    workers.start()
    sent = {_home(n): {"messages": 0, "readings": 0, "refused": 0} for n in range(HOMES)}
    try:
        with Publisher(test_broker.url) as pub:
            key = 0
            for n in range(HOMES):  # the current hour first: the newest observation of each home
                pub.publish(_topic(_home(n)), json.dumps({"t": hours_ago(0.2).isoformat(), "import_kwh": 5000 + n,
                                                          "power_w": 1}), key=(key := key + 1))
                sent[_home(n)]["messages"] += 1
                sent[_home(n)]["readings"] += 2
            assert pub.wait_acked(key, timeout=30)
            wait_for(lambda: all(_count_all(database_url, _home(n)) >= 2 for n in range(HOMES)), timeout=60)
            for n in range(HOMES):  # back after a week: the backlog, its first two messages delivered twice
                messages = _backlog(n, now)
                for payload in [*messages, *messages[:2]]:
                    pub.publish(_topic(_home(n)), payload, key=(key := key + 1))
                    sent[_home(n)]["messages"] += 1
                    sent[_home(n)]["readings"] += 2 * len(json.loads(payload)["batch"])
            for bad in (b"{not json", json.dumps({"t": "yesterday", "import_kwh": 1}).encode()):
                pub.publish(_topic(_home(0)), bad, key=(key := key + 1))
                sent[_home(0)]["messages"] += 1
                sent[_home(0)]["refused"] += 1
            assert pub.wait_acked(key, timeout=120), "the broker did not acknowledge the backlog"
        wait_for(lambda: all(_ledger_of(database_url, d)["messages"] == s["messages"] for d, s in sent.items()),
                 timeout=120, message=lambda: {d: _ledger_of(database_url, d) for d in sent})
    finally:
        workers.stop()
    run_maintenance(database_url, 400)
    yield {"sent": sent, "now": now, "folder": folder, "prefix": prefix, "publishing": publishing}
    # the suite's database is shared: these homes must not count in other modules' open-data aggregates
    with psycopg.connect(database_url, autocommit=True) as conn:
        for n in range(HOMES):
            for subject in (f"led-s-{n:02d}", f"led-r-{n:02d}"):
                consent.withdraw(conn, subject, "energy", "open_data", "test")


def _count_all(url: str, device: str) -> int:
    with psycopg.connect(url) as conn:
        return _rows(conn, device)


def _ledger_of(url: str, device: str) -> dict:
    with psycopg.connect(url) as conn:
        return _ledger(conn, device)


def _definitions(folder: Path) -> tuple[Path, str]:
    """The shipped energy dataset, renamed for this test under an organization of its own."""
    prefix = f"l{uuid.uuid4().hex[:8]}"
    portal = (DATASETS_DIR / "portal.toml").read_text(encoding="utf-8")
    (folder / "portal.toml").write_text(portal.replace('name = "aizuwakamatsu-city"', f'name = "{prefix}-org"'),
                                        encoding="utf-8")
    text = (DATASETS_DIR / "energy-by-district-day.toml").read_text(encoding="utf-8")
    (folder / f"{prefix}-energy.toml").write_text(
        text.replace('name = "energy-by-district-day"', f'name = "{prefix}-energy"', 1), encoding="utf-8")
    return folder, prefix


def test_the_ledger_accounts_for_every_reading_the_gateway_sent(offline_week, database_url):
    with psycopg.connect(database_url) as conn:
        for device, sent in offline_week["sent"].items():
            ledger = _ledger(conn, device)
            assert ledger["messages"] == sent["messages"]
            assert ledger["refused"] == sent["refused"]
            assert ledger["stored"] + ledger["duplicates"] == sent["readings"]
            assert ledger["stored"] == _rows(conn, device), "the ledger and the rows disagree"
            assert ledger["duplicates"] == 2 * 2 * 6  # two re-delivered messages of six readings of two metrics


def test_the_backlog_is_counted_as_late(offline_week, database_url):
    with psycopg.connect(database_url) as conn:
        ledger = _ledger(conn, _home(3))
    assert ledger["late"] == (DAYS_OFFLINE * 24 - 2 + 12) * 2  # the backlog, its re-delivered part included


def test_hourly_rollups_equal_a_recomputation_from_the_raw_rows(offline_week, database_url):
    query_raw = """select time_bucket('1 hour', time) b, device_id, metric, count(*), round(avg(value)::numeric, 6),
                          min(value), max(value), round(sum(value)::numeric, 6)
                   from telemetry.energy_readings where device_id like 'led-home-%%'
                   group by 1, 2, 3 order by 1, 2, 3"""
    query_rollup = """select bucket, device_id, metric, count, round(avg::numeric, 6), min, max, round(sum::numeric, 6)
                      from telemetry.energy_hourly where device_id like 'led-home-%%' order by 1, 2, 3"""
    with psycopg.connect(database_url) as conn:
        raw = conn.execute(query_raw).fetchall()
        rolled = conn.execute(query_rollup).fetchall()
    assert len(raw) > HOMES * 2 * DAYS_OFFLINE * 24 * 0.9
    assert rolled == raw
    oldest = min(r[0] for r in rolled)
    assert oldest < offline_week["now"] - timedelta(days=DAYS_OFFLINE - 1), "the week-old hours are rolled up"


def test_latest_values_are_the_newest_by_observation_time_not_by_arrival(offline_week, database_url):
    with psycopg.connect(database_url) as conn:
        latest = conn.execute("""select l.device_id, l.metric, l.time, l.value from telemetry.latest_values l
                                 where device_id like 'led-home-%%' order by 1, 2""").fetchall()
        newest = conn.execute("""select distinct on (device_id, metric) device_id, metric, time, value
                                 from telemetry.energy_readings where device_id like 'led-home-%%'
                                 order by device_id, metric, time desc""").fetchall()
    assert latest == newest
    assert all(t > offline_week["now"] - timedelta(hours=1) for _, _, t, _ in latest)


def test_the_late_days_make_the_dataset_due_and_the_next_publish_carries_them(offline_week, database_url):
    folder, prefix, publishing = offline_week["folder"], offline_week["prefix"], offline_week["publishing"]
    definitions = load_definitions(folder)
    with psycopg.connect(database_url) as conn:
        became_due = due(definitions, last_published(conn), datetime.now(UTC), late_arrivals(conn))
    assert [d.name for d in became_due] == [f"{prefix}-energy"], "published today, due again for its late days"
    report = run(publishing, folder=folder, due_only=True)
    assert [r.status for r in report.results] == ["published"]
    ckan = RemoteCKAN(publishing.ckan_url, apikey=publishing.ckan_token)
    package = ckan.action.package_show(id=f"{prefix}-energy")
    url = next(r["url"] for r in package["resources"])
    text = httpx.get(url, headers={"Authorization": ckan.apikey}, follow_redirects=True,
                     timeout=30).raise_for_status().content.decode("utf-8-sig")
    rows = [r for r in csv.DictReader(io.StringIO(text)) if DISTRICT in json.dumps(r, ensure_ascii=False)]
    zone = publishing.zone
    week_ago = (offline_week["now"] - timedelta(days=DAYS_OFFLINE - 1)).astimezone(zone).date().isoformat()
    assert any(week_ago in json.dumps(r) and r.get("kwh_per_home") not in ("", None) for r in rows), rows


def test_a_kill_9_mid_batch_leaves_the_ledger_and_the_rows_in_agreement(database_url, test_broker, register,
                                                                       workers):
    device = "led-kill9"
    register(device, "hems")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from core.device_ledger where device_id = %s", (device,))
        conn.execute("delete from telemetry.energy_readings where device_id = %s", (device,))
    base = hours_ago(3)

    def payload(seq: int) -> str:
        return json.dumps({"t": (base + timedelta(milliseconds=seq)).isoformat(), "power_w": seq})

    with Stream(test_broker.url, _topic(device), payload, 4000, rate=1000) as stream:
        stream.progress(0.4)
        workers.kill9()
        time.sleep(0.5)
        workers.start()
    acked = stream.publisher.acked
    assert acked
    wait_for(lambda: _count_all(database_url, device) >= len(acked), timeout=90)
    wait_for(lambda: _ledger_of(database_url, device)["stored"] >= len(acked), timeout=30)
    with psycopg.connect(database_url) as conn:
        ledger, rows = _ledger(conn, device), _rows(conn, device)
    assert ledger["stored"] == rows
    assert ledger["messages"] == ledger["stored"] + ledger["duplicates"]  # one reading per message


def test_device_stats_sum_per_day_to_the_ledger_in_utc_and_in_the_city_s_days(offline_week, database_url, settings):
    from cityos.ingest.ledger import device_stats

    with psycopg.connect(database_url) as conn:
        total = _ledger(conn, _home(0))
        for tz in ("UTC", settings.timezone):
            days = device_stats(conn, _home(0), days=3, tz=tz)
            assert {k: sum(d[k] for d in days) for k in ("messages", "stored", "duplicates", "late")} == \
                {k: total[k] for k in ("messages", "stored", "duplicates", "late")}
            assert sum(d["refused_total"] for d in days) == 2
            assert max(d["newest"] for d in days) > offline_week["now"] - timedelta(hours=1)


def test_the_fleet_view_lists_silent_devices_and_devices_with_refusals(offline_week, database_url):
    from cityos.ingest.ledger import fleet

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from core.devices where device_id in ('led-quiet', 'led-chatty')")
        add_device(conn, "led-quiet", "env")
        add_device(conn, "led-chatty", "env")
        conn.execute("update core.devices set created_at = now() - interval '3 hours', expected_interval = "
                     "case device_id when 'led-quiet' then interval '1 hour' else interval '1 day' end "
                     "where device_id in ('led-quiet', 'led-chatty')")
        view = fleet(conn, days=7, now=conn.execute("select now()").fetchone()[0])  # the registry's clock
    silent = {d["device_id"] for d in view["silent"]}
    assert "led-quiet" in silent and "led-chatty" not in silent
    refused = {d["device_id"]: d["refused"] for d in view["refusals"]}
    assert sum(refused[_home(0)].values()) == 2 and _home(1) not in refused


def _energy_batch(device: str, start: datetime, values: list[float]):
    from cityos.ingest.writer import Batch

    batch = Batch()
    batch.add_rows("telemetry.energy_readings",
                   [(start + timedelta(minutes=i), device, "power_w", v) for i, v in enumerate(values)])
    return batch


def _platform_rollups_without(conn: psycopg.Connection, device: str) -> None:
    """No readings of ``device``; skips on a community build (it refreshes its continuous aggregate from its own
    invalidation log, not from the platform's marked buckets)."""
    from cityos.platform.db.maintenance import rollup_mode

    conn.execute("delete from telemetry.energy_readings where device_id = %s", (device,))
    if rollup_mode(conn) != "platform_table":
        pytest.skip("the community build refreshes its continuous aggregate (its own invalidation log)")


def test_a_batch_still_uncommitted_when_maintenance_claims_its_bucket_is_in_the_recomputation(database_url):
    import threading

    from cityos.ingest.writer import write_batch
    from cityos.platform.db.maintenance import refresh_rollups

    device, hour = "led-race", hours_ago(30).replace(minute=0, second=0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        _platform_rollups_without(conn, device)
        refresh_rollups(conn, 10**9)  # nothing else pending
    writer = psycopg.connect(database_url)
    writer.execute("select 1")  # an open transaction: the batch below is written in it, not yet committed
    write_batch(writer, _energy_batch(device, hour, [1.0, 2.0]))
    done: list[dict] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        run_id = conn.execute("select coalesce(max(id), 0) + 1 from cityos_meta.maintenance_runs").fetchone()[0]
        passing, batch = conn.info.backend_pid, writer.info.backend_pid

        def waits_for_the_batch() -> bool:
            with psycopg.connect(database_url, autocommit=True) as probe:
                return batch in probe.execute("select pg_blocking_pids(%s)", (passing,)).fetchone()[0]

        thread = threading.Thread(target=lambda: done.append(refresh_rollups(conn, 10**9 + run_id)))
        thread.start()
        # a condition, not a delay: the pass blocks on the batch's lock, or (wrongly) finishes without waiting
        wait_for(lambda: done or waits_for_the_batch(), 30,
                 message=lambda: "the pass neither finished nor waited for the batch's transaction")
        assert not done, "the pass must wait for the batch that marked the bucket"
        writer.commit()
        thread.join(30)
        row = conn.execute("select count, sum from telemetry.energy_hourly where device_id = %s and bucket = %s",
                           (device, hour)).fetchone()
    writer.close()
    assert row == (2, 3.0)


def test_a_bucket_marked_again_during_a_recomputation_is_recomputed_by_the_next_pass(database_url):
    from cityos.ingest.writer import write_batch
    from cityos.platform.db import rollups
    from cityos.platform.db.maintenance import refresh_rollups

    device, hour = "led-again", hours_ago(50).replace(minute=0, second=0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        _platform_rollups_without(conn, device)
        write_batch(conn, _energy_batch(device, hour, [1.0]))
        claimed = rollups.claim(conn, 10**9 + 1)  # a pass has claimed the bucket...
        assert hour in claimed[rollups.ENERGY_HOURLY.name]
        write_batch(conn, _energy_batch(device, hour + timedelta(minutes=30), [5.0]))  # ...a late reading comes...
        refresh_rollups(conn, 10**9 + 2)  # (this pass recomputes what both claims hold)
        refresh_rollups(conn, 10**9 + 3)
        row = conn.execute("select count, sum from telemetry.energy_hourly where device_id = %s and bucket = %s",
                           (device, hour)).fetchone()
        left = conn.execute("select count(*) from cityos_meta.rollup_dirty where bucket = %s", (hour,)).fetchone()[0]
    assert row == (2, 6.0) and left == 0
