"""Where adapters hand over readings: checked against the contract, time-stamped, written to the outbox."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cityos.ingest.gateway.clock import Clock
from cityos.ingest.gateway.counters import Counters
from cityos.ingest.gateway.outbox import EVENT, ROUTINE, Outbox
from cityos.ingest.gateway.payload import DEFAULT_ROOT, clean_metrics, reading_problem, topic

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Observation:
    """A reading an adapter produced: metrics, and its time if the source knows it (else: stamped now)."""

    metrics: dict[str, object]
    t: float | None = None
    priority: int = ROUTINE


class Emitter:
    """Turns observations into outbox rows on the device's topic for their domain."""

    def __init__(self, outbox: Outbox, clock: Clock, counters: Counters, device_id: str, *,
                 root: str = DEFAULT_ROOT, wake: Callable[[], None] | None = None):
        self.outbox, self.clock, self.counters = outbox, clock, counters
        self.device_id, self.root = device_id, root
        self.wake = wake

    def sink(self, domain: str, name: str) -> Sink:
        """A sink for one adapter (its domain, and a name for counters)."""
        return Sink(self, domain, topic(domain, self.device_id, self.root), name)

    def write(self, sink: Sink, observations: Iterable[Observation]) -> int:
        """Check, stamp and store observations in one transaction; returns readings stored."""
        rows: list[tuple[str, float, dict[str, object] | str, int, bool, float | None]] = []
        for obs in observations:
            metrics, refused = clean_metrics(sink.domain, obs.metrics)
            for field, reason in refused.items():
                self.counters.inc(f"{sink.name}_refused_{reason}")
                log.debug("%s: %s=%r refused (%s)", sink.name, field, obs.metrics.get(field), reason)
            if problem := reading_problem(sink.domain, metrics):
                self.counters.inc(f"{sink.name}_dropped_{problem}")
                continue
            if obs.t is None:
                stamp = self.clock.stamp()
                rows.append((sink.topic, stamp.wall, metrics, obs.priority, stamp.trusted, stamp.mono))
            else:
                rows.append((sink.topic, obs.t, metrics, obs.priority, True, None))
        if not rows:
            return 0
        self.outbox.put_many(rows)
        self.counters.inc(f"{sink.name}_readings", len(rows))
        if self.wake and any(r[3] >= EVENT for r in rows):
            self.wake()
        return len(rows)


@dataclass(frozen=True, slots=True)
class Sink:
    """An adapter's handle on the emitter."""

    emitter: Emitter
    domain: str
    topic: str
    name: str

    def emit(self, metrics: dict[str, object], *, t: float | None = None, priority: int = ROUTINE) -> bool:
        """Store one reading; False if it was refused (see counters)."""
        return self.emitter.write(self, [Observation(metrics, t, priority)]) == 1

    def emit_many(self, observations: Iterable[Observation]) -> int:
        """Store several readings at once; returns how many were stored."""
        return self.emitter.write(self, observations)

    def count(self, event: str, n: int = 1) -> None:
        """Count an adapter event (``{name}_{event}``)."""
        self.emitter.counters.inc(f"{self.name}_{event}", n)
