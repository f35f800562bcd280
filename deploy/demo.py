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

    from cityos.platform.db.connection import connect

    with connect(stack.postgres.database_url()) as conn:
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


def previous_day_homes(database_url: str, timezone: str) -> int:
    """Simulated homes with at least two meter readings in the previous local day (the city's time zone)."""

    from cityos.platform.db.connection import connect

    with connect(database_url) as conn:
        return conn.execute("""
            with day as (select (date_trunc('day', now() at time zone %(tz)s) - interval '1 day') at time zone %(tz)s
                                as start)
            select count(*) from (
                select device_id from telemetry.energy_readings, day
                where device_id like 'sim-hems-%%' and metric = 'import_kwh'
                  and time >= day.start and time < day.start + interval '1 day'
                group by device_id having count(*) >= 2) homes""", {"tz": timezone}).fetchone()[0]


def wait_for_first_day(database_url: str, timezone: str, homes: int = 500, timeout_s: float = 120.0) -> int:
    """Wait until the simulator's backfill of the previous local day has been ingested for (nearly) every home,
    so the daily energy dataset's first publication holds a complete day; the number of homes seen."""
    import time

    deadline = time.monotonic() + timeout_s
    while (seen := previous_day_homes(database_url, timezone)) < homes * 0.95 and time.monotonic() < deadline:
        time.sleep(1)
    return seen


def publish_open_data(stack, report: Callable[[str], None]) -> None:
    """Publish the due open datasets of the demo city to the portal (the local CKAN), as the timer would, once
    the simulated homes' previous local day has arrived (the simulator sends it first, through ingest)."""
    from cityos.opendata.anonymise import GateError
    from cityos.opendata.run import PublishError, run
    from cityos.platform.audit import Who
    from cityos.platform.settings import load_settings

    settings = load_settings()
    homes = wait_for_first_day(settings.database_url, settings.timezone)
    report(f"  open data    previous local day of {homes} simulated homes ingested")
    try:
        results = run(settings, due_only=True, who=Who("cityos-up", "job")).results
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
