"""Where simulated vehicles drive: along the city's road network when the database holds one, else a grid."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import psycopg

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


#: A road segment's two ends, (lon, lat) each.
Segment = tuple[tuple[float, float], tuple[float, float]]

#: The road network as the GIS loaders store it (``gis.roads``): each line's two ends.
ROAD_ENDS_SQL = """
    select st_x(st_startpoint(geom)), st_y(st_startpoint(geom)), st_x(st_endpoint(geom)), st_y(st_endpoint(geom))
    from gis.roads order by road_id"""


def road_segments(conn: psycopg.Connection) -> list[Segment]:
    """The ends of every road the city's layers hold in the database (empty when none are loaded).

    The simulator reads the road network as data, from the table the GIS loaders fill: ingest never
    imports the GIS package (data flows one way).
    """
    return [((x1, y1), (x2, y2)) for x1, y1, x2, y2 in conn.execute(ROAD_ENDS_SQL)]


def road_routes(segments: Iterable[Segment]) -> Callable[[random.Random], Route]:
    """Routes that walk along the road network given by ``segments``, or on a grid when there are none."""
    ends: dict[tuple[float, float], list[tuple[float, float]]] = {}
    for start, end in segments:
        a, b = (round(start[0], 6), round(start[1], 6)), (round(end[0], 6), round(end[1], 6))
        ends.setdefault(a, []).append(b)
        ends.setdefault(b, []).append(a)
    if not ends:
        return grid_routes()
    nodes = sorted(ends)

    def route(rng: random.Random) -> Route:
        here = rng.choice(nodes)
        path = [here]
        for _ in range(rng.randint(10, 40)):
            here = rng.choice(ends[here])
            path.append(here)
        return path

    return route
