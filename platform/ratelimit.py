"""Rate limits and quotas for the open API: anonymous callers by address, developers by API key.

Each API process keeps its own counters (a fixed one-minute window and a daily count), so a
deployment with P processes behind a load balancer allows up to P times the configured rate;
run one process per host or share counters through Redis when that matters.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field

import psycopg


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(conn: psycopg.Connection, name: str, contact: str, rate_per_minute: int = 600,
                   daily_quota: int = 100_000) -> str:
    """A new API key (shown once; stored as a hash)."""
    key = "ck_" + secrets.token_urlsafe(24)
    conn.execute("insert into core.api_keys (key_hash, key_prefix, name, contact, rate_per_minute, daily_quota) "
                 "values (%s, %s, %s, %s, %s, %s)", (hash_key(key), key[:8], name, contact, rate_per_minute,
                                                      daily_quota))
    return key


@dataclass(frozen=True)
class Limits:
    """What one caller may do."""

    per_minute: int
    per_day: int


@dataclass
class _Window:
    minute: int = 0
    minute_count: float = 0
    day: int = 0
    day_count: float = 0


@dataclass
class RateLimiter:
    """Fixed-window counters per caller: the per-minute rate counts in windows of ``window_s`` seconds
    (``CITYOS_RATE_WINDOW_S``, 60; tests shorten it), the quota per day."""

    windows: dict[str, _Window] = field(default_factory=dict)
    window_s: float = 60.0

    def check(self, caller: str, limits: Limits, now: float | None = None, cost: float = 1.0) -> int | None:
        """Count one request of weight ``cost``; None if allowed, else seconds until the caller may retry."""
        now = time.time() if now is None else now
        minute, day = int(now // self.window_s), int(now // 86_400)
        w = self.windows.setdefault(caller, _Window(minute, 0, day, 0))
        if w.minute != minute:
            w.minute, w.minute_count = minute, 0
        if w.day != day:
            w.day, w.day_count = day, 0
        if w.day_count + cost > limits.per_day + 1e-9:
            return int((day + 1) * 86_400 - now) + 1
        if w.minute_count + cost > limits.per_minute + 1e-9:
            return int((minute + 1) * self.window_s - now) + 1
        w.minute_count += cost
        w.day_count += cost
        return None


@dataclass
class ConnectionCap:
    """Open long-lived connections (live feeds) per caller and in total."""

    per_caller: int
    total: int
    open: dict[str, int] = field(default_factory=dict)

    def acquire(self, caller: str) -> str | None:
        """Take a slot for ``caller``; None if taken, else why not."""
        if self.open.get(caller, 0) >= self.per_caller:
            return f"at most {self.per_caller} live connections per address"
        if sum(self.open.values()) >= self.total:
            return "the live feeds are at capacity"
        self.open[caller] = self.open.get(caller, 0) + 1
        return None

    def release(self, caller: str) -> None:
        left = self.open.get(caller, 0) - 1
        if left > 0:
            self.open[caller] = left
        else:
            self.open.pop(caller, None)
