"""``cityos ingest``, ``cityos devices ...`` and ``cityos deadletters ...``."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading

import typer

ingest_app = typer.Typer(help="Run MQTT ingest workers.")
devices_app = typer.Typer(no_args_is_help=True, help="Register, list and revoke devices (per-device MQTT users).")
deadletters_app = typer.Typer(no_args_is_help=True, help="Inspect and replay rejected messages.")


def _settings():
    from cityos.platform.settings import get_settings

    return get_settings()


def _conn():
    from cityos.platform.db.connection import connect

    return connect(autocommit=True)


def _worker_main(client_id: str, database_url: str, mqtt_url: str, metrics_folder: str, batch_max: int) -> None:
    from pathlib import Path

    from cityos.platform.metrics import enable_multiprocess

    enable_multiprocess(Path(metrics_folder))
    from cityos.ingest.worker import WorkerConfig, run_worker
    from cityos.platform.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_json)
    if not run_worker(WorkerConfig(database_url, mqtt_url, client_id, batch_max=batch_max,
                                   accounting=settings.ingest_accounting,
                                   admission_refresh_s=settings.ingest_admission_refresh_s)):
        raise SystemExit(3)  # asked to leave, but the session could not be ended: the registry keeps it open


def _public_feed_main(database_url: str, mqtt_url: str, k: int, client_id: str) -> None:
    from cityos.ingest.public_feed import PublicFeed
    from cityos.platform.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_json)
    feed = PublicFeed(database_url, mqtt_url, k, client_id=client_id)
    # The SensorThings MQTT extension (v1.1/#) rides in the same process; cityos.sta is wired here by name only.
    from cityos.sta.mqtt import StaFeed

    sta = StaFeed(database_url, mqtt_url, settings.api_url, client_id=f"{client_id}-sta")
    threading.Thread(target=sta.run, name="sta-feed", daemon=True).start()
    def stop(*_: object) -> None:
        feed.stop()
        sta.stop()

    signal.signal(signal.SIGTERM, stop)
    feed.run()
    sta.stop()


@ingest_app.command("ingest")
def ingest(workers: int = typer.Option(2, "--workers", "-w", min=1, max=1000,
                                       help="Worker processes (shared subscription)."),
           batch_max: int = typer.Option(5000, help="Most messages committed in one transaction."),
           public_feed: bool | None = typer.Option(None, help="Also republish public streams to cityos/public/v1/# "
                                            "(default: in instance 0 only, so one process publishes the tree).")
           ) -> None:
    """Run N ingest worker processes sharing the stream (MQTT 5 shared subscription).

    The process is one ingest *instance* (``CITYOS_INGEST_INSTANCE``: an ordinal, or ``auto`` for the
    lowest free one); its workers are the MQTT clients ``cityos-ingest-{instance}-{index}``. It drains
    and ends the broker sessions of workers that no longer exist (see ``cityos.ingest.sessions``).
    """
    from cityos.ingest.sessions import (
        InstanceClaim,
        InstanceUnavailable,
        SessionKeeper,
        adopt_legacy,
        decide_leave,
        parse_instance,
        public_feed_client_id,
        register,
    )
    from cityos.ingest.worker import drain_session
    from cityos.platform.logs import configure_logging
    from cityos.platform.metrics import metrics_dir

    settings = _settings()
    if not settings.database_url or not settings.mqtt_url:
        typer.secho("CITYOS_DATABASE_URL and CITYOS_MQTT_URL are needed (run `cityos up` first)", fg="red", err=True)
        raise typer.Exit(1)
    configure_logging(settings.log_level, settings.log_json)
    try:
        claim = InstanceClaim(settings.database_url, parse_instance(settings.ingest_instance))
        instance = claim.acquire()
        assert claim.conn is not None
        client_ids = register(claim.conn, instance, workers, socket.gethostname())
        adopt_legacy(claim.conn, instance, socket.gethostname(), workers)
    except (ValueError, InstanceUnavailable) as exc:
        typer.secho(f"ingest: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"ingest instance {instance}: workers {', '.join(client_ids)}", err=True)
    ctx = multiprocessing.get_context("spawn")
    folder = str(metrics_dir(settings.home))
    procs = [ctx.Process(target=_worker_main, args=(cid, settings.database_url, settings.mqtt_url, folder, batch_max),
                         name=f"ingest-{i}") for i, cid in enumerate(client_ids)]
    if public_feed if public_feed is not None else instance == 0:
        procs.append(ctx.Process(target=_public_feed_main, args=(settings.database_url, settings.mqtt_url,
                                                                 settings.k_anonymity,
                                                                 public_feed_client_id(instance)),
                                 name="public-feed"))
    for proc in procs:
        proc.start()

    requested: list[int] = []
    lost: list[str] = []
    signal.signal(signal.SIGTERM, lambda signum, _f: requested.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _f: requested.append(signum))
    keeper = SessionKeeper(claim, workers, lambda cid: drain_session(settings.database_url, settings.mqtt_url, cid),
                           lost.append)
    keeper.start()
    # One dead worker stops the service (the others are told to stop): the supervisor that runs
    # `cityos ingest` (the local runtime's, or the container's restart policy) starts it again whole.
    while not requested and not lost and all(p.is_alive() for p in procs):
        multiprocessing.connection.wait([p.sentinel for p in procs], timeout=0.5)
    keeper.stop()
    leave = False
    if requested:
        try:  # other instances stay: this one leaves for good and its workers end their sessions
            leave = claim.conn is not None and decide_leave(claim.conn, instance)
        except Exception as exc:  # no database: keep the sessions (the safe side)
            typer.secho(f"ingest: could not decide whether other instances stay ({exc}); keeping sessions",
                        fg="yellow", err=True)
    elif lost:
        typer.secho(f"ingest: {lost[0]}; stopping", fg="red", err=True)
    else:
        dead = [f"{p.name} (exit {p.exitcode})" for p in procs if not p.is_alive()]
        typer.secho(f"ingest: {', '.join(dead)} stopped; stopping the other workers", fg="red", err=True)
    for proc in procs:
        if proc.pid and proc.is_alive():
            os.kill(proc.pid, signal.SIGUSR1 if leave and proc.name != "public-feed" else signal.SIGTERM)
    for proc in procs:
        proc.join()
    if leave:
        from cityos.ingest.sessions import mark_ended

        try:
            for cid, proc in zip(client_ids, procs, strict=False):
                if proc.exitcode == 0:
                    mark_ended(claim.conn, cid, "left", 0)
        except Exception as exc:
            typer.secho(f"ingest: sessions ended but not recorded ({exc})", fg="yellow", err=True)
    keeper.join(5)
    claim.release()
    failed = [p.name for p in procs if p.exitcode not in (0, -signal.SIGTERM)]
    if failed or not requested:
        raise typer.Exit(1)


@devices_app.command("add")
def devices_add(device_id: str, domain: str = typer.Option(..., help="hems, vehicle, health or env"),
                kind: str = typer.Option("", help="smart_meter, snowplow, patrol_car, wearable, ..."),
                owner: str = typer.Option(None, help="Owner's pseudonymous subject id (required for health)."),
                district: str = typer.Option(None, help="District code."),
                public: bool = typer.Option(False, help="Readings may be served as open data."),
                enrol: bool = typer.Option(False, help="Print a one-time enrolment token instead of the password.")
                ) -> None:
    """Register a device and create its MQTT user (password shown once)."""
    from cityos.ingest.devices import DeviceError, add_device, create_enrolment_token, provision
    from cityos.ingest.dynsec import DynsecError
    from cityos.platform.audit import record_command

    settings = _settings()
    with _conn() as conn:
        try:
            with conn.transaction():
                new = add_device(conn, device_id, domain, kind=kind, owner_subject=owner, district_code=district,
                                 public=public)
                record_command(conn, "devices add", device_id, {"domain": domain, "owner": owner,
                                                                "district": district, "enrol": enrol})
                if (target := _target(settings)) is not None:
                    provision(conn, target, new)
        except (DeviceError, DynsecError) as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(2) from exc
        out = {"device_id": new.device_id, "mqtt_username": new.mqtt_username}
        if enrol:
            out["enrolment_token"] = create_enrolment_token(conn, device_id)
        else:
            out["mqtt_password"] = new.mqtt_password
    typer.echo(json.dumps(out, indent=2))


def _target(settings):
    """The broker whose accounts follow the registry, or None (with a warning) when no broker is configured."""
    from cityos.ingest.devices import broker_target

    if not settings.mqtt_url:
        typer.secho("no CITYOS_MQTT_URL: the broker's accounts were not changed", fg="yellow", err=True)
        return None
    return broker_target(settings)


@devices_app.command("sync")
def devices_sync() -> None:
    """Make the broker's accounts and rights match the registry (revoked devices removed, roles updated)."""
    from cityos.ingest.devices import sync_broker
    from cityos.ingest.dynsec import DynsecError

    target = _target(_settings())
    if target is None:
        raise typer.Exit(1)
    from cityos.platform.audit import record_command

    with _conn() as conn:
        try:
            result = sync_broker(conn, target)
        except DynsecError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(2) from exc
        record_command(conn, "devices sync", detail={k: len(v) if isinstance(v, list | set | tuple) else v
                                                      for k, v in result.__dict__.items()})
    typer.echo(json.dumps(result.__dict__, indent=2))
    if result.missing:
        typer.secho("these active devices have no broker account: re-enrol them or rotate their passwords",
                    fg="yellow", err=True)


