"""The resident registry (住民基本台帳): a full extract, and the daily change file (異動) applied incrementally.

Files are CSV in any of the usual encodings (UTF-8, UTF-8 with BOM, CP932), with Japanese or English
headers. A change file lists one change per row:

| column | meaning |
|---|---|
| 異動日 / change_date | the day the change took effect |
| 異動事由 / change | 転入 move_in, 出生 birth, 転出 move_out, 死亡 death, 転居 address_change |
| 住民ID, 世帯番号, 町丁目コード, 住所ID, 生年月日, 性別 | the person after the change (English names also read) |

Applying a file is idempotent: each change sets the person's row to the state the change describes,
so applying the same day's file again changes nothing; a file already applied (same SHA-256) is
skipped. Every load is recorded in ``registry.updates`` and the audit log. Rows that cannot be read
are refused with the line and reason; nothing is applied from a file with refused rows unless the
caller allows it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import psycopg

from cityos.gis.loaders.dates import DateError, parse_date
from cityos.gis.loaders.tables import TableError, read_frame
from cityos.platform.audit import Who, record

#: Who loads when no person or job is named (the demo city).
LOADER = Who("registry-loader", "job")

COLUMNS = {
    "住民ID": "person_id", "個人番号": "person_id", "person_id": "person_id",
    "世帯番号": "household_id", "世帯ID": "household_id", "household_id": "household_id",
    "町丁目コード": "district_code", "地区コード": "district_code", "district_code": "district_code",
    "住所ID": "address_id", "address_id": "address_id",
    "生年月日": "birth_date", "birth_date": "birth_date",
    "性別": "sex", "sex": "sex",
    "転入日": "moved_in", "住定日": "moved_in", "moved_in": "moved_in",
    "転出日": "moved_out", "消除日": "moved_out", "moved_out": "moved_out",
    "異動日": "change_date", "change_date": "change_date",
    "異動事由": "change", "change": "change",
}
CHANGES = {"転入": "move_in", "出生": "birth", "転出": "move_out", "死亡": "death", "転居": "address_change",
           "move_in": "move_in", "birth": "birth", "move_out": "move_out", "death": "death",
           "address_change": "address_change"}
SEXES = {"男": "M", "女": "F", "1": "M", "2": "F", "M": "M", "F": "F", "X": "X", "9": "X"}
PERSON = ("person_id", "household_id", "district_code", "address_id", "birth_date", "sex")


class RegistryError(ValueError):
    """A registry file cannot be applied (the message lists the refused lines)."""


@dataclass
class ChangeReport:
    """What a change file did."""

    source: str
    sha256: str
    as_of: date | None = None
    inserted: int = 0
    updated: int = 0
    moved_out: int = 0
    unchanged: int = 0
    refused: list[dict] = field(default_factory=list)
    skipped: bool = False


def _date(value: str, line: int, name: str) -> date:
    """A required date (the shared reader: ISO, 和暦 R5.4.1/H27.10.30/昭和, Excel serials, M/D/YYYY)."""
    try:
        day = parse_date(value)
    except DateError as exc:
        raise ValueError(f"line {line}: {name} {exc}") from None
    if day is None:
        raise ValueError(f"line {line}: {name} is blank or unknown")
    return day


def _optional_date(value: str, line: int, name: str) -> date | None:
    try:
        return parse_date(value)
    except DateError as exc:
        raise ValueError(f"line {line}: {name} {exc}") from None


def _frame(path: Path | str) -> tuple[pd.DataFrame, str]:
    try:
        frame, encoding = read_frame(path)
    except (TableError, OSError) as exc:
        raise RegistryError(f"{Path(path).name}: {exc}") from None
    return frame.rename(columns={c: COLUMNS[c] for c in frame.columns if c in COLUMNS}), encoding


def read_changes(path: Path | str) -> tuple[list[dict], list[dict], str]:
    """The change rows of ``path`` (normalised), the refused rows (line, reason) and the encoding."""
    frame, encoding = _frame(path)
    missing = {"person_id", "change_date", "change"} - set(frame.columns)
    if missing:
        raise RegistryError(f"{Path(path).name}: no column for {', '.join(sorted(missing))}")
    rows, refused = [], []
    for raw in frame.to_dict(orient="records"):
        line = raw["_line"]
        try:
            change = CHANGES.get(raw["change"])
            if change is None:
                raise ValueError(f"line {line}: unknown change {raw['change']!r}")
            row = {"person_id": raw["person_id"], "change": change,
                   "change_date": _date(raw["change_date"], line, "change_date")}
            if change in ("move_in", "birth", "address_change"):
                for name in ("household_id", "district_code", "birth_date", "sex"):
                    if not raw.get(name):
                        raise ValueError(f"line {line}: {change} needs {name}")
                if (sex := SEXES.get(raw["sex"])) is None:
                    raise ValueError(f"line {line}: sex {raw['sex']!r} is not 男/女/M/F/1/2")
                row.update(household_id=raw["household_id"], district_code=raw["district_code"],
                           address_id=raw.get("address_id") or None, sex=sex,
                           birth_date=_date(raw["birth_date"], line, "birth_date"))
            rows.append(row)
        except ValueError as exc:
            refused.append({"line": line, "reason": str(exc).split(": ", 1)[-1]})
    return rows, refused, encoding


def apply_changes(conn: psycopg.Connection, path: Path | str, who: Who = LOADER, allow_refused: bool = False,
                  reason: str = "apply the registry's daily changes") -> ChangeReport:
    """Apply a daily change file in one transaction (idempotent; a file applied before is skipped); the audit row
    names ``who`` and ``reason``."""
    data = Path(path).read_bytes()
    report = ChangeReport(Path(path).name, hashlib.sha256(data).hexdigest())
    if conn.execute("select 1 from registry.updates where source_sha256 = %s", (report.sha256,)).fetchone():
        report.skipped = True
        return report
    rows, report.refused, encoding = read_changes(path)
    report.source = f"{Path(path).name} ({encoding})"
    if report.refused and not allow_refused:
        raise RegistryError(f"{report.source}: {len(report.refused)} row(s) refused, nothing applied: "
                            + "; ".join(f"line {r['line']}: {r['reason']}" for r in report.refused[:10]))
    report.as_of = max((r["change_date"] for r in rows), default=None)
    with conn.transaction():
        for row in sorted(rows, key=lambda r: r["change_date"]):
            _apply(conn, row, report)
        conn.execute("insert into registry.updates (as_of, inserted, updated, moved_out, source, source_sha256) "
                     "values (coalesce(%s, current_date), %s, %s, %s, %s, %s)",
                     (report.as_of, report.inserted, report.updated, report.moved_out, report.source,
                      report.sha256))
        record(conn, who, "registry:apply-changes", "registry/residents", role="registry",
               subject=f"residents changed by {Path(path).name}", reason=reason,
               detail={"source": report.source, "inserted": report.inserted, "updated": report.updated,
                       "moved_out": report.moved_out, "unchanged": report.unchanged, "refused": len(report.refused)})
    return report


def _apply(conn: psycopg.Connection, row: dict, report: ChangeReport) -> None:
    change, day = row["change"], row["change_date"]
    if change in ("move_out", "death"):
        updated = conn.execute("update registry.residents set moved_out = %s, updated_at = now() "
                               "where person_id = %s and moved_out is distinct from %s",
                               (day, row["person_id"], day)).rowcount
        report.moved_out += updated
        report.unchanged += 1 - updated
        return
    moved_in = row["birth_date"] if change == "birth" else day
    values = (row["person_id"], row["household_id"], row["district_code"], row["address_id"], row["birth_date"],
              row["sex"])
    existing = conn.execute("select household_id, district_code, address_id, birth_date, sex, moved_in, moved_out "
                            "from registry.residents where person_id = %s", (row["person_id"],)).fetchone()
    if existing is None:
        conn.execute("insert into registry.residents (person_id, household_id, district_code, address_id, "
                     "birth_date, sex, moved_in) values (%s, %s, %s, %s, %s, %s, %s)", (*values, moved_in))
        report.inserted += 1
        return
    wanted = (*values[1:], existing[5] if change == "address_change" else moved_in,
              existing[6] if change == "address_change" else None)
    if tuple(existing) == wanted:
        report.unchanged += 1
        return
    conn.execute("update registry.residents set household_id = %s, district_code = %s, address_id = %s, "
                 "birth_date = %s, sex = %s, moved_in = %s, moved_out = %s, updated_at = now() "
                 "where person_id = %s", (*wanted, row["person_id"]))
    report.updated += 1


def load_extract(conn: psycopg.Connection, path: Path | str, who: Who = LOADER,
                 reason: str = "replace the registry with an extract") -> int:
    """Replace the registry with a full extract (person, household, district, address, birth, sex, moves); the
    audit row names ``who`` and ``reason``.

    Every row is checked first; a file with refused rows (unknown sex code, unreadable date, duplicate
    person) is refused as a whole with the lines and reasons, and nothing is replaced.
    """
    frame, _ = _frame(path)
    missing = set(PERSON) - {"address_id"} - set(frame.columns)
    if missing:
        raise RegistryError(f"{Path(path).name}: no column for {', '.join(sorted(missing))}")
    columns = [c for c in (*PERSON, "moved_in", "moved_out") if c in frame]
    rows, refused, seen = [], [], {}
    for raw in frame.to_dict(orient="records"):
        line = raw["_line"]
        try:
            if (sex := SEXES.get(raw["sex"])) is None:
                raise ValueError(f"line {line}: unknown sex code {raw['sex']!r}")
            if not raw["person_id"]:
                raise ValueError(f"line {line}: blank person_id")
            if raw["person_id"] in seen:
                raise ValueError(f"line {line}: duplicate person_id {raw['person_id']!r} (first on line "
                                 f"{seen[raw['person_id']]})")
            values = dict(raw, sex=sex, birth_date=_date(raw["birth_date"], line, "birth_date"))
            for name in ("moved_in", "moved_out"):
                if name in raw:
                    values[name] = _optional_date(raw[name], line, name)
            seen[raw["person_id"]] = line
            rows.append([values.get(c) or None for c in columns])
        except ValueError as exc:
            refused.append(str(exc))
    if refused:
        raise RegistryError(f"{Path(path).name}: {len(refused)} row(s) refused, nothing replaced: "
                            + "; ".join(refused[:10]))
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("truncate registry.residents")
        with cur.copy(f"copy registry.residents ({', '.join(columns)}) from stdin") as copy:
            for values in rows:
                copy.write_row(values)
        record(conn, who, "registry:load-extract", "registry/residents", role="registry", subject="all residents",
               reason=reason, detail={"source": Path(path).name, "rows": len(rows)})
    return len(rows)
