"""One date reader for every loader and the registry's change file.

Reads ISO and slashed dates (``2012/01/25``, ``2012/01/25 0:00:00``, ``2013.9.18``, ``20240401``,
``2012年1月25日``), ``M/D/YYYY`` (Excel's US export), 和暦 (``R5.4.1``, ``H27.10.30``, ``S50/1/1``,
``令和5年4月1日``, ``平成元年``-style 元年) and Excel serial day numbers (``45017``). Excel's zero
date (``1899/12/30``, serial 0) and blank cells mean "unknown" and read as ``None``; anything else
that is not a date raises :class:`DateError` with the reason.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta

EXCEL_EPOCH = date(1899, 12, 30)
#: era -> (first year in the Gregorian calendar, first day of the era)
ERAS: dict[str, tuple[int, date]] = {
    "M": (1868, date(1868, 1, 25)), "T": (1912, date(1912, 7, 30)), "S": (1926, date(1926, 12, 25)),
    "H": (1989, date(1989, 1, 8)), "R": (2019, date(2019, 5, 1)),
}
ERA_NAMES = {"明治": "M", "大正": "T", "昭和": "S", "平成": "H", "令和": "R"}
_WAREKI = re.compile(r"^(?P<era>[MTSHR])\s*(?P<y>\d{1,2}|元)[.\-/年](?P<m>\d{1,2})[.\-/月](?P<d>\d{1,2})日?$")
_YMD = re.compile(r"^(?P<y>\d{4})[.\-/年](?P<m>\d{1,2})[.\-/月](?P<d>\d{1,2})日?$")
_MDY = re.compile(r"^(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})$")
_TIME = re.compile(r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?$")
# Serials from 1 (1900-01-01) to 2958465 (9999-12-31); below 10000 only plain integers are taken.
_SERIAL = re.compile(r"^\d{1,7}(\.\d+)?$")


class DateError(ValueError):
    """A cell that should be a date is not one."""


def parse_date(value: object) -> date | None:
    """The date in ``value``, ``None`` when blank or Excel's zero date; :class:`DateError` otherwise."""
    if value is None:
        return None
    if isinstance(value, date):
        return value
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if not text or text.lower() in ("nan", "none", "null", "-", "不明"):
        return None
    for name, letter in ERA_NAMES.items():
        text = text.replace(name, letter)
    text = _TIME.sub("", text).strip()
    if _SERIAL.match(text) and not re.fullmatch(r"\d{8}", text):
        return _serial(text)
    if re.fullmatch(r"\d{8}", text):
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    if m := _WAREKI.match(text.upper()):
        first_year, start = ERAS[m["era"]]
        year = first_year + (0 if m["y"] == "元" else int(m["y"]) - 1)
        day = _make(year, m["m"], m["d"], value)
        if day < start:
            raise DateError(f"{value!r}: {m['era']}{m['y']} starts on {start.isoformat()}")
        return day
    if (m := _YMD.match(text)) or (m := _MDY.match(text)):
        day = _make(int(m["y"]), m["m"], m["d"], value)
    else:
        raise DateError(f"{value!r} is not a date (YYYY-MM-DD, 和暦 R5.4.1, M/D/YYYY or an Excel serial)")
    return None if day == EXCEL_EPOCH else day


def _make(year: int, month: str, day: str, original: object) -> date:
    try:
        return date(year, int(month), int(day))
    except ValueError:
        raise DateError(f"{original!r} is not a date (no such day)") from None


def _serial(text: str) -> date | None:
    days = int(float(text))
    if days == 0:
        return None
    if days > 2_958_465:
        raise DateError(f"{text!r} is too large to be an Excel serial date")
    return EXCEL_EPOCH + timedelta(days=days)


def describe(value: object) -> str:
    """How a date cell reads, for reports: ISO, 'unknown', or the error."""
    try:
        day = parse_date(value)
    except DateError as exc:
        return str(exc)
    return day.isoformat() if day else "unknown"
