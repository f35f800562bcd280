"""Who may write telemetry: registered, active devices, and health data only with consent.

The worker asks :class:`Admission` for every message; it keeps the small device registry and
the set of residents with an active health consent in memory and refreshes them every few
seconds, so a revocation or a withdrawn consent takes effect within ``refresh_s``.

Policy for health readings without consent: the message is dead-lettered as ``no_consent``
**without its payload** (only its size and SHA-256 are kept). Keeping the raw health data of
someone who has not consented would itself be the processing the consent is meant to allow;
the hash still lets an operator match a complaint to a message. Such letters cannot be replayed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class DeviceInfo:
    """What admission needs to know of a device."""

    domain: str
    owner_subject: str | None
    revoked: bool


class Admission:
    """Decides whether a device's message may be stored."""

    def __init__(self, refresh_s: float = 5.0):
        self.refresh_s = refresh_s
        self._devices: dict[str, DeviceInfo] = {}
        self._health_consent: set[str] = set()
        self._loaded_at = float("-inf")

    def refresh(self, conn: psycopg.Connection, force: bool = False) -> None:
        """Reload the registry and consents if they are older than ``refresh_s`` (or ``force``)."""
        now = time.monotonic()
        if not force and now - self._loaded_at < self.refresh_s:
            return
        rows = conn.execute(
            "select device_id, domain, owner_subject, revoked_at is not null from core.devices").fetchall()
        self._devices = {r[0]: DeviceInfo(r[1], r[2], r[3]) for r in rows}
        self._health_consent = {r[0] for r in conn.execute(
            "select distinct subject_id from core.consents_current where category = 'health'").fetchall()}
        self._loaded_at = now
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.commit()

    def check(self, device_id: str, domain: str, conn: psycopg.Connection | None = None) -> tuple[str, str] | None:
        """None if the device may store ``domain`` readings, else (reason, detail)."""
        info = self._devices.get(device_id)
        if info is None and conn is not None and time.monotonic() - self._loaded_at > 1.0:
            self.refresh(conn, force=True)  # a device added a moment ago
            info = self._devices.get(device_id)
        if info is None:
            return "unknown_device", f"device {device_id} is not registered"
        if info.revoked:
            return "revoked_device", f"device {device_id} was revoked"
        if info.domain != domain:
            return "topic_device_mismatch", f"device {device_id} is registered for {info.domain}, not {domain}"
        if domain == "health" and info.owner_subject not in self._health_consent:
            return "no_consent", "the device owner has no active consent for health data"
        return None
