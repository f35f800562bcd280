"""``cityos consent ...``: record and inspect residents' consent."""

from __future__ import annotations

import json

import typer

app = typer.Typer(no_args_is_help=True, help="Residents' consent per data category and purpose.")


def _change(action: str, subject: str, category: str, purpose: str, note: str) -> None:
    """Record the change and its audit row in one transaction; the actor is the OS user (or the job)."""
    from cityos.platform import consent
    from cityos.platform.audit import Who, record_command
    from cityos.platform.db.connection import connect

    who = Who.cli()
    with connect(autocommit=True) as conn:
        try:
            with conn.transaction():
                consent.record(conn, subject, category, purpose, action, who.name, note)
                record_command(conn, f"consent {action}", subject, {"category": category, "purpose": purpose},
                               who=who)
        except consent.ConsentError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(2) from exc
        typer.echo(json.dumps(consent.current(conn, subject), default=str))


@app.command("grant")
def grant(subject: str, category: str, purpose: str, note: str = typer.Option("")) -> None:
    """Record a grant (category: energy|location|health|registry; purpose: open_data|research|services).
    Recorded as made by the OS user running the command (audited)."""
    _change("grant", subject, category, purpose, note)


@app.command("withdraw")
def withdraw(subject: str, category: str, purpose: str, note: str = typer.Option("")) -> None:
    """Record a withdrawal; it takes effect at the next publish run (audited)."""
    _change("withdraw", subject, category, purpose, note)


@app.command("show")
def show(subject: str) -> None:
    """A resident's consent history (audited)."""
    from cityos.platform import consent
    from cityos.platform.audit import record_command
    from cityos.platform.db.connection import connect

    with connect(autocommit=True) as conn:
        record_command(conn, "consent show", subject)
        for event in consent.history(conn, subject):
            typer.echo(f"{event.at:%Y-%m-%d %H:%M} {event.action:<8} {event.category:<9} {event.purpose:<10} "
                       f"by {event.actor}")
