"""The payload contract (ingest/contract.py) is the one both sides read: what the gateway builds and
accepts, the server accepts, and the gateway's own checks give the server's verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from cityos.ingest.catalog import field_for
from cityos.ingest.contract import FIELDS, MAX_PAYLOAD_BYTES, BatchBuilder, Rejected, check_value, encode_batch
from cityos.ingest.gateway.outbox import Outbox
from cityos.ingest.gateway.payload import check_metric, clean_metrics, read_time
from cityos.ingest.normalise import parse_message

TOPIC = "cityos/v1/hems/meter-01/readings"
JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9), st.text(max_size=8),
                        st.floats(allow_nan=True, allow_infinity=True))


def test_a_batch_the_gateway_outbox_builds_is_stored_whole_by_the_server(tmp_path):
    box = Outbox(tmp_path / "outbox.db", max_bytes=10_000_000, boot="b")
    now = time.time()
    for n in range(200):
        box.put(TOPIC, now - 600 + n, {"power_w": 100.0 + n, "import_kwh": 1234.5, "battery_soc_pct": 50})
    batch = box.next_batch(max_bytes=4000)
    box.close()
    assert 1 < batch.count < 200  # cut by the size limit, not by the rows available
    assert len(batch.payload) <= 4000
    _info, parsed = parse_message(batch.topic, batch.payload, now=datetime.now(UTC))
    assert parsed.reading_count == batch.count


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["t", "power_w", "名前", "x"]),
                                st.one_of(st.integers(), st.text(max_size=5), st.floats(allow_nan=False,
                                                                                         allow_infinity=False))),
                max_size=30),
       st.integers(20, 2000))
def test_the_batch_builder_gives_the_json_of_what_it_took_and_its_exact_size(readings, max_bytes):
    builder = BatchBuilder(max_bytes=max_bytes)
    taken = [r for r in readings if builder.add(r)]
    payload = builder.payload()
    assert json.loads(payload) == {"batch": taken}
    assert builder.size == len(payload) <= max_bytes


def test_a_batch_over_the_size_limit_is_refused_when_encoded():
    big = [{"t": 0, "power_w": 1.0, "pad": "x" * 1000}] * (MAX_PAYLOAD_BYTES // 1000)
    try:
        encode_batch(big)
    except ValueError:
        return
    raise AssertionError("encode_batch accepted a payload over the limit")


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(FIELDS)), st.sampled_from(["power_w", "lat", "speed_kmh", "role", "blade_down",
                                                         "sleep_stage", "pillbox_open", "steps", "t", "soil_ph",
                                                         "Bad"]),
       JSON_VALUES)
def test_the_gateway_refuses_a_metric_for_the_reason_the_server_would(domain, name, value):
    good, bad = clean_metrics(domain, {name: value})
    if value is None:
        assert good == bad == {}
        return
    if isinstance(value, float):
        value = round(value, 6)
    spec = field_for(domain, name)  # the server's catalog
    expected: str | None = "unknown_field" if spec is None else None
    if spec is not None:
        try:
            check_value(name, spec, value)
        except Rejected as exc:
            expected = exc.reason
    assert check_metric(domain, name, value) == expected
    assert bad.get(name) == expected


def test_the_gateway_reads_observation_times_by_the_contract_rules():
    assert read_time("2026-11-24T10:00:00.250+09:00") == datetime(2026, 11, 24, 1, 0, 0, 250000,
                                                                 tzinfo=UTC).timestamp()
    assert read_time("2026-11-24t01:00:00z") == datetime(2026, 11, 24, 1, tzinfo=UTC).timestamp()
    for bad in ("2026-11-24T10:00:00", True, None, float("nan"), time.time() * 1000):
        try:
            read_time(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_the_contract_imports_only_the_standard_library():
    code = ("import sys; before = set(sys.modules); import cityos.ingest.contract\n"
            "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
            "print(sorted(new - set(sys.stdlib_module_names) - {'cityos'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
