"""The public, read-only MQTT tree for citizen developers: ``cityos/public/v1/...``.

A republisher (run by ``cityos ingest`` beside the workers) publishes public streams, throttled, as
retained messages (a new subscriber gets the latest at once):

- ``cityos/public/v1/snowplows/{device_id}``: a public snowplow's position, at most one message per
  vehicle every ``min_interval_s`` (1 s). Positions come from the database once ingest has committed
  them (:class:`~cityos.platform.public_positions.PositionListener`), never from the device's raw
  message: only validated readings, in the normalised form every public exit shares. A position that
  arrives inside a vehicle's interval is held and published when the interval ends (only the newest
  is kept), so the retained message is the vehicle's latest position, at most a second late.
- ``cityos/public/v1/energy/districts``: household power per district and for the city (opted-in
  homes, blank below k), every ``energy_interval_s`` (60 s).

Developers connect as user ``public`` with password ``public``: the broker's ACL lets that account
(like every account) read ``cityos/public/#`` and nothing else, and write nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

from cityos.platform.exits import MQTT_ENERGY
from cityos.platform.mqtt import feed_client
from cityos.platform.public_data import energy_now
from cityos.platform.public_positions import PositionListener

log = logging.getLogger(__name__)
ROOT = "cityos/public/v1"
#: The topics of the public tree (each an exit declared in :mod:`cityos.platform.exits`).
TOPICS = (f"{ROOT}/snowplows/{{device_id}}", f"{ROOT}/energy/districts")
TICK_S = 0.1


class PublicFeed:
    """Publishes committed public positions and the energy aggregate into the public tree."""

    def __init__(self, database_url: str, mqtt_url: str, k: int, *, min_interval_s: float = 1.0,
                 energy_interval_s: float = 60.0, client_id: str = ""):
        self.database_url, self.k = database_url, k
        self.min_interval_s, self.energy_interval_s = min_interval_s, energy_interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # One id per ingest instance (cityos.ingest.sessions.public_feed_client_id); a fixed id shared by
        # several `cityos ingest` processes made them knock each other off the broker.
        self.client = feed_client(mqtt_url, client_id or f"cityos-public-feed-{uuid.uuid4().hex[:8]}")
        self.positions = PositionListener(database_url, self._on_position, "public-feed-positions")

    def _publish_position(self, event: dict, now: float) -> None:
        self._last[event["device_id"]] = now
        self.client.publish(f"{ROOT}/snowplows/{event['device_id']}", json.dumps(event), qos=0, retain=True)

    def _on_position(self, event: dict) -> None:
        """A committed position (listener thread): publish now, or hold it until the vehicle's interval ends."""
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(event["device_id"], -1e9) >= self.min_interval_s:
                self._held.pop(event["device_id"], None)
                self._publish_position(event, now)
            else:
                self._held[event["device_id"]] = event

    def publish_held(self) -> None:
        """Publish each held position whose vehicle's interval has ended."""
        now = time.monotonic()
        with self._lock:
            for device_id, event in list(self._held.items()):
                if now - self._last.get(device_id, -1e9) >= self.min_interval_s:
                    del self._held[device_id]
                    self._publish_position(event, now)

    def publish_energy(self) -> None:
        """Publish the current energy aggregate (retained)."""
        self.client.publish(MQTT_ENERGY.removeprefix("mqtt:"),
                            json.dumps(energy_now(self.database_url, self.k, MQTT_ENERGY)), qos=0, retain=True)

    def run(self) -> None:
        """Until :meth:`stop`: republish snowplows as they are committed, energy every ``energy_interval_s``."""
        self.client.loop_start()
        self.positions.start()
        next_energy = time.monotonic()
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_energy:
                    try:
                        self.publish_energy()
                    except Exception:
                        log.exception("public feed: energy aggregate failed")
                    next_energy = time.monotonic() + self.energy_interval_s
                self.publish_held()
                time.sleep(TICK_S)  # (not Event.wait: it hangs under libfaketime, see test_time_windows)
        finally:
            self.positions.stop()
            self.client.disconnect()
            self.client.loop_stop()

    def stop(self) -> None:
        self._stop.set()
