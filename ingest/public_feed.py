"""The public, read-only MQTT tree for citizen developers: ``cityos/public/v1/...``.

A republisher (run by ``cityos ingest`` beside the workers) takes only public streams and
republishes them, throttled, as retained messages (a new subscriber gets the latest at once):

- ``cityos/public/v1/snowplows/{device_id}``: a public snowplow's position, at most one message per
  vehicle every ``min_interval_s`` (1 s);
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

from cityos.platform.mqtt import BrokerAddress, new_client
from cityos.platform.public_data import energy_now, position_event, public_snowplows

log = logging.getLogger(__name__)
ROOT = "cityos/public/v1"
REFRESH_S = 10.0


class PublicFeed:
    """Republishes public streams from the platform's tree into the public tree."""

    def __init__(self, database_url: str, mqtt_url: str, k: int, *, min_interval_s: float = 1.0,
                 energy_interval_s: float = 60.0):
        self.database_url, self.k = database_url, k
        self.min_interval_s, self.energy_interval_s = min_interval_s, energy_interval_s
        self._public: set[str] = set()
        self._loaded = 0.0
        self._last: dict[str, float] = {}
        self._stop = threading.Event()
        address = BrokerAddress.parse(mqtt_url)
        self.client = new_client(address, "cityos-public-feed")
        self.client.on_connect = lambda c, *a: c.subscribe("cityos/v1/vehicle/+/readings", qos=0)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 10)
        self.client.connect_async(address.host, address.port, keepalive=30)

    def _snowplows(self) -> set[str]:
        if time.monotonic() - self._loaded > REFRESH_S:
            try:
                self._public = public_snowplows(self.database_url)
            except Exception:
                log.warning("public feed cannot refresh the device list")
            self._loaded = time.monotonic()
        return self._public

    def _on_message(self, _c, _u, msg) -> None:
        device_id = msg.topic.split("/")[3]
        now = time.monotonic()
        if device_id not in self._snowplows() or now - self._last.get(device_id, -1e9) < self.min_interval_s:
            return
        if (event := position_event(device_id, msg.payload)) is not None:
            self._last[device_id] = now
            self.client.publish(f"{ROOT}/snowplows/{device_id}", json.dumps(event), qos=0, retain=True)

    def publish_energy(self) -> None:
        """Publish the current energy aggregate (retained)."""
        self.client.publish(f"{ROOT}/energy/districts", json.dumps(energy_now(self.database_url, self.k)),
                            qos=0, retain=True)

    def run(self) -> None:
        """Until :meth:`stop`: republish snowplows as they come, energy every ``energy_interval_s``."""
        self.client.loop_start()
        try:
            while not self._stop.is_set():
                try:
                    self.publish_energy()
                except Exception:
                    log.exception("public feed: energy aggregate failed")
                self._stop.wait(self.energy_interval_s)
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def stop(self) -> None:
        self._stop.set()
