"""GNSS fixes from gpsd's JSON protocol (TPV reports) or NMEA 0183 sentences (RMC, GGA), and motion from them.

Pure functions: a :class:`Fix` per report or sentence; :class:`Motion` derives longitudinal
acceleration from successive speeds when the vehicle has no IMU, and tells a harsh brake.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

KNOT_KMH = 1.852
HARSH_BRAKE_MS2 = -3.5  # the platform's threshold (m/s², negative = braking)


@dataclass(frozen=True, slots=True)
class Fix:
    """One position: time (epoch s, from the receiver), lat, lon, speed km/h, heading, error estimate m."""

    t: float
    lat: float
    lon: float
    speed_kmh: float | None = None
    heading_deg: float | None = None
    error_m: float | None = None


def from_tpv(line: str | bytes) -> Fix | None:
    """A fix from one gpsd JSON line, if it is a TPV report with a 2D/3D fix (else None)."""
    try:
        report = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(report, dict) or report.get("class") != "TPV" or report.get("mode", 0) < 2:
        return None
    try:
        t = datetime.fromisoformat(str(report["time"]).replace("Z", "+00:00")).timestamp()
        lat, lon = float(report["lat"]), float(report["lon"])
    except (KeyError, TypeError, ValueError):
        return None
    speed = report.get("speed")  # m/s
    error = report.get("eph") or report.get("epx")
    return Fix(t, lat, lon, None if speed is None else float(speed) * 3.6,
               None if report.get("track") is None else float(report["track"]) % 360,
               None if error is None else float(error))


def nmea_checksum_ok(sentence: str) -> bool:
    """True if the sentence's ``*hh`` checksum matches (XOR of the characters between $ and *)."""
    if not sentence.startswith("$") or "*" not in sentence:
        return False
    body, _, given = sentence[1:].partition("*")
    value = 0
    for char in body:
        value ^= ord(char)
    return given[:2].upper() == f"{value:02X}"


def _degrees(value: str, hemisphere: str) -> float:
    head, minutes = value[:value.index(".") - 2], value[value.index(".") - 2:]
    degrees = int(head) + float(minutes) / 60
    return -degrees if hemisphere in ("S", "W") else degrees


def from_rmc(sentence: str) -> Fix | None:
    """A fix from an RMC sentence (any talker: GP, GN, GL...) with status A and a valid checksum."""
    sentence = sentence.strip()
    if not nmea_checksum_ok(sentence):
        return None
    fields = sentence[1:].split("*")[0].split(",")
    if len(fields) < 10 or not fields[0].endswith("RMC") or fields[2] != "A":
        return None
    try:
        hhmmss, ddmmyy = fields[1], fields[9]
        stamp = datetime(2000 + int(ddmmyy[4:6]), int(ddmmyy[2:4]), int(ddmmyy[0:2]), int(hhmmss[0:2]),
                         int(hhmmss[2:4]), int(hhmmss[4:6]), int(float("0" + hhmmss[6:]) * 1e6) if "." in hhmmss
                         else 0, tzinfo=UTC)
        return Fix(stamp.timestamp(), _degrees(fields[3], fields[4]), _degrees(fields[5], fields[6]),
                   float(fields[7]) * KNOT_KMH if fields[7] else None, float(fields[8]) if fields[8] else None)
    except (ValueError, IndexError):
        return None


def _time_of_day(hhmmss: str) -> tuple[int, int, int, int]:
    micro = round(float("0" + hhmmss[6:]) * 1e6) if "." in hhmmss else 0
    return int(hhmmss[0:2]), int(hhmmss[2:4]), int(hhmmss[4:6]), micro


@dataclass
class NmeaFixes:
    """Fixes from a stream of NMEA sentences, as gpsd reports them: one per epoch, from RMC (status A)
    or, when RMC is void or absent for that epoch, from GGA (fix quality > 0). GGA has no date: it takes
    the date of its epoch's RMC (valid or void), else of the last RMC; before any RMC it gives nothing.
    Call :meth:`flush` at the end of the input for the last epoch."""

    date: tuple[int, int, int] | None = None
    pending: list[str] | None = None  # the fields of a GGA with a fix, waiting for its epoch's RMC

    def feed(self, sentence: str) -> list[Fix]:
        """The fixes completed by this sentence (0, 1 or 2)."""
        sentence = sentence.strip()
        if not nmea_checksum_ok(sentence):
            return []
        fields = sentence[1:].split("*")[0].split(",")
        kind = fields[0][-3:]
        out: list[Fix] = []
        if kind == "RMC" and len(fields) >= 10:
            if self.pending is not None and self.pending[1] != fields[1]:
                out += self.flush()
            day = fields[9]
            if len(day) == 6 and day.isdigit():
                self.date = (2000 + int(day[4:6]), int(day[2:4]), int(day[0:2]))
            fix = from_rmc(sentence)
            if fix is not None:
                out.append(fix)
                self.pending = None
            else:
                out += self.flush()  # RMC void for this epoch: the GGA fix stands, dated by this RMC
            return out
        if kind == "GGA" and len(fields) >= 9:
            if self.pending is not None and self.pending[1] != fields[1]:
                out += self.flush()
            if fields[6].isdigit() and fields[6] != "0" and fields[2] and fields[4]:
                self.pending = fields
        return out

    def flush(self) -> list[Fix]:
        """The waiting GGA fix, if any (at the end of the input or of its epoch)."""
        fields, self.pending = self.pending, None
        if fields is None or self.date is None:
            return []
        try:
            stamp = datetime(*self.date, *_time_of_day(fields[1]), tzinfo=UTC)
            lat, lon = _degrees(fields[2], fields[3]), _degrees(fields[4], fields[5])
        except (ValueError, IndexError):
            return []
        if not (-90 < lat < 90 and -180 <= lon <= 180):
            return []
        return [Fix(stamp.timestamp(), lat, lon)]


@dataclass
class Motion:
    """Longitudinal acceleration from successive fixes (no IMU): ``a = Δv / Δt``."""

    last: Fix | None = None

    def update(self, fix: Fix) -> float | None:
        """m/s² since the previous fix (None for the first, a repeated time or a missing speed)."""
        previous, self.last = self.last, fix
        if previous is None or previous.speed_kmh is None or fix.speed_kmh is None:
            return None
        dt = fix.t - previous.t
        if dt <= 0 or dt > 5:
            return None
        return round((fix.speed_kmh - previous.speed_kmh) / 3.6 / dt, 3)
