"""A session of ``stapy`` (0.3.1, from PyPI) reading cityos's SensorThings service: run in the client's own
virtual environment (it pins requests 2.28.1 and setuptools 65, which clash with the platform's) and in a
scratch working folder (stapy keeps its service URL in ``.stapy.ini`` there); prints what it read as one
JSON object.

Usage: python stapy_session.py STA_URL PLOW SENSOR START END   (START/END: ISO 8601 instants, UTC, ``Z``)
"""

from __future__ import annotations

import json
import sys

from stapy import Entity, Query, set_sta_url
from stapy.sta.query import Expand


def _listed(values) -> list:
    """stapy hands back a bare value instead of a one-element list; make it a list again."""
    return values if isinstance(values, list) else [values]


def main(url: str, plow: str, sensor: str, start: str, end: str) -> dict:
    set_sta_url(url)
    seen: dict = {}
    # Things with a filter, two a page: stapy follows @iot.nextLink until the collection ends
    ids, names = Query(Entity.Thing).select("@iot.id", "name").filter("startswith(id, 'sta-')") \
        .order("id").limit(2).get_data_sets()
    seen["things"] = dict(zip(_listed(ids), _listed(names), strict=True))
    # Datastreams of one Thing with their Thing expanded
    streams = Query(Entity.Datastream).filter(f"Thing/id eq '{plow}'") \
        .expand(Expand(Entity.Thing).select(["name"]).get_expand()) \
        .select("@iot.id", "unitOfMeasurement.symbol", "Thing.name").order("id").get_data_sets()
    seen["datastreams"] = [list(row) for row in zip(*map(_listed, streams), strict=True)]
    # a Thing with a nested expand: its speed Datastream (filtered) and that one's first three Observations
    nested = Expand(Entity.Datastream).filter("ObservedProperty/id eq 'speed_kmh'") \
        .expand(Expand(Entity.Observation).select(["result"]).limit(3).get_expand()).get_expand()
    seen["nested"] = Query(Entity.Thing).entity_id(f"'{plow}'").expand(nested).select("Datastreams") \
        .get_data_sets()
    # a period of Observations of each Datastream, filtered on phenomenonTime, 20 a page
    period = f"phenomenonTime ge {start} and phenomenonTime lt {end}"
    for name, stream in (("speeds", f"{plow}:speed_kmh"), ("moisture", f"{sensor}:soil_moisture")):
        times, results = Query(Entity.Datastream).entity_id(f"'{stream}'").sub_entity(Entity.Observation) \
            .select("phenomenonTime", "result").filter(period).order("phenomenonTime").limit(20).get_data_sets()
        seen[name] = [list(row) for row in zip(_listed(times), _listed(results), strict=True)]
    return seen


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:6]), ensure_ascii=False))
