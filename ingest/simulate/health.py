"""Wearables of opted-in residents: heart rate, steps, sleep stages, pill-box events."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from cityos.ingest.simulate.hems import local_hour


@dataclass
class Wearer:
    """One opted-in resident's wearable."""

    device_id: str
    resting_bpm: float
    pill_hours: tuple[int, ...] = (8, 20)

    @classmethod
    def random(cls, device_id: str, rng: random.Random) -> Wearer:
        return cls(device_id, rng.uniform(55, 80), rng.choice([(8,), (8, 20), (7, 12, 19)]))


def reading(w: Wearer, t: datetime, interval_s: float, rng: random.Random) -> dict:
    """A reading at ``t``: asleep at night (with a sleep stage), active by day."""
    h = local_hour(t)
    asleep = h >= 22.5 or h < 6.5
    out: dict = {"t": t.isoformat()}
    if asleep:
        out["heart_rate_bpm"] = round(w.resting_bpm * rng.uniform(0.85, 0.95))
        out["sleep_stage"] = rng.choices(["light", "deep", "rem", "awake"], [50, 20, 22, 8])[0]
    else:
        active = rng.random() < 0.3
        out["heart_rate_bpm"] = round(w.resting_bpm * (rng.uniform(1.2, 1.6) if active else rng.uniform(1.0, 1.15)))
        per_minute = rng.uniform(40, 110) if active else rng.uniform(0, 8)
        out["steps"] = int(per_minute * interval_s / 60)
    if int(h) in w.pill_hours and (h % 1) * 3600 < interval_s:
        out["pillbox_open"] = 1
    return out
