"""``cityos up / down / status / logs / test``: the local runtime's command line (``test`` runs the suite
against the servers it brings up)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


def _stack():
    from cityos.deploy.runtime.stack import Stack

    return Stack.from_env()


@app.command()
def up(demo: bool = typer.Option(True, help="Load the demo city and its devices.")) -> None:
    """Provision and start the platform on 127.0.0.1 (idempotent), then print its URLs."""
    from cityos.deploy.runtime.system import ProvisioningError

    started = time.monotonic()
    stack = _stack()
    typer.echo(f"cityos up (state in {stack.state.home})")
    try:
        stack.up(report=typer.echo)
        if demo:
            from cityos.deploy.demo import load_demo

            load_demo(stack, report=typer.echo)
    except (ProvisioningError, RuntimeError, TimeoutError) as exc:
        typer.secho(f"cityos up failed: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"ready in {time.monotonic() - started:.1f} s")
    for name, url in stack.urls().items():
        typer.echo(f"  {name:<18} {url}")


@app.command()
def down() -> None:
    """Stop the servers this runtime started (by pid); data is kept."""
    stopped = _stack().down()
    typer.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Each component: mode, running, health, version, and active TimescaleDB features."""
    rows = _stack().status()
    if as_json:
        typer.echo(json.dumps([r.__dict__ for r in rows], default=str, indent=2))
    else:
        for r in rows:
            state = "healthy" if r.healthy else ("running, unhealthy" if r.running else "stopped")
            typer.echo(f"{r.name:<10} {r.mode:<9} {state:<19} {r.version:<14} {r.url}")
            for key, value in r.detail.items():
                typer.echo(f"{'':<10} {key}: {value}")
    if not all(r.healthy for r in rows):
        raise typer.Exit(1)


@app.command()
def logs(component: str = typer.Argument("api", help="postgres, mosquitto, api, ..."),
         lines: int = typer.Option(50, "-n", help="Lines to show."),
         follow: bool = typer.Option(False, "-f", help="Keep printing new lines.")) -> None:
    """Show a component's log."""
    stack = _stack()
    found = {c.name: c for c in stack.components()}
    if component not in found:
        typer.secho(f"unknown component {component!r}; one of {', '.join(found)}", fg="red", err=True)
        raise typer.Exit(2)
    path = found[component].log_path()
    if path is None or not path.exists():
        typer.secho(f"{component} has no local log", err=True)
        raise typer.Exit(1)
    subprocess.run(["tail", f"-n{lines}", *(["-F"] if follow else []), str(path)], check=False)


@app.command()
def backup(to: Path = typer.Option(Path("backups"), "--to", help="Folder that receives the backup folder.")) -> None:
    """Back up the platform database, CKAN's database and storage (where known) and the broker's accounts."""
    import psycopg

    from cityos.deploy.backup import BackupError
    from cityos.deploy.backup import backup as run_backup
    from cityos.platform.audit import record_command
    from cityos.platform.db.connection import connect
    from cityos.platform.settings import load_settings

    settings = load_settings()
    try:
        # A backup reads every resident's data: audited first, so the row is in the backup too.
        with connect(settings.database_url, autocommit=True) as conn:
            record_command(conn, "backup", detail={"to": str(to)})
        folder = run_backup(settings, to)
    except (BackupError, OSError, psycopg.Error) as exc:
        typer.secho(f"backup failed: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    typer.echo(str(folder))


@app.command()
def restore(folder: Path = typer.Argument(..., help="A folder written by `cityos backup`."),
            database_url: str = typer.Option(..., "--database-url",
                                             help="The new, empty database (timescaledb and postgis created)."),
            broker: bool = typer.Option(False, help="Also put the broker's accounts file back (broker stopped).")
            ) -> None:
    """Restore a backup into an empty database and check every table's row count against the backup."""
    from cityos.deploy.backup import BackupError, restore_broker_file
    from cityos.deploy.backup import restore as run_restore
    from cityos.platform.settings import load_settings

    settings = load_settings()
    try:
        differences = run_restore(settings, folder, database_url)
    except (BackupError, OSError) as exc:
        typer.secho(f"restore failed: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    if differences:
        for table, (expected, found) in sorted(differences.items()):
            typer.secho(f"{table}: {found} rows, the backup has {expected}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo("restored; every table has the backup's row count")
    if broker and (path := restore_broker_file(settings, folder)):
        typer.echo(f"broker accounts: {path}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(ctx: typer.Context) -> None:
    """Start the local runtime (no demo data) and run pytest; extra arguments go to pytest."""
    from cityos.deploy.runtime.system import TEST_PACKAGES, ensure_packages
    from cityos.platform.settings import REPO_ROOT

    ensure_packages(*TEST_PACKAGES)
    stack = _stack()
    was_running = stack.postgres.running_pid() is not None
    stack.up(report=typer.echo)
    # The tests read the connection settings from the state folder's local.env, like every
    # other client; CITYOS_* variables set by the caller (external servers) pass through.
    try:
        result = subprocess.run([sys.executable, "-m", "pytest", *ctx.args], cwd=REPO_ROOT, check=False)
    finally:
        if not was_running:  # leave the machine as the run found it
            typer.echo("stopped: " + ", ".join(stack.down()))
    raise typer.Exit(result.returncode)
