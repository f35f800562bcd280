"""``cityos up / down / status / logs``: the local runtime's command line."""

from __future__ import annotations

import json
import subprocess
import time

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
