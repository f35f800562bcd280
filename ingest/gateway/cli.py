"""``cityos gateway run|enroll|status|check``: the edge gateway's commands (no server-side imports)."""

from __future__ import annotations

import json
import logging
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="The edge gateway (Raspberry Pi): read devices, store and forward.")
CONFIG = typer.Option(Path("/etc/cityos/gateway.toml"), "--config", "-c", help="The gateway's TOML file.")


def _config(path: Path):
    from cityos.ingest.gateway.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc


@app.command("check")
def check(config: Path = CONFIG) -> None:
    """Validate the configuration file and print what it will run."""
    cfg = _config(config)
    typer.echo(f"ok: device {cfg.device_id} ({cfg.domain or 'no adapters'}), broker {cfg.broker_url}, "
               f"adapters: {', '.join(a.label for a in cfg.adapters) or 'none'}")


@app.command("run")
def run(config: Path = CONFIG, log_level: str = typer.Option("INFO", envvar="CITYOS_LOG_LEVEL")) -> None:
    """Run the gateway until SIGTERM (systemd: deploy/systemd/cityos-gateway.service)."""
    import asyncio

    from cityos.ingest.gateway.runner import Gateway
    from cityos.ingest.gateway.sender import CredentialsError

    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        gateway = Gateway(_config(config))
    except CredentialsError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    asyncio.run(gateway.run())


@app.command("enroll")
def enroll(token: str = typer.Option(..., "--token", help="One-time enrolment token from the city."),
           api: str = typer.Option(..., "--api", help="The platform's API base URL, e.g. https://api.city.example"),
           config: Path = CONFIG) -> None:
    """Exchange a one-time enrolment token for this device's MQTT credentials (stored with mode 600)."""
    cfg = _config(config)
    request = urllib.request.Request(f"{api.rstrip('/')}/api/v1/devices/enroll", method="POST",
                                     data=json.dumps({"token": token}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            credentials = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        typer.secho(f"enrolment refused ({exc.code}): {exc.read().decode(errors='replace')[:300]}", fg="red", err=True)
        raise typer.Exit(1) from exc
    except urllib.error.URLError as exc:
        typer.secho(f"cannot reach {api}: {exc.reason}", fg="red", err=True)
        raise typer.Exit(1) from exc
    if credentials.get("device_id") != cfg.device_id:
        typer.secho(f"the token is for device {credentials.get('device_id')!r}, the configuration names "
                    f"{cfg.device_id!r}", fg="red", err=True)
        raise typer.Exit(1)
    path = cfg.credentials_file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(credentials, fh)
    os.replace(tmp, path)
    typer.echo(f"enrolled {cfg.device_id}: credentials in {path} (mode 600)")


@app.command("status")
def status(config: Path = CONFIG) -> None:
    """The outbox (readings waiting, oldest), counters, clock and connection, as last saved by the gateway."""
    from cityos.ingest.gateway.outbox import Outbox
    from cityos.ingest.gateway.runner import STATUS_KEY

    cfg = _config(config)
    outbox = Outbox(cfg.outbox.path, max_bytes=cfg.outbox.max_bytes)
    try:
        saved = outbox.get_state(STATUS_KEY) or {}
        assert isinstance(saved, dict), "the saved status is a JSON object"
        saved["outbox"] = outbox.depth()
    finally:
        outbox.close()
    typer.echo(json.dumps(saved, indent=2, default=str))
