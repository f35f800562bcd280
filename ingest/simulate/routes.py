"""Where simulated vehicles drive: along the demo city's road network when it is available."""

from __future__ import annotations

import random
from collections.abc import Callable

from cityos.ingest.simulate.vehicles import Route

CENTRE = (139.9297, 37.4947)  # Aizuwakamatsu city hall (lon, lat)


def grid_routes(step_deg: float = 0.003, size: int = 12) -> Callable[[random.Random], Route]:
    """Routes along a regular street grid around the centre (used when no road network is loaded)."""

    def route(rng: random.Random) -> Route:
        x, y = rng.randrange(size), rng.randrange(size)
        points = []
        for _ in range(rng.randint(8, 20)):
            points.append((CENTRE[0] + (x - size / 2) * step_deg, CENTRE[1] + (y - size / 2) * step_deg))
            if rng.random() < 0.5:
                x = min(size - 1, max(0, x + rng.choice((-1, 1))))
            else:
                y = min(size - 1, max(0, y + rng.choice((-1, 1))))
        return points

    return route


def road_routes() -> Callable[[random.Random], Route]:
    """Routes on the demo city's roads, or on a grid when the GIS extras are not installed."""
    try:
        from cityos.gis.democity import road_route_source
    except ImportError:
        return grid_routes()
    return road_route_source()
