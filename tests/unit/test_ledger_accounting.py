"""What a batch accounts for (pure: no servers): late readings, touched roll-up buckets, late days, due datasets."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from cityos.ingest.pipeline import process_message
from cityos.ingest.writer import Batch, _ledger_rows, _touched
from cityos.opendata.definitions import load_definitions
from cityos.opendata.run import due
from cityos.platform.db.rollups import ENERGY_HOURLY, windows

NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
TOPIC = "cityos/v1/hems/hems-0001/readings"


class _Admit:
    def check(self, *_args):
        return None


def _outcome(*times: datetime):
    payload = json.dumps({"batch": [{"t": t.isoformat(), "power_w": 1} for t in times]}).encode()
    return process_message(TOPIC, payload, now=NOW, admission=_Admit())


def test_readings_older_than_an_hour_on_arrival_are_late():
    outcome = _outcome(NOW - timedelta(minutes=59), NOW - timedelta(minutes=61), NOW - timedelta(days=7))
    oldest, newest, late = outcome.spans["telemetry.energy_readings"]
    assert (oldest, newest, late) == (NOW - timedelta(days=7), NOW - timedelta(minutes=59), 2)


def test_a_batch_marks_the_hours_its_messages_span_and_not_the_hours_between_messages():
    batch = Batch(received_at=NOW)
    batch.add_outcome(_outcome(NOW - timedelta(days=7, minutes=10), NOW - timedelta(days=7, minutes=-55)))
    batch.add_outcome(_outcome(NOW - timedelta(minutes=5)))
    buckets, late_days = _touched(batch)
    week_ago = (NOW - timedelta(days=7)).replace(minute=0)
    assert buckets == {ENERGY_HOURLY.name: {week_ago, week_ago + timedelta(hours=1), NOW.replace(minute=0)}}
    assert late_days == {("telemetry.energy_readings", date(2026, 11, 18))}


def test_the_ledger_row_of_a_device_adds_messages_refusals_and_duplicates():
    batch = Batch(received_at=NOW)
    batch.add_outcome(_outcome(NOW - timedelta(minutes=5), NOW - timedelta(minutes=4)))
    batch.add_outcome(process_message(TOPIC, b"{not json", now=NOW, admission=_Admit()))
    columns = _ledger_rows(batch, NOW.replace(minute=0), written={"hems-0001": 1})
    device, _hour, messages, stored, duplicates, late, refused, newest = (c[0] for c in columns)
    assert (device, messages, stored, duplicates, late) == ("hems-0001", 2, 1, 1, 0)
    assert sum(refused.obj.values()) == 1 and newest == NOW - timedelta(minutes=4)


def test_adjacent_buckets_merge_into_one_refresh_window():
    h = datetime(2026, 11, 1, tzinfo=UTC)
    hour = timedelta(hours=1)
    assert windows([h + 2 * hour, h, h + hour, h + 5 * hour], hour) == [(h, h + 3 * hour), (h + 5 * hour, h + 6 * hour)]


def test_a_dataset_published_today_is_due_again_when_its_period_received_late_data():
    definitions = [d for d in load_definitions() if d.name == "energy-by-district-day"]
    published = {"energy-by-district-day": NOW - timedelta(hours=2)}
    assert due(definitions, published, NOW) == []
    late_before = {"telemetry.energy_readings": [(date(2026, 11, 18), NOW - timedelta(hours=3))]}
    assert due(definitions, published, NOW, late_before) == []  # arrived before the publish
    late_after = {"telemetry.energy_readings": [(date(2026, 11, 18), NOW - timedelta(hours=1))]}
    assert due(definitions, published, NOW, late_after) == definitions
    too_old = {"telemetry.energy_readings": [(date(2026, 1, 1), NOW - timedelta(hours=1))]}
    assert due(definitions, published, NOW, too_old) == []  # outside its 90 days
    other_table = {"telemetry.health_readings": [(date(2026, 11, 18), NOW - timedelta(hours=1))]}
    assert due(definitions, published, NOW, other_table) == []
