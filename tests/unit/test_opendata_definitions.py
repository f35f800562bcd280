"""Dataset definition files, file rendering and schedules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from cityos.opendata.builders import BUILDERS
from cityos.opendata.definitions import DATASETS_DIR, DefinitionError, load_definition, load_definitions, load_portal
from cityos.opendata.render import to_csv, to_geojson
from cityos.opendata.run import due

REQUIRED = {"fire-water-facilities", "population-by-district-age", "bus-stops", "energy-by-district-day",
            "snowplow-tracks", "accident-risk-hotspots", "health-by-district-month"}


def test_the_shipped_definitions_cover_the_required_datasets():
    assert {d.name for d in load_definitions()} == REQUIRED


def test_every_shipped_definition_names_a_registered_builder():
    assert {d.source.builder for d in load_definitions()} <= set(BUILDERS)


def test_datasets_built_from_personal_data_name_their_basis():
    bases = {d.name: d.anonymisation.basis for d in load_definitions()}
    assert bases["energy-by-district-day"] == bases["health-by-district-month"] == "consent"
    assert bases["population-by-district-age"] == "statutory"


def test_portal_file_has_the_city_code_with_check_digit():
    assert load_portal().city_code == "072028"


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_invalid_definition_names_the_file_and_the_field(tmp_path):
    text = (DATASETS_DIR / "bus-stops.toml").read_text(encoding="utf-8").replace('schedule = "weekly"',
                                                                                   'schedule = "sometimes"')
    with pytest.raises(DefinitionError, match=r"bus-stops.toml: schedule: Input should be"):
        load_definition(_write(tmp_path, "bus-stops", text))


def test_a_definition_whose_name_differs_from_its_file_is_refused(tmp_path):
    text = (DATASETS_DIR / "bus-stops.toml").read_text(encoding="utf-8")
    with pytest.raises(DefinitionError, match="differs from the file name"):
        load_definition(_write(tmp_path, "stops", text))


def test_broken_toml_is_reported_with_the_file_name(tmp_path):
    with pytest.raises(DefinitionError, match=r"x\.toml: not valid TOML"):
        load_definition(_write(tmp_path, "x", "name = "))


def test_asking_for_an_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DefinitionError, match="no dataset named nope; known: accident-risk-hotspots"):
        load_definitions(only=["nope"])


def test_csv_has_a_bom_crlf_and_empty_cells_for_suppressed_counts():
    frame = pd.DataFrame({"地域": ["栄町", "本町"], "総数": pd.array([12, None], dtype="Int64")})
    assert to_csv(frame) == "\ufeff地域,総数\r\n栄町,12\r\n本町,\r\n".encode()


def test_rendering_the_same_rows_gives_the_same_bytes():
    frame = pd.DataFrame({"lat": [37.5], "lon": [139.9], "kind": ["消火栓"]})
    assert to_geojson(frame, "x") == to_geojson(frame.copy(), "x")
    assert to_csv(frame) == to_csv(frame.copy())


def test_geojson_points_come_from_lat_and_lon():
    frame = pd.DataFrame({"lat": [37.5], "lon": [139.9], "kind": ["消火栓"]})
    feature = json.loads(to_geojson(frame, "x"))["features"][0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [139.9, 37.5]}
    assert feature["properties"]["kind"] == "消火栓"


def test_a_dataset_is_due_when_never_published_or_older_than_its_schedule():
    definitions = {d.name: d for d in load_definitions()}
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    last = {"bus-stops": now - timedelta(days=2), "snowplow-tracks": now - timedelta(minutes=70),
            "fire-water-facilities": now - timedelta(hours=3)}
    names = {d.name for d in due(list(definitions.values()), last, now)}
    assert "bus-stops" not in names  # weekly, published two days ago
    assert "snowplow-tracks" in names  # hourly
    assert "fire-water-facilities" not in names  # daily, three hours ago
    assert "health-by-district-month" in names  # never published
