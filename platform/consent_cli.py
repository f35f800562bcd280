"""``cityos consent ...``: record and inspect residents' consent."""

from __future__ import annotations

import json

import typer

app = typer.Typer(no_args_is_help=True, help="Residents' consent per data category and purpose.")


def _change(action: str, subject: str, category: str, purpose: str, actor: str, note: str) -> None:
    from cityos.platform import consent
    from cityos.platform.db.connection import connect

    with connect(autocommit=True) as conn:
        try:
            consent.record(conn, subject, category, purpose, action, actor, note)
        except consent.ConsentError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(2) from exc
        typer.echo(json.dumps(consent.current(conn, subject), default=str))


@app.command("grant")
def grant(subject: str, category: str, purpose: str, actor: str = typer.Option("staff-cli"),
          note: str = typer.Option("")) -> None:
    """Record a grant (category: energy|location|health|registry; purpose: open_data|research|services)."""
    _change("grant", subject, category, purpose, actor, note)


@app.command("withdraw")
def withdraw(subject: str, category: str, purpose: str, actor: str = typer.Option("staff-cli"),
             note: str = typer.Option("")) -> None:
    """Record a withdrawal; it takes effect at the next publish run."""
    _change("withdraw", subject, category, purpose, actor, note)


@app.command("show")
def show(subject: str) -> None:
    """A resident's consent history."""
    from cityos.platform import consent
    from cityos.platform.db.connection import connect

    with connect(autocommit=True) as conn:
        for event in consent.history(conn, subject):
            typer.echo(f"{event.at:%Y-%m-%d %H:%M} {event.action:<8} {event.category:<9} {event.purpose:<10} "
                       f"by {event.actor}")
