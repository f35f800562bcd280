"""Demo data for ``cityos up``: loaded once, idempotently, into the local platform."""

from __future__ import annotations

from collections.abc import Callable

#: "module:function(stack, report)" of each demo loader, in order; components add theirs here.
DEMO_LOADERS: list[str] = [
    "cityos.deploy.demo:start_simulator",
]


def start_simulator(stack, report: Callable[[str], None]) -> None:
    """Live telemetry: simulated homes, snowplows, patrol cars and wearables, each with its own credentials."""
    stack.simulator().up()
    report("  simulator    publishing (500 homes, 30 snowplows, 20 patrol cars, 100 wearables)")


def load_demo(stack, report: Callable[[str], None] = print) -> None:
    """Run every registered demo loader."""
    import importlib

    for spec in DEMO_LOADERS:
        module, _, attr = spec.partition(":")
        getattr(importlib.import_module(module), attr)(stack, report)
