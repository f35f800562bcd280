"""Reading tabular municipal files: UTF-8, UTF-8 with BOM or Shift_JIS (CP932), comment lines,
full-width digits."""

from __future__ import annotations

import csv
import io
import unicodedata
from pathlib import Path

import pandas as pd

ENCODINGS = ("utf-8-sig", "cp932")


def decode(raw: bytes) -> tuple[str, str]:
    """The text of ``raw`` and the encoding that read it (BOM-marked UTF-8, UTF-8, then CP932)."""
    for encoding in ENCODINGS:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise ValueError("the file is neither UTF-8 nor Shift_JIS (CP932)")


def read_table(path: Path | str) -> tuple[pd.DataFrame, str]:
    """A CSV or tab-separated file as strings, with its encoding.

    Lines starting with ``#`` before the header are skipped, except a ``#property`` row, which
    names the columns (the LinkData export style); cells are NFKC-normalised (full-width digits).
    """
    text, encoding = decode(Path(path).read_bytes())
    lines = text.splitlines()
    header_override = None
    body_start = 0
    for i, line in enumerate(lines):
        if line.startswith("#property"):
            header_override = line
        if not line.startswith("#"):
            body_start = i
            break
    body = "\n".join(lines[body_start:])
    dialect = "excel-tab" if body.split("\n", 1)[0].count("\t") > body.split("\n", 1)[0].count(",") else "excel"
    rows = list(csv.reader(io.StringIO(body), dialect=dialect))
    if not rows:
        return pd.DataFrame(), encoding
    header = rows[0]
    if header_override is not None:
        header = next(csv.reader([header_override], dialect=dialect))[1:]
        header = header[: len(rows[0])]
    width = len(header)
    data = [[normalise(c) for c in (r + [""] * width)[:width]] for r in rows[1:] if any(c.strip() for c in r)]
    return pd.DataFrame(data, columns=[normalise(h) for h in header]), encoding


def normalise(cell: str) -> str:
    """NFKC (full-width digits and letters to ASCII) and trimmed."""
    return unicodedata.normalize("NFKC", cell).strip()
