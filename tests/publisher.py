"""A real MQTT 5 publisher for tests that records which messages the broker acknowledged."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt

from cityos.platform.mqtt import BrokerAddress, new_client


class Publisher:
    """QoS 1 publisher; ``acked`` holds the keys of messages with a successful PUBACK."""

    def __init__(self, url: str, client_id: str = "", max_inflight: int = 1000, mqtt311: bool = False):
        self.address = BrokerAddress.parse(url)
        if mqtt311:  # MQTT 3.1.1: a PUBACK has no reason code, so a refused message looks acknowledged
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"v311-{time.time_ns()}",
                                      protocol=mqtt.MQTTv311)
            self.client.username_pw_set(self.address.username, self.address.password)
        else:
            self.client = new_client(self.address, client_id)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        self.connected = threading.Event()
        self.refused: str | None = None
        self.acked: set = set()
        self.denied: dict = {}
        self._pending: dict[int, object] = {}
        self._early: dict[int, object] = {}
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_publish = self._on_publish

    def _on_connect(self, _c, _u, _f, reason_code, _p) -> None:
        if getattr(reason_code, "is_failure", False):
            self.refused = str(reason_code)
        else:
            self.connected.set()

    def _on_publish(self, _c, _u, mid, reason_code, _p) -> None:
        with self._lock:
            key = self._pending.pop(mid, None)
            if key is None:  # the PUBACK beat publish() to registering the message
                self._early[mid] = reason_code
                return
            self._settle(key, reason_code)

    def _settle(self, key: object, reason_code) -> None:
        if getattr(reason_code, "is_failure", False):
            self.denied[key] = str(reason_code)
        else:
            self.acked.add(key)

    def __enter__(self) -> Publisher:
        self.client.connect(self.address.host, self.address.port, keepalive=10)
        self.client.loop_start()
        deadline = time.monotonic() + 5
        while not self.connected.is_set() and self.refused is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.refused:
            raise ConnectionRefusedError(self.refused)
        return self

    def __exit__(self, *exc) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes | str, key: object = None) -> None:
        """Publish with QoS 1; ``key`` (default: the payload) is recorded when acknowledged."""
        # Never hold our lock while calling paho: its network thread calls _on_publish under its own lock.
        info = self.client.publish(topic, payload, qos=1)
        key = payload if key is None else key
        with self._lock:
            if info.mid in self._early:
                self._settle(key, self._early.pop(info.mid))
            else:
                self._pending[info.mid] = key

    def wait_acked(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` messages were acknowledged or denied."""
        deadline = time.monotonic() + timeout
        while len(self.acked) + len(self.denied) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(self.acked) + len(self.denied) >= count


def publish_once(url: str, topic: str, payload: bytes | str) -> tuple[bool, str]:
    """Publish one QoS 1 message; (acknowledged, reason)."""
    with Publisher(url) as pub:
        pub.publish(topic, payload, key="m")
        pub.wait_acked(1, 5)
        if "m" in pub.acked:
            return True, "ok"
        return False, pub.denied.get("m", "no PUBACK")



class Stream:
    """Publishes ``count`` sequence-numbered messages at ``rate`` per second in the background (QoS 1);
    ``publisher.acked`` holds the sequence numbers the broker acknowledged."""

    def __init__(self, url: str, topic: str, payload, count: int, rate: float, mqtt311: bool = False):
        self.publisher = Publisher(url, client_id=f"stream-{time.monotonic_ns()}", mqtt311=mqtt311)
        self.topic, self.payload, self.count, self.rate = topic, payload, count, rate
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for seq in range(self.count):
            self.publisher.publish(self.topic, self.payload(seq), key=seq)
            time.sleep(1 / self.rate)

    def __enter__(self) -> Stream:
        self.publisher.__enter__()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.thread.join()
        self.publisher.wait_acked(self.count, timeout=60)
        self.publisher.__exit__()

    def progress(self, fraction: float, timeout: float = 60) -> None:
        """Wait until ``fraction`` of the stream has been acknowledged."""
        deadline = time.monotonic() + timeout
        while len(self.publisher.acked) < self.count * fraction:
            assert time.monotonic() < deadline, f"stream stalled at {len(self.publisher.acked)} acknowledged"
            time.sleep(0.05)


__all__ = ["Publisher", "Stream", "mqtt", "publish_once"]
