"""``cityos tokens ...``: scoped API tokens for staff and services."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Scoped API tokens (shown once, stored hashed).")


@app.command("create")
def create(name: str, scope: list[str] = typer.Option(..., "--scope", "-s", help="Repeat for several scopes.")) -> None:
    """Create a token for NAME with the given scopes and print it once."""
    from cityos.platform.auth import create_token
    from cityos.platform.db.connection import connect

    with connect(autocommit=True) as conn:
        try:
            typer.echo(create_token(conn, name, scope))
        except ValueError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(2) from exc


@app.command("revoke")
def revoke(name: str) -> None:
    """Revoke every token called NAME."""
    from cityos.platform.db.connection import connect

    with connect(autocommit=True) as conn:
        count = conn.execute("update core.api_tokens set revoked_at = now() where name = %s and revoked_at is null",
                             (name,)).rowcount
    typer.echo(f"revoked {count} token(s)")
