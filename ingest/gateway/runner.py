"""Runs a gateway: clock, outbox, adapters and sender, with housekeeping and a clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from cityos.ingest.gateway import adapters
from cityos.ingest.gateway.clock import Clock, ClockEvent
from cityos.ingest.gateway.config import GatewayConfig
from cityos.ingest.gateway.emitter import Emitter
from cityos.ingest.gateway.outbox import Outbox
from cityos.ingest.gateway.sender import Credentials, Sender

log = logging.getLogger(__name__)
STATUS_KEY = "status"


class Gateway:
    """Everything one gateway process runs."""

    def __init__(self, config: GatewayConfig):
        self.config = config
        self.clock = Clock(on_event=self._clock_event)
        box = config.outbox
        self.outbox = Outbox(box.path, max_bytes=box.max_bytes, max_age=box.max_age_days * 86400,
                             durable=box.durable, boot=self.clock.boot, keep_s=box.keep_sent_days * 86400,
                             keep_bytes=int(box.keep_sent_mb * 1024 * 1024))
        self.counters = self.outbox.counters
        self.sender = Sender(config, self.outbox, self.counters, Credentials.load(config.credentials_file))
        self.emitter = Emitter(self.outbox, self.clock, self.counters, config.device_id, root=config.topic_root,
                               wake=self.sender.wake)
        self.adapters = [adapters.create(settings, self.emitter) for settings in config.adapters]
        self.started = time.time()

    def _clock_event(self, event: ClockEvent) -> None:
        self.counters.inc(f"clock_{event.kind}")
        log.warning("clock %s: offset %.1f s -> %.1f s; re-stamping held readings", event.kind, event.old_offset,
                    event.new_offset)
        self.outbox.restamp(event.new_offset, old_offset=event.old_offset if event.kind == "jump" else None)

    def status(self) -> dict[str, object]:
        """What ``cityos gateway status`` shows (also saved in the outbox every few seconds)."""
        return {"device_id": self.config.device_id, "pid_started": self.started, "sender": self.sender.status(),
                "clock": self.clock.status(), "outbox": self.outbox.depth(), "counters": self.counters.snapshot(),
                "adapters": {a.settings.label: a.status() for a in self.adapters}}

    async def _supervise(self, adapter) -> None:
        """Run an adapter; restart it (with back-off) when it fails."""
        delay = 1.0
        while True:
            try:
                await adapter.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.counters.inc(f"{adapter.settings.label}_crashes")
                log.exception("adapter %s failed; restarting in %.0f s", adapter.settings.label, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval_s)
            self.clock.check()
            self.outbox.expire()
            self.outbox.prune_kept()
            self.outbox.save_counters()
            self.outbox.set_state(STATUS_KEY, self.status())

    async def run(self) -> None:
        """Until SIGTERM or SIGINT: adapters produce, the sender forwards."""
        recovered = self.outbox.recover()
        log.info("gateway %s starting (%s)", self.config.device_id, recovered)
        self.sender.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.create_task(self._supervise(a)) for a in self.adapters]
        tasks.append(asyncio.create_task(self._housekeeping()))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await asyncio.to_thread(self.sender.stop, 10.0)
            self.outbox.save_counters()
            self.outbox.set_state(STATUS_KEY, self.status())
            self.outbox.close()
            log.info("gateway stopped")
