"""Large open-data answers encoded once per change of the data under them, not once per request.

The latest values of 10,000 sensors are about a megabyte of JSON: querying, encoding and compressing it
for every request made the route a hundred times slower than the HTTP stack. A :class:`Snapshots` keeps
each encoded answer (plain and gzip) until the data changes: migration 0018 has every statement that
changes the latest values, the latest positions or the device registry announce it on
:data:`CHANNEL`, and one listener thread per API process (its own connection: LISTEN needs a session)
counts the announcements. An answer built under an older count is built again on the next request, by
one thread while the others wait for it (no stampede).

An answer is also rebuilt after :data:`MAX_AGE_S` (its ``Cache-Control: max-age``) even without a change:
what a patrol car may show moves with the clock (:mod:`cityos.platform.vehicle_privacy`), and the answer
only ever shows less than it could, never more. While the listener is not listening (database outage, start
up) nothing is kept: every request builds its answer, as without snapshots.

The series route keeps its answers made wholly of rolled-up buckets the same way, on another channel
(:func:`cityos.platform.api.series_rows.series_answers`, migration 0020), with :meth:`Snapshots.kept` and
:meth:`Snapshots.put` (its async route waits for a builder itself).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from cityos.platform.api.responses import Encoded
from cityos.platform.db.listen import ChannelListener

CHANNEL = "cityos_latest_changed"
MAX_AGE_S = 5.0
MAX_ENTRIES = 64
MAX_BYTES = 64 * 1024 * 1024  # per API process; least recently used answers go first


class Snapshots(ChannelListener):
    """Encoded answers per key, valid while nothing announced a change on ``channel`` (default :data:`CHANNEL`)
    and for at most ``max_age_s``; at most ``max_entries`` answers and :data:`MAX_BYTES`."""

    def __init__(self, database_url: str, max_age_s: float = MAX_AGE_S, *, channel: str = CHANNEL,
                 name: str = "latest-snapshots", max_entries: int = MAX_ENTRIES):
        super().__init__(database_url, channel, name)
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self.generation = 0
        self.builds = 0  # answers built (for tests and diagnostics)
        self._entries: OrderedDict[Hashable, tuple[int, float, Encoded]] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def _fresh(self, key: Hashable) -> Encoded | None:
        entry = self._entries.get(key)
        if entry and entry[0] == self.generation and time.monotonic() - entry[1] < self.max_age_s:
            return entry[2]
        return None

    def get(self, key: Hashable, build: Callable[[], Encoded]) -> Encoded:
        """The answer for ``key``: the kept one if nothing changed since it was built, else ``build()``'s."""
        if not self.listening.is_set():
            return build()
        if (hit := self._fresh(key)) is not None:
            return hit
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if (hit := self._fresh(key)) is not None:
                return hit
            generation = self.generation  # read before building: a change meanwhile makes the entry stale
            value = build()
            self.builds += 1
            self.put(key, generation, value)
            return value

    def kept(self, key: Hashable) -> Encoded | None:
        """The answer kept for ``key`` if nothing changed since it was built (None while not listening)."""
        return self._fresh(key) if self.listening.is_set() else None

    def put(self, key: Hashable, generation: int, value: Encoded) -> None:
        """Keep ``value``, built from what the database held at :attr:`generation` ``generation`` (read
        before the first statement it was built from: a change announced meanwhile makes it stale at once)."""
        if not self.listening.is_set():
            return
        with self._guard:
            self._entries[key] = (generation, time.monotonic(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > 1 and (len(self._entries) > self.max_entries or self._bytes() > MAX_BYTES):
                old, _ = self._entries.popitem(last=False)
                self._locks.pop(old, None)

    def _bytes(self) -> int:
        return sum(len(e[2].body) + len(e[2].gzipped) for e in self._entries.values())

    def on_listen(self) -> None:
        self.generation += 1  # whatever changed while not listening

    def on_notify(self, payload: str) -> None:
        self.generation += 1
