"""The metric catalog (code) and the contract's table (docs) say the same."""

from __future__ import annotations

import re
from pathlib import Path

from cityos.ingest.catalog import DOMAINS, NUMBER, field_for

CONTRACT = Path(__file__).resolve().parents[2] / "ingest" / "CONTRACT.md"


def contract_rows() -> list[list[str]]:
    """The rows of the contract's field table: domain, field(s), unit, range."""
    rows = []
    for line in CONTRACT.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").replace("\\|", "/").split("|")]
        if len(cells) == 4 and cells[0] in ("hems", "vehicle", "health"):
            rows.append(cells)
    return rows


def contract_fields() -> dict[tuple[str, str], str]:
    """(domain, field) -> the range column of the contract's field table."""
    fields = {}
    for domain, names, _, range_text in contract_rows():
        ranges = range_text.split(", ")
        for i, name in enumerate(re.findall(r"`([a-z_]+)`", names)):
            fields[domain, name] = ranges[min(i, len(ranges) - 1)]
    return fields


def test_every_catalog_field_is_in_the_contract_and_back():
    catalog = {(d.name, f) for d in DOMAINS.values() for f in d.fields}
    assert set(contract_fields()) == catalog


def test_numeric_ranges_match_the_contract():
    for (domain, name), text in contract_fields().items():
        spec = DOMAINS[domain].fields[name]
        if spec.kind == NUMBER:
            low, high = (float(x) for x in text.split(".."))
            assert (spec.low, spec.high) == (low, high), name


def test_choices_match_the_contract():
    for domain, names, unit, _ in contract_rows():
        spec = DOMAINS[domain].fields[re.findall(r"`([a-z_]+)`", names)[0]]
        if spec.choices:
            assert tuple(re.findall(r"`([a-z_]+)`", unit)) == spec.choices


def test_env_accepts_free_names_but_not_t():
    assert field_for("env", "soil_moisture_pct") is not None
    assert field_for("env", "t") is None
    assert field_for("env", "Soil") is None
