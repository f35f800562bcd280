"""Dataset builders take metric names from the one metric catalog: an unknown name stops them loading."""

from __future__ import annotations

import importlib
import sys

import pytest

from cityos.ingest.catalog import HEALTH_FIELDS, HEMS
from cityos.opendata.builders import HEART_RATE, IMPORT_KWH, STEPS, UnknownMetric, catalog_metric


def test_the_builders_read_metrics_that_ingest_stores():
    assert {HEART_RATE, STEPS} <= set(HEALTH_FIELDS) and IMPORT_KWH in HEMS


def test_a_metric_the_catalog_does_not_know_is_refused_naming_the_known_ones():
    with pytest.raises(UnknownMetric, match=r"'heart_rate'.*heart_rate_bpm"):
        catalog_metric("health", "heart_rate")


def test_an_unknown_domain_is_refused():
    with pytest.raises(UnknownMetric, match="no domain 'wearable'"):
        catalog_metric("wearable", "steps")


def test_vehicle_columns_are_not_metrics():
    with pytest.raises(UnknownMetric, match="columns"):
        catalog_metric("vehicle", "speed_kmh")


def test_a_builder_module_naming_an_unknown_metric_fails_at_load_time(tmp_path, monkeypatch):
    (tmp_path / "bad_builder.py").write_text(
        "from cityos.opendata.builders import catalog_metric\nSTEPS = catalog_metric('health', 'step_count')\n",
        encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UnknownMetric, match="step_count"):
        importlib.import_module("bad_builder")
    sys.modules.pop("bad_builder", None)