@devices_app.command("list")
def devices_list(domain: str = typer.Option(None), all_: bool = typer.Option(False, "--all", help="Include revoked.")
                 ) -> None:
    """List registered devices."""
    from cityos.ingest.devices import list_devices
    from cityos.platform.audit import record_command

    with _conn() as conn:
        record_command(conn, "devices list", detail={"domain": domain, "all": all_})
        for d in list_devices(conn, domain=domain, include_revoked=all_):
            state = "revoked" if d["revoked_at"] else "active"
            typer.echo(f"{d['device_id']:<24} {d['domain']:<8} {d['kind']:<12} {state}")


@devices_app.command("stats")
def devices_stats(device_id: str, days: int = typer.Option(7, min=1, max=400, help="Days back, today included."),
                  utc: bool = typer.Option(False, "--utc", help="UTC days instead of the city's (CITYOS_TIMEZONE)."),
                  as_json: bool = typer.Option(False, "--json")) -> None:
    """What a device sent per day and whether all of it arrived: messages, readings stored, duplicates
    absorbed, late readings, refusals by reason, newest observation (the ledger ingest writes with the rows)."""
    import json

    from cityos.ingest.ledger import as_json as row_json
    from cityos.ingest.ledger import device_stats
    from cityos.platform.audit import record_command

    tz = "UTC" if utc else _settings().timezone
    with _conn() as conn:
        record_command(conn, "devices stats", device_id, {"days": days, "utc": utc})
        rows = device_stats(conn, device_id, days=days, tz=tz)
    if as_json:
        typer.echo(json.dumps([row_json(r) for r in rows], ensure_ascii=False))
        return
    typer.echo(f"{device_id}: days in {tz}")
    typer.echo(f"{'day':<11} {'messages':>9} {'stored':>9} {'dupl.':>7} {'late':>7} {'refused':>8}  newest observation")
    for r in rows:
        refused = ", ".join(f"{k}={v}" for k, v in sorted(r["refused"].items()))
        newest = r["newest"].isoformat(timespec="seconds") if r["newest"] else "-"
        typer.echo(f"{r['day']!s:<11} {r['messages']:>9} {r['stored']:>9} {r['duplicates']:>7} {r['late']:>7} "
                   f"{r['refused_total']:>8}  {newest}" + (f"  ({refused})" if refused else ""))
    if not rows:
        typer.echo("nothing received in these days")


