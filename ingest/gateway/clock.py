"""The gateway's clock: wall time for readings, and whether that wall time can be trusted.

A Raspberry Pi has no battery-backed clock: it boots at 1970 (or at the last time fake-hwclock saved)
and jumps when NTP sets it. Readings stamped before that are useless to the platform (``too_old``)
unless they are re-stamped. So every stamp also records the monotonic clock and the kernel boot id;
when the wall clock becomes plausible, or jumps, the outbox re-stamps this boot's unsent readings as
``monotonic + (wall - monotonic)`` of the new, trusted clock (:meth:`Outbox.restamp`).

Rules (documented in ``ingest/gateway/README.md``):
- a wall time before :data:`EARLIEST` (2024-01-01) is *unsynchronised*: readings are stamped and
  held (not sent) until the clock is plausible, then re-stamped;
- a change of ``wall - monotonic`` by more than ``jump_threshold`` seconds is a *jump*: counted,
  shown in ``status``, and unsent readings of this boot stamped with the old offset are re-stamped
  (a step is assumed to move toward the truth, as NTP steps do).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: 2024-01-01T00:00:00Z: a wall clock before this has not been set.
EARLIEST = 1_704_067_200.0
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """The kernel's boot id (monotonic times are comparable only within one boot)."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:  # not Linux: one id per process is the safe choice
        return f"process-{uuid.uuid4()}"


def kernel_ntp_synced() -> bool | None:
    """The kernel's own view (``adjtimex``: not ``TIME_ERROR``); None where it cannot be asked."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
        state = libc.adjtimex(buf)
    except (OSError, AttributeError):
        return None
    return None if state < 0 else state != 5  # TIME_ERROR


@dataclass(frozen=True, slots=True)
class Stamp:
    """An observation instant: wall time, monotonic time, and whether the wall time is trusted."""

    wall: float
    mono: float
    trusted: bool


@dataclass(frozen=True, slots=True)
class ClockEvent:
    """The clock became plausible (``kind='synced'``) or jumped (``kind='jump'``)."""

    kind: str
    old_offset: float
    new_offset: float


class Clock:
    """Stamps readings and watches the wall clock for the first plausible value and for jumps."""

    def __init__(self, *, jump_threshold: float = 2.0, wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic, on_event: Callable[[ClockEvent], None] | None = None):
        self._wall, self._mono = wall, mono
        self.jump_threshold = jump_threshold
        self.on_event = on_event
        self.boot = boot_id()
        self._lock = threading.Lock()
        self._offset = wall() - mono()
        self.jumps = 0
        self.last_jump: float | None = None
        self.synced_at: float | None = None if self._offset + mono() < EARLIEST else self._offset + mono()

    @property
    def trusted(self) -> bool:
        """Whether the wall clock is plausible (set, not before 2024)."""
        return self._offset + self._mono() >= EARLIEST

    @property
    def offset(self) -> float:
        """The current ``wall - monotonic``."""
        return self._offset

    def stamp(self) -> Stamp:
        """Now, after checking for a jump."""
        self.check()
        mono = self._mono()
        wall = self._offset + mono
        return Stamp(wall, mono, wall >= EARLIEST)

    def check(self) -> ClockEvent | None:
        """Compare the wall clock with the monotonic one; report (and call ``on_event`` for) a change."""
        with self._lock:
            mono = self._mono()
            wall = self._wall()
            new = wall - mono
            old = self._offset
            self._offset = new  # follows NTP's slow slewing; only steps count as jumps
            if abs(new - old) <= self.jump_threshold:
                return None
            was_trusted = old + mono >= EARLIEST
            if not was_trusted and wall >= EARLIEST:
                self.synced_at = wall
                event = ClockEvent("synced", old, new)
            else:
                self.jumps += 1
                self.last_jump = wall
                event = ClockEvent("jump", old, new)
        if self.on_event:
            self.on_event(event)
        return event

    def status(self) -> dict[str, object]:
        """The clock's state for ``gateway status``."""
        return {"trusted": self.trusted, "wall": self._offset + self._mono(), "jumps": self.jumps,
                "last_jump": self.last_jump, "synced_at": self.synced_at, "kernel_ntp_synced": kernel_ntp_synced()}
