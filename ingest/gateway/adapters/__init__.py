"""The adapter registry: the one place that names every adapter (type -> module).

An adapter is one module with a ``Settings`` model (``type: Literal["<type>"]``) and a factory
``make(settings, sink, outbox) -> Adapter``. Heavy or optional libraries (pychonet, bleak) are
imported inside ``Adapter.run`` so that loading the configuration never needs them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from cityos.ingest.gateway.adapters.base import Adapter, AdapterSettings
from cityos.ingest.gateway.emitter import Emitter

ADAPTERS: dict[str, str] = {
    "echonet": "cityos.ingest.gateway.adapters.echonet",
    "vehicle": "cityos.ingest.gateway.adapters.vehicle",
    "health_http": "cityos.ingest.gateway.adapters.health_http",
    "ble_heart_rate": "cityos.ingest.gateway.adapters.ble_heart_rate",
}


def module(kind: str) -> ModuleType:
    """The module of adapter type ``kind``."""
    return importlib.import_module(ADAPTERS[kind])


def settings_models() -> list[type[AdapterSettings]]:
    """Every adapter's settings model (for the configuration's tagged union)."""
    return [module(kind).Settings for kind in ADAPTERS]


def create(settings: AdapterSettings, emitter: Emitter) -> Adapter:
    """The adapter for ``settings``, writing into ``emitter`` (its outbox keeps the adapter's state)."""
    return module(settings.type).make(settings, emitter.sink(settings.DOMAIN, settings.label), emitter.outbox)