@devices_app.command("fleet")
def devices_fleet(days: int = typer.Option(7, min=1, max=400, help="Days of the ledger to look at."),
                  as_json: bool = typer.Option(False, "--json")) -> None:
    """Devices silent for longer than their expected interval, and devices with refused messages."""
    import json
    from datetime import timedelta

    from cityos.ingest.ledger import as_json as row_json
    from cityos.ingest.ledger import fleet
    from cityos.platform.audit import record_command

    with _conn() as conn:
        record_command(conn, "devices fleet", detail={"days": days})
        view = fleet(conn, days=days)
    if as_json:
        typer.echo(json.dumps({k: [row_json(r) for r in v] for k, v in view.items()}, ensure_ascii=False))
        return
    typer.echo(f"silent longer than expected ({len(view['silent'])}):")
    for d in view["silent"]:
        last = d["last_observation"].isoformat(timespec="seconds") if d["last_observation"] else "never"
        typer.echo(f"  {d['device_id']:<24} {d['domain']:<8} last observation {last}, "
                   f"silent {timedelta(seconds=int(d['silent_for'].total_seconds()))}, "
                   f"expected every {d['expected_interval']}")
    typer.echo(f"with refused messages in the last {days} days ({len(view['refusals'])}):")
    for d in view["refusals"]:
        typer.echo(f"  {d['device_id'] or '(no device in topic)':<24} "
                   + ", ".join(f"{k}={v}" for k, v in sorted(d["refused"].items())))


