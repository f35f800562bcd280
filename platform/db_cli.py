"""``cityos db ...``: schema migrations and maintenance."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Database schema and maintenance.")


@app.command()
def migrate() -> None:
    """Apply pending schema migrations (safe to run twice)."""
    from cityos.platform.db.migrate import migrate as run_migrations
    from cityos.platform.settings import get_settings

    done = run_migrations(get_settings().database_url)
    typer.echo("applied: " + (", ".join(f"{m.version:04d}_{m.name}" for m in done) if done else "nothing (up to date)"))


@app.command()
def maintain() -> None:
    """Run one roll-up and retention pass now (audited under the OS user, or CITYOS_JOB_NAME)."""
    from cityos.platform.audit import Who
    from cityos.platform.db.maintenance import run_maintenance
    from cityos.platform.settings import get_settings

    settings = get_settings()
    typer.echo(run_maintenance(settings.database_url, settings.retention_days_raw, Who.cli()))
