"""The one tabular reader every loader uses: municipal CSV/TSV files as they are really published.

Handles UTF-8, UTF-8 with BOM and Shift_JIS (CP932) (the encoding found is reported), comma, tab
or semicolon separators, quoted fields with stray spaces, NUL bytes, blank lines, ``#`` comment
lines before the header (``#Source : ...``), and LinkData exports: ``#`` metadata rows (``#LINK``,
``#license``, ``#attribution_name``, ...) where the column names are only in the ``#property`` row
(whose first cell stands for the row subject) and ``#object_type_xsd`` / ``#property_context`` are
not the header. Cells are NFKC-normalised (full-width digits and letters to ASCII) and trimmed.
Every data row keeps its line number in the file, so loaders can refuse rows by line.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

#: Encodings tried in order, with the name reported for each.
ENCODINGS = (("utf-8", "UTF-8"), ("cp932", "CP932 (Shift_JIS)"))
#: LinkData metadata rows that are never the header.
LINKDATA_META = ("#link", "#lang", "#attribution_name", "#attribution_url", "#license", "#file_name",
                 "#download_from", "#object_type_xsd", "#property_context", "#property_uri", "#source")
SUBJECT_COLUMN = "subject"
csv.field_size_limit(10_000_000)


class TableError(ValueError):
    """The file cannot be read as a table at all (the message says why)."""


@dataclass
class Table:
    """A file's rows as strings, each with its line number, and what the reader found."""

    columns: list[str]
    rows: list[tuple[int, list[str]]]
    encoding: str
    delimiter: str = ","
    metadata: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def records(self) -> list[tuple[int, dict[str, str]]]:
        """``(line, {column: cell})`` for every data row."""
        return [(line, dict(zip(self.columns, cells, strict=True))) for line, cells in self.rows]


def normalise(cell: str) -> str:
    """NFKC (full-width digits and letters to ASCII) and trimmed."""
    return unicodedata.normalize("NFKC", cell).strip()


def decode(raw: bytes) -> tuple[str, str]:
    """The text of ``raw`` and the name of the encoding that read it."""
    if raw.startswith(b"\xef\xbb\xbf"):
        try:
            return raw[3:].decode("utf-8"), "UTF-8 with BOM"
        except UnicodeDecodeError as exc:
            raise TableError(f"starts with a UTF-8 BOM but byte {exc.start + 3} is not UTF-8") from None
    for encoding, name in ENCODINGS:
        try:
            return raw.decode(encoding), name
        except UnicodeDecodeError:
            continue
    raise TableError("the file is neither UTF-8 nor Shift_JIS (CP932) text")


def _delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in ("\t", ",", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _split(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter, skipinitialspace=True), [])


def read_table(source: Path | str | bytes) -> Table:
    """Read a CSV/TSV file (a path or its bytes) into a :class:`Table`; :class:`TableError` if impossible."""
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    text, encoding = decode(raw)
    notes: list[str] = []
    if "\x00" in text:
        text = text.replace("\x00", "")
        notes.append("NUL bytes removed")
    lines = text.splitlines()
    metadata: dict[str, str] = {}
    header: list[str] | None = None
    delimiter = ","
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].lstrip("\ufeff").startswith("#")):
        line = lines[start].lstrip("\ufeff")
        start += 1
        if not line.strip():
            continue
        cells = _split(line, _delimiter(line))
        key = normalise(cells[0]).lower() if cells else ""
        if key == "#property":
            delimiter = _delimiter(line)
            header = [SUBJECT_COLUMN] + [normalise(c) for c in cells[1:]]
            notes.append("LinkData file: column names from the #property row")
        elif key.startswith(LINKDATA_META) or len(cells) > 1:
            metadata[key.lstrip("#").split(":")[0].strip()] = normalise(" ".join(cells[1:]) or line.split(":", 1)[-1])
        else:
            metadata.setdefault("comment", normalise(line.lstrip("#")))
    body = "\n".join(lines[start:])
    if header is None:
        first = next((ln for ln in lines[start:] if ln.strip()), "")
        delimiter = _delimiter(first)
    reader = csv.reader(io.StringIO(body), delimiter=delimiter, skipinitialspace=True)
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            line_no = start + reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [normalise(c) for c in cells]
                continue
            rows.append((line_no, [normalise(c) for c in cells]))
    except csv.Error as exc:
        raise TableError(f"line {start + reader.line_num}: {exc}") from None
    if header is None:
        raise TableError("the file has no header row and no rows")
    width = max([len(header)] + [len(cells) for _, cells in rows])
    columns = _unique([h or f"column{i + 1}" for i, h in enumerate(header + [""] * (width - len(header)))])
    padded = [(line, (cells + [""] * width)[:width]) for line, cells in rows]
    return Table(columns, padded, encoding, delimiter, metadata, notes)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}.{seen[name]}")
    return out


def read_frame(path: Path | str) -> tuple[pd.DataFrame, str]:
    """The table as a DataFrame of strings (with a ``_line`` column) and its encoding."""
    table = read_table(path)
    frame = pd.DataFrame([cells for _, cells in table.rows], columns=table.columns, dtype=object)
    frame["_line"] = [line for line, _ in table.rows]
    return frame, table.encoding
