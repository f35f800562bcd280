"""The SensorThings MQTT extension for public devices: ``v1.1/Datastreams('id')/Observations`` and
``v1.1/Things('id')/Locations``, readable by the broker's ``public`` account.

Messages come from committed rows only, never from devices' raw messages: the feed reads the newest
validated reading of every public environment sensor (``telemetry.latest_values``, kept by the ingest writer
in the same transaction as the readings), the newest position of every public snowplow and bus
(``telemetry.latest_positions``: their speed and heading as Observations), and every public vehicle's
Location as the open routes show it (:data:`~cityos.platform.vehicle_privacy.PUBLIC_POSITIONS`: patrol cars
15 minutes late). It polls every ``interval_s`` (0.2 s) and publishes what is new, as the same JSON the
REST API gives (with links under the configured base URL). Run by ``cityos ingest`` beside the public feed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from cityos.platform.db.connection import dedicated
from cityos.platform.mqtt import feed_client
from cityos.platform.vehicle_privacy import PUBLIC_POSITIONS, REALTIME_KINDS
from cityos.sta.entities import ENTITY_SETS, Context
from cityos.sta.read import Reader, quote_id

log = logging.getLogger(__name__)
ROOT = "v1.1"
#: The topics of the extension (each an exit declared in :mod:`cityos.platform.exits`).
TOPICS = (f"{ROOT}/Datastreams({{id}})/Observations", f"{ROOT}/Things({{id}})/Locations")
#: Readings older than this are not announced (a feed that starts late does not replay the past).
RECENT = "interval '10 minutes'"

_REALTIME = ", ".join(f"'{kind}'" for kind in REALTIME_KINDS)
NEW_OBSERVATIONS = f"""
    select lv.device_id, lv.metric, lv.time, lv.value from telemetry.latest_values lv
    join core.devices d using (device_id)
    where d.public and d.revoked_at is null and d.domain = 'env' and lv.time > now() - {RECENT}
    union all
    select p.device_id, x.metric, p.time, x.value from telemetry.latest_positions p
    join core.devices d using (device_id)
    cross join lateral (values ('speed_kmh', p.speed_kmh::float8), ('heading_deg', p.heading_deg::float8))
        x(metric, value)
    where d.public and d.revoked_at is null and d.domain = 'vehicle' and d.kind in ({_REALTIME})
      and x.value is not null and p.time > now() - {RECENT}"""
NEW_LOCATIONS = f"""
    select p.device_id, p.time, st_asgeojson(p.geom)::json as location,
           coalesce(nullif(d.display_name, ''), d.device_id) || ' position' as name
    from {PUBLIC_POSITIONS} p join core.devices d using (device_id)
    where d.public and d.revoked_at is null and d.domain = 'vehicle'
      and p.time > now() - {RECENT} - interval '15 minutes'"""


def observation_topic(device_id: str, metric: str) -> str:
    return f"{ROOT}/Datastreams({quote_id(f'{device_id}:{metric}')})/Observations"


def location_topic(device_id: str) -> str:
    return f"{ROOT}/Things({quote_id(device_id)})/Locations"


class StaFeed:
    """Publishes new committed observations and locations of public devices into the ``v1.1/`` tree."""

    def __init__(self, database_url: str, mqtt_url: str, base_url: str, *, interval_s: float = 0.2,
                 client_id: str = ""):
        self.database_url, self.base_url, self.interval_s = database_url, base_url, interval_s
        self._seen: dict[tuple, datetime] = {}
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.client = feed_client(mqtt_url, client_id or f"cityos-sta-feed-{uuid.uuid4().hex[:8]}")

    def _new(self, key: tuple, at: datetime) -> bool:
        if self._seen.get(key) == at:
            return False
        self._seen[key] = at
        return True

    def poll(self, conn: psycopg.Connection) -> int:
        """Publish what is new since the last poll; how many messages."""
        reader = Reader(None, Context(staff=False), self.base_url)  # renders only
        observations, locations = ENTITY_SETS["Observations"], ENTITY_SETS["Locations"]
        sent = 0
        with conn.cursor(row_factory=dict_row) as cur:
            for row in cur.execute(NEW_OBSERVATIONS).fetchall():
                if not self._new(("o", row["device_id"], row["metric"]), row["time"]):
                    continue
                micros = int(row["time"].timestamp() * 1_000_000)
                entity = {"id": f"{row['device_id']}:{row['metric']}:{micros}", "phenomenonTime": row["time"],
                          "resultTime": row["time"], "result": row["value"], "device_id": row["device_id"],
                          "metric": row["metric"]}
                self.client.publish(observation_topic(row["device_id"], row["metric"]),
                                    json.dumps(reader.render(observations, entity)), qos=0)
                sent += 1
            for row in cur.execute(NEW_LOCATIONS).fetchall():
                if not self._new(("l", row["device_id"]), row["time"]):
                    continue
                entity = {"id": row["device_id"], "name": row["name"], "encodingType": "application/geo+json",
                          "description": "where the vehicle is (or was, for vehicles shown with a delay)",
                          "location": row["location"], "device_id": row["device_id"]}
                self.client.publish(location_topic(row["device_id"]),
                                    json.dumps(reader.render(locations, entity)), qos=0, retain=True)
                sent += 1
        return sent

    def run(self) -> None:
        """Until :meth:`stop`: poll and publish (reconnecting to the database after a failure)."""
        self.client.loop_start()
        try:
            while not self._stop.is_set():
                try:
                    with dedicated(self.database_url, autocommit=True, timeout=3) as conn:  # held while polling
                        self.poll(conn)
                        self.ready.set()
                        while not self._stop.is_set():
                            self.poll(conn)
                            time.sleep(self.interval_s)
                except psycopg.Error:
                    log.exception("SensorThings feed: database unavailable; retrying")
                    time.sleep(1)
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def stop(self) -> None:
        self._stop.set()
