"""Demo data for ``cityos up``: loaded once, idempotently, into the local platform."""

from __future__ import annotations

from collections.abc import Callable

#: "module:function(stack, report)" of each demo loader, in order; components add theirs here.
DEMO_LOADERS: list[str] = [
    "cityos.deploy.demo:load_city",
    "cityos.deploy.demo:start_simulator",
    "cityos.deploy.demo:publish_open_data",
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


def publish_open_data(stack, report: Callable[[str], None]) -> None:
    """Publish the due open datasets of the demo city to the portal (the local CKAN), as the timer would."""
    from cityos.opendata.anonymise import GateError
    from cityos.opendata.run import PublishError, run
    from cityos.platform.settings import load_settings

    try:
        results = run(load_settings(), due_only=True).results
    except (GateError, PublishError) as exc:
        report(f"  open data    not published: {exc}")
        return
    counts = {status: sum(r.status == status for r in results) for status in ("published", "unchanged", "failed")}
    report(f"  open data    {counts['published']} published, {counts['unchanged']} unchanged, "
           f"{counts['failed']} failed ({len(results)} due)")


def load_demo(stack, report: Callable[[str], None] = print) -> None:
    """Run every registered demo loader."""
    import importlib

    for spec in DEMO_LOADERS:
        module, _, attr = spec.partition(":")
        getattr(importlib.import_module(module), attr)(stack, report)
