"""A thread that LISTENs on one PostgreSQL channel, over a connection of its own, and survives outages.

LISTEN needs a session for as long as the listener runs, so its connection is dedicated, not pooled.
After a database outage it reconnects with back-off (0.5 s doubling to 10 s); notifications sent meanwhile
are lost, which :meth:`ChannelListener.on_listen` (called each time listening starts) lets a subclass make
up for. Subclasses: :class:`cityos.platform.public_positions.PositionListener`,
:class:`cityos.platform.api.snapshots.Snapshots`.
"""

from __future__ import annotations

import logging
import threading

import psycopg

from cityos.platform.db.connection import dedicated

log = logging.getLogger(__name__)


class ChannelListener:
    """Calls :meth:`on_notify` with the payload of each notification on ``channel``."""

    def __init__(self, database_url: str, channel: str, name: str):
        self.database_url = database_url
        self.channel = channel
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def on_listen(self) -> None:
        """Called each time listening (re)starts: whatever was announced while not listening is lost."""

    def on_notify(self, payload: str) -> None:
        """Called for each notification, in the listener's thread."""

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _listen(self) -> None:
        with dedicated(self.database_url, autocommit=True, timeout=5, application_name=self._thread.name) as conn:
            conn.execute(f"listen {self.channel}")
            self.on_listen()
            self.listening.set()
            while not self._stop.is_set():
                for notification in conn.notifies(timeout=0.5):
                    self.on_notify(notification.payload)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:
                if self.listening.is_set():  # was listening: a new outage
                    backoff = 0.5
                log.warning("%s: database unavailable, retrying", self._thread.name,
                            extra={"error": str(exc).strip()[:200], "retry_s": backoff})
                self.listening.clear()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception:
                log.exception("%s: listener failed, restarting", self._thread.name)
                self.listening.clear()
                self._stop.wait(1.0)
