"""Snowplows and patrol cars driving along the city's roads, with realistic acceleration."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

EARTH_M = 6_371_000.0
HARSH_BRAKE_MS2 = -3.5

Route = Sequence[tuple[float, float]]  # (lon, lat) vertices


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lon, lat) points in metres."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_M * math.asin(math.sqrt(h))


def bearing_deg(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Initial bearing from a to b, degrees clockwise from north."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    y = math.sin(lon2 - lon1) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    return (math.degrees(math.atan2(y, x)) + 360) % 360


@dataclass
class Vehicle:
    """A vehicle following routes; ``next_route`` supplies a new route when one ends."""

    device_id: str
    role: str  # snowplow | patrol_car
    next_route: Callable[[random.Random], Route]
    interval_s: float
    cruise_kmh: float
    route: list[tuple[float, float]] = field(default_factory=list)
    leg: int = 0
    along_m: float = 0.0
    speed_ms: float = 0.0
    blade_down: bool = False

    def _position(self) -> tuple[tuple[float, float], float]:
        a, b = self.route[self.leg], self.route[self.leg + 1]
        length = max(distance_m(a, b), 1e-6)
        f = min(1.0, self.along_m / length)
        return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f), bearing_deg(a, b)

    def step(self, t: datetime, rng: random.Random) -> dict:
        """Advance by ``interval_s`` and return the position reading at ``t``."""
        if len(self.route) < 2 or self.leg >= len(self.route) - 1:
            self.route, self.leg, self.along_m = list(self.next_route(rng)), 0, 0.0
            if self.role == "snowplow":
                self.blade_down = rng.random() < 0.7
        target = self.cruise_kmh / 3.6 * rng.uniform(0.6, 1.1)
        if rng.random() < 0.03:  # a harsh brake: a pedestrian, an icy junction
            accel = rng.uniform(-6.5, -3.6)
        else:
            accel = max(-2.5, min(1.5, (target - self.speed_ms) / self.interval_s)) + rng.gauss(0, 0.2)
        self.speed_ms = max(0.0, self.speed_ms + accel * self.interval_s)
        self.along_m += self.speed_ms * self.interval_s
        while self.leg < len(self.route) - 1:
            seg = distance_m(self.route[self.leg], self.route[self.leg + 1])
            if self.along_m <= seg:
                break
            self.along_m -= seg
            self.leg += 1
        if self.leg >= len(self.route) - 1:
            self.leg, self.along_m = len(self.route) - 2, distance_m(self.route[-2], self.route[-1])
        (lon, lat), heading = self._position()
        out = {"t": t.isoformat(), "lat": round(lat, 7), "lon": round(lon, 7),
               "speed_kmh": round(self.speed_ms * 3.6, 1),
               "heading_deg": round(heading, 1), "gps_error_m": round(rng.uniform(2, 8), 1),
               "accel_long": round(accel, 2), "accel_trans": round(rng.gauss(0, 0.4), 2),
               "accel_vert": round(rng.gauss(0, 0.3), 2), "role": self.role}
        if self.role == "snowplow":
            out["blade_down"] = self.blade_down
        return out
