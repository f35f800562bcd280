"""``cityos publish``, ``cityos datasets ...`` and ``cityos requests ...``: the open-data commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer

publish_app = typer.Typer(no_args_is_help=False, help="Publish open data to CKAN.")
datasets_app = typer.Typer(no_args_is_help=True, help="Open-data dataset definitions.")
requests_app = typer.Typer(no_args_is_help=True, help="Citizens' dataset requests.")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(code)


@publish_app.command("publish")
def publish(dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; change nothing."),
            only: list[str] = typer.Option(None, "--only", help="Publish only this dataset (repeatable)."),
            due: bool = typer.Option(False, "--due", help="Only datasets whose schedule says they are due, "
                                     "or whose period received late readings."),
            folder: Path = typer.Option(None, help="Folder of dataset definitions (default: shipped ones).")) -> None:
    """Build the datasets, check the anonymisation gate, and create or update them in CKAN."""
    from rich.progress import Progress

    from cityos.opendata.anonymise import GateError
    from cityos.opendata.definitions import DATASETS_DIR, DefinitionError
    from cityos.opendata.run import PublishError, run
    from cityos.platform.settings import load_settings

    settings = load_settings()
    with Progress(transient=True) as progress:
        task = progress.add_task("publishing", total=None)
        try:
            report = run(settings, only=only or None, dry_run=dry_run, due_only=due, folder=folder or DATASETS_DIR,
                         on_change=lambda change: progress.update(task, advance=1, description=change.describe()))
        except (GateError, DefinitionError, PublishError) as exc:
            raise _fail(str(exc)) from exc
    for result in report.results:
        colour = {"failed": "red", "published": "green", "skipped": "yellow"}.get(result.status)
        typer.secho(f"{result.name:<32} {result.status}", fg=colour, bold=result.status == "failed")
        for change in result.changes:
            typer.echo(f"    {change.describe()}")
        if result.error:
            typer.secho(f"    {result.error}", fg="red")
        if result.note:
            typer.secho(f"    {result.note}", fg="yellow")
    if report.failed:
        raise _fail(f"{len(report.failed)} dataset(s) failed; run again to resume (run {report.run_id})", 1)


@datasets_app.command("list")
def list_datasets() -> None:
    """Every dataset definition, its schedule, basis and last publication."""
    from cityos.opendata.definitions import load_definitions
    from cityos.opendata.run import last_published
    from cityos.platform.db.connection import connect

    with connect(autocommit=True) as conn:
        last = last_published(conn)
    for d in load_definitions():
        when = last[d.name].isoformat(timespec="minutes") if d.name in last else "never"
        typer.echo(f"{d.name:<32} {d.schedule:<8} {d.anonymisation.basis:<13} last published {when}  {d.title_ja}")


@datasets_app.command("build")
def build(name: list[str] = typer.Argument(None, help="Datasets to build (default: all)."),
          out: Path = typer.Option(Path("opendata-build"), "--out", "-o", help="Folder for the files.")) -> None:
    """Build datasets into files and run the gate, without uploading (for review)."""
    from cityos.opendata.build import gate
    from cityos.opendata.definitions import load_definitions
    from cityos.opendata.run import build_all
    from cityos.platform.db.connection import connect
    from cityos.platform.settings import load_settings

    settings = load_settings()
    from cityos.platform.audit import record_command

    with connect(autocommit=True) as conn:
        built = build_all(conn, load_definitions(only=name or None), settings)
        record_command(conn, "datasets build", detail={"datasets": {b.definition.name: b.contributors for b in built}})
    for item in built:
        folder = out / item.definition.name
        folder.mkdir(parents=True, exist_ok=True)
        for resource in item.resources:
            if resource.data is not None:
                (folder / resource.filename).write_bytes(resource.data)
        status = ("REFUSED: " + "; ".join(item.violations) if item.violations
                  else "ok, no rows: its files are not uploaded (no header-only files)" if item.rows == 0 else "ok")
        typer.echo(f"{item.definition.name:<32} {item.rows:>7} rows  {status}")
    gate(built)


@requests_app.command("list")
def list_requests(status: str = typer.Option("open", help="open, answered, closed or all.")) -> None:
    """Dataset requests with the requesters' contacts (staff)."""
    from cityos.opendata import dataset_requests as store
    from cityos.platform.audit import record_command
    from cityos.platform.db.connection import connect

    with connect(autocommit=True) as conn:
        record_command(conn, "requests list", f"status: {status}")
        for row in store.listing(conn, None if status == "all" else status, staff=True, limit=500):
            typer.echo(json.dumps(row, default=str, ensure_ascii=False))


def _answer(command: str, request_id: int, text: str, status: str) -> None:
    """Answer as the OS user (or the job), in one transaction with the audit row."""
    from cityos.opendata import dataset_requests as store
    from cityos.platform.audit import Who, record_command
    from cityos.platform.db.connection import connect

    who = Who.cli()
    with connect(autocommit=True) as conn, conn.transaction():
        if store.answer(conn, request_id, text, status, who.name) is None:
            raise _fail(f"no dataset request {request_id}")
        record_command(conn, command, str(request_id), {"status": status}, who=who)
    typer.echo(f"request {request_id} {status}")


@requests_app.command("answer")
def answer(request_id: int, text: str) -> None:
    """Answer a request (it stays visible as answered; audited)."""
    _answer("requests answer", request_id, text, "answered")


@requests_app.command("close")
def close(request_id: int, text: str = typer.Argument("closed")) -> None:
    """Close a request with a final answer (audited)."""
    _answer("requests close", request_id, text, "closed")
