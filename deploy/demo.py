"""Demo data for ``cityos up``: loaded once, idempotently, into the local platform."""

from __future__ import annotations

from collections.abc import Callable

#: "module:function(stack, report)" of each demo loader, in order; components add theirs here.
DEMO_LOADERS: list[str] = [
    "cityos.deploy.demo:load_city",
    "cityos.deploy.demo:start_simulator",
]


def load_city(stack, report: Callable[[str], None]) -> None:
    """The demo city's layers and registry extract, once (an existing city is left alone)."""
    import time

    import psycopg

    with psycopg.connect(stack.postgres.database_url()) as conn:
        if conn.execute("select exists (select 1 from gis.districts)").fetchone()[0]:
            report("  demo city    already loaded")
            return
        from cityos.gis.democity import generate_city
        from cityos.gis.democity import load_city as store

        started = time.monotonic()
        counts = store(conn, generate_city())
        conn.commit()
    report(f"  demo city    loaded ({', '.join(f'{v:,} {k}' for k, v in counts.items())}; "
           f"{time.monotonic() - started:.1f} s)")


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