@devices_app.command("gaps")
def devices_gaps(device_id: str = typer.Argument(None, help="Only this device."),
                 stream: str = typer.Option(None, help="Only this stream (domain)."),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """Open gaps: sequence numbers of a device's stream that never arrived (see `cityos devices resend`)."""
    from cityos.ingest.gaps import open_gaps
    from cityos.platform.audit import record_command

    with _conn() as conn:
        record_command(conn, "devices gaps", device_id or "", {"stream": stream})
        gaps = open_gaps(conn, device_id, stream)
        conn.commit()
    if as_json:
        typer.echo(json.dumps(gaps, indent=2, default=str))
        return
    for g in gaps:
        typer.echo(f"{g['device_id']:<24} {g['stream']:<8} {g['first']}..{g['last']} ({g['missing']} missing) "
                   f"since {g['opened_at']:%Y-%m-%d %H:%M:%S%z}")


@devices_app.command("resend")
def devices_resend(device_id: str,
                   stream: str = typer.Option(None, help="The stream (domain); default: the device's."),
                   first: int = typer.Option(None, "--from", min=1, help="First sequence number."),
                   last: int = typer.Option(None, "--to", min=1, help="Last sequence number."),
                   ) -> None:
    """Ask a gateway over MQTT to send a range of its readings again (default: every open gap of the device)."""
    from cityos.ingest.gaps import open_gaps
    from cityos.ingest.resend import ResendError, resend_commands, send_resend
    from cityos.platform.audit import record_command

    settings = _settings()
    if not settings.mqtt_url:
        typer.secho("no CITYOS_MQTT_URL: cannot reach the broker", fg="red", err=True)
        raise typer.Exit(2)
    if (first is None) != (last is None):
        typer.secho("give both --from and --to, or neither (then every open gap is asked for)", fg="red", err=True)
        raise typer.Exit(2)
    with _conn() as conn:
        row = conn.execute("select domain from core.devices where device_id = %s", (device_id,)).fetchone()
        if row is None:
            typer.secho(f"no device {device_id}", fg="red", err=True)
            raise typer.Exit(2)
        if first is not None:
            wanted = {stream or row[0]: [(first, last)]}
        else:
            wanted = {}
            for g in open_gaps(conn, device_id, stream):
                wanted.setdefault(g["stream"], []).append((g["first"], g["last"]))
        try:
            commands = [c for s, ranges in wanted.items() for c in resend_commands(s, ranges)]
        except ValueError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(2) from exc
        record_command(conn, "devices resend", device_id, {"commands": commands})
        conn.commit()
    if not commands:
        typer.echo(f"{device_id} has no open gaps: nothing to ask for")
        return
    try:
        send_resend(settings.mqtt_url, device_id, commands)
    except ResendError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    for c in commands:
        typer.echo(f"asked {device_id} to resend {c['stream']} {c['from']}..{c['to']}")


@devices_app.command("revoke")
def devices_revoke(device_id: str) -> None:
    """Revoke a device: the broker disconnects and refuses it at once, ingest refuses its messages."""
    from cityos.ingest.devices import DeviceError, deprovision, revoke_device
    from cityos.ingest.dynsec import DynsecError

    settings = _settings()
    from cityos.platform.audit import record_command

    with _conn() as conn:
        try:
            with conn.transaction():
                revoke_device(conn, device_id)
                record_command(conn, "devices revoke", device_id)
        except DeviceError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(2) from exc
        if (target := _target(settings)) is not None:
            try:
                with conn.transaction():
                    deprovision(conn, target, device_id)
            except DynsecError as exc:
                typer.secho(f"revoked in the registry (ingest refuses its messages), but the broker was not "
                            f"changed: {exc}; run `cityos devices sync` when it is back", fg="red", err=True)
                raise typer.Exit(2) from exc
    typer.echo(f"revoked {device_id}")


@deadletters_app.command("list")
def deadletters_list(reason: str = typer.Option(None), pending: bool = typer.Option(False),
                     limit: int = typer.Option(20)) -> None:
    """Show rejected messages, newest first."""
    from cityos.ingest.deadletters import list_dead_letters
    from cityos.platform.audit import record_command

    with _conn() as conn:
        record_command(conn, "deadletters list", detail={"reason": reason, "pending": pending, "limit": limit})
        for d in list_dead_letters(conn, reason=reason, pending_only=pending, limit=limit):
            typer.echo(json.dumps(d, default=str, ensure_ascii=False))


@deadletters_app.command("replay")
def deadletters_replay(ids: list[int] = typer.Argument(None), reason: str = typer.Option(None)) -> None:
    """Replay pending dead letters (all, by id, or by reason) after a fix."""
    from cityos.ingest.deadletters import replay
    from cityos.platform.audit import audited_command

    with _conn() as conn:
        conn.autocommit = False
        result = replay(conn, ids=ids or None, reason=reason)
    audited_command("deadletters replay", detail={"ids": ids or None, "reason": reason, **result.__dict__})
    typer.echo(json.dumps(result.__dict__))


@ingest_app.command("simulate")
def simulate_command(homes: int = typer.Option(500), snowplows: int = typer.Option(30),
                     patrol_cars: int = typer.Option(20), wearables: int = typer.Option(100),
                     duration: float = typer.Option(None, help="Seconds to run (default: until interrupted)."),
                     hems_interval: float = typer.Option(30.0, help="Seconds between a home's readings."),
                     seed: int = typer.Option(7),
                     backfill: bool = typer.Option(True, help="First send each home's readings of the previous "
                                                   "local day and of today so far (a complete first day).")
                     ) -> None:
    """Publish realistic streams (HEMS homes, snowplows, patrol cars, wearables) with per-device credentials."""
    from cityos.ingest.devices import broker_target
    from cityos.ingest.simulate.runner import SimulationConfig, simulate

    settings = _settings()
    config = SimulationConfig(homes, snowplows, patrol_cars, wearables, hems_interval_s=hems_interval, seed=seed,
                              backfill=backfill, timezone=settings.timezone)
    typer.echo(f"simulating {homes} homes, {snowplows} snowplows, {patrol_cars} patrol cars, {wearables} wearables")
    from cityos.platform.audit import audited_command

    audited_command("simulate", detail={"homes": homes, "wearables": wearables, "seed": seed})
    count = simulate(settings.database_url, settings.mqtt_url, broker_target(settings), config, duration)
    typer.echo(f"published {count} readings")
