"""``cityos test``: bring up the real servers and run the whole test suite against them."""

from __future__ import annotations

import subprocess
import sys

import typer

from cityos.platform.settings import REPO_ROOT

app = typer.Typer()


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(ctx: typer.Context) -> None:
    """Start the local runtime (no demo data) and run pytest; extra arguments go to pytest."""
    from cityos.deploy.runtime.stack import Stack
    from cityos.deploy.runtime.system import TEST_PACKAGES, ensure_packages

    ensure_packages(*TEST_PACKAGES)
    stack = Stack.from_env()
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
