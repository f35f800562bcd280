"""Home energy: daily load curves, solar generation by day, cumulative meters, batteries."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime

JST_OFFSET_H = 9


@dataclass
class Home:
    """One simulated household with its meter state."""

    device_id: str
    base_w: float
    peak_w: float
    solar_kw: float
    battery_kwh: float
    import_kwh: float = 0.0
    export_kwh: float = 0.0
    solar_kwh: float = 0.0
    soc: float = 50.0
    last: datetime | None = field(default=None)

    @classmethod
    def random(cls, device_id: str, rng: random.Random) -> Home:
        """A household drawn from plausible ranges (about a third with solar, a tenth with a battery)."""
        return cls(device_id=device_id, base_w=rng.uniform(150, 450), peak_w=rng.uniform(800, 2500),
                   solar_kw=rng.choice([0, 0, 3.5, 4.5, 5.5]) if rng.random() < 0.45 else 0.0,
                   battery_kwh=rng.choice([0.0, 6.5, 9.8]) if rng.random() < 0.15 else 0.0,
                   import_kwh=rng.uniform(1000, 20000))


def local_hour(t: datetime) -> float:
    """Hour of day in Japan Standard Time."""
    return (t.hour + t.minute / 60 + t.second / 3600 + JST_OFFSET_H) % 24


def load_w(home: Home, t: datetime, rng: random.Random) -> float:
    """Household consumption: base load plus morning and evening peaks, with noise."""
    h = local_hour(t)
    morning = math.exp(-((h - 7.0) ** 2) / 1.5)
    evening = math.exp(-((h - 19.5) ** 2) / 4.0)
    winter_heating = 1.3 if t.month in (12, 1, 2) else 1.0
    return max(50.0, (home.base_w + home.peak_w * (0.6 * morning + evening)) * winter_heating * rng.uniform(0.85, 1.15))


def solar_w(home: Home, t: datetime, rng: random.Random) -> float:
    """Solar generation: a daylight bell between about 6:00 and 18:00, dimmed by cloud."""
    if home.solar_kw <= 0:
        return 0.0
    h = local_hour(t)
    daylight = max(0.0, math.sin(math.pi * (h - 6) / 12)) if 6 <= h <= 18 else 0.0
    winter = 0.6 if t.month in (11, 12, 1, 2) else 1.0
    return home.solar_kw * 1000 * daylight * winter * rng.uniform(0.3, 1.0)


def reading(home: Home, t: datetime, rng: random.Random) -> dict:
    """The next reading of ``home`` at ``t`` (meters integrate since the previous reading)."""
    consumption = load_w(home, t, rng)
    generation = solar_w(home, t, rng)
    net = consumption - generation
    hours = (t - home.last).total_seconds() / 3600 if home.last else 0.0
    if home.battery_kwh:
        flow = max(-2000.0, min(2000.0, -net))  # charge from surplus, discharge into load
        flow = min(flow, (100 - home.soc) / 100 * home.battery_kwh * 1000 / max(hours, 1e-9)) if flow > 0 else \
            max(flow, -home.soc / 100 * home.battery_kwh * 1000 / max(hours, 1e-9))
        home.soc = min(100.0, max(0.0, home.soc + flow * hours / (home.battery_kwh * 10)))
        net += flow
    if net >= 0:
        home.import_kwh += net * hours / 1000
    else:
        home.export_kwh += -net * hours / 1000
    home.solar_kwh += generation * hours / 1000
    home.last = t
    out = {"t": t.isoformat(), "power_w": round(net, 1), "import_kwh": round(home.import_kwh, 3),
           "export_kwh": round(home.export_kwh, 3)}
    if home.solar_kw:
        out |= {"solar_w": round(generation, 1), "solar_kwh": round(home.solar_kwh, 3)}
    if home.battery_kwh:
        out["battery_soc_pct"] = round(home.soc, 1)
    return out
