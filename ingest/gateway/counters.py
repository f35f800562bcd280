"""Named event counters (readings enqueued, sent, dropped ...), kept in memory and saved periodically.

Counting happens on hot paths (every reading), so increments touch only memory; the gateway saves the
totals to the outbox database every few seconds and on shutdown. A kill -9 can therefore lose the
last few seconds of increments, never the readings themselves.
"""

from __future__ import annotations

import threading
from collections import Counter


class Counters:
    """Thread-safe counters that start from the totals saved by earlier runs."""

    def __init__(self, initial: dict[str, int] | None = None):
        self._lock = threading.Lock()
        self._values: Counter[str] = Counter(initial or {})

    def inc(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name``."""
        if n:
            with self._lock:
                self._values[name] += n

    def get(self, name: str) -> int:
        """The current value of ``name`` (0 if never counted)."""
        with self._lock:
            return self._values[name]

    def snapshot(self) -> dict[str, int]:
        """All counters, sorted by name."""
        with self._lock:
            return dict(sorted(self._values.items()))
