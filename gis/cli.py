"""``cityos gis ...``: load the city's layers and run the analyses from the command line."""

from __future__ import annotations

import inspect
import json
from datetime import date
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Unified GIS: load layers, run analyses.")

def _load(layer: str, path: Path, dry_run: bool, report_path: Path | None, source_layer: str | None = None,
          code: str | None = None) -> None:
    """Load one file into one layer, print the summary, write the full report; never a traceback."""
    from datetime import UTC, datetime

    from cityos.gis.loaders.report import LoadReport
    from cityos.gis.loaders.run import load_file
    from cityos.platform.db.connection import connect
    from cityos.platform.settings import get_settings

    settings = get_settings()
    try:
        with connect() as conn:
            report = load_file(conn, layer, path, dry_run=dry_run, tolerance_m=settings.boundary_tolerance_m,
                               source_layer=source_layer, code=code)
            conn.commit()
    except Exception as exc:  # e.g. the database is unreachable: say so, no traceback
        report = LoadReport(path.name, layer=layer)
        report.fatal = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if report_path is None:
        folder = settings.home / "load-reports"
        folder.mkdir(parents=True, exist_ok=True)
        report_path = folder / f"{layer}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{path.name}.json"
    typer.echo(report.summary())
    try:
        typer.echo(f"  full report: {report.write(report_path)}")
    except OSError as exc:
        typer.echo(f"  report not written ({exc})", err=True)
    if report.fatal:
        raise typer.Exit(2)


DRY_RUN = typer.Option(False, "--dry-run", help="Read and check every row, report, store nothing.")
REPORT = typer.Option(None, "--report", help="Where to write the full per-row report (JSON).")


@app.command("load-fire-water")
def load_fire_water(path: Path, dry_run: bool = DRY_RUN, report: Path = REPORT) -> None:
    """Load a 消防水利施設一覧 file (standard, older, 全国消火栓マップ or LinkData layout; UTF-8, BOM or CP932)."""
    _load("fire_water", path, dry_run, report)


def _load_help() -> str:
    from cityos.gis.loaders.run import loadable

    names = ", ".join(f"{name} ({layer.title_ja})" for name, layer in loadable().items())
    return (f"Load a layer: {names}. bus_stops also takes a GTFS-JP zip or folder. Every row is accepted, "
            "repaired or refused by line.")


@app.command("load", help=_load_help())
def load(layer: str, path: Path, source_layer: str = typer.Option(None, help="Layer inside a GeoPackage."),
         code: str = typer.Option(None, help="boundary: the municipality code (N03_007) to take from the file."),
         dry_run: bool = DRY_RUN, report: Path = REPORT) -> None:
    _load(layer, path, dry_run, report, source_layer, code)


@app.command("export")
def export(layer: str, fmt: str = typer.Option("gpkg", "--format", "-f", help="gpkg or geojson"),
           out: Path = typer.Option(None, "--out", "-o", help="File to write (default LAYER.FORMAT).")) -> None:
    """Export a public layer or an analysis result (aggregated, suppressed) to GeoPackage or GeoJSON."""
    from cityos.gis.exports import EXPORTS, FORMATS, build, write
    from cityos.platform.db.connection import connect
    from cityos.platform.settings import get_settings

    if layer not in EXPORTS or fmt not in FORMATS:
        typer.secho(f"layer one of {', '.join(EXPORTS)}; format one of {', '.join(FORMATS)}", fg="red", err=True)
        raise typer.Exit(2)
    with connect(autocommit=True) as conn:
        gdf = build(conn, layer, get_settings().k_anonymity)
    path = write(gdf, layer, fmt, out or Path(f"{layer}.{fmt}"))
    typer.echo(f"{len(gdf)} features -> {path}")


@app.command("load-registry")
def load_registry(path: Path) -> None:
    """Replace the resident registry with a full extract (CSV: UTF-8, BOM or CP932; audited)."""
    from cityos.gis.loaders.registry import RegistryError, load_extract
    from cityos.platform.audit import Who, access_of
    from cityos.platform.db.connection import connect

    with connect() as conn:
        try:
            rows = load_extract(conn, path, Who.cli(), access_of("cli:gis load-registry").why)
        except RegistryError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(2) from exc
        conn.commit()
    typer.echo(f"registry: {rows} residents loaded from {path.name}")


@app.command("apply-registry-changes")
def apply_registry_changes(path: Path, allow_refused: bool = typer.Option(
        False, help="Apply the good rows even when some are refused.")) -> None:
    """Apply a daily registry change file (異動: 転入/出生/転出/死亡/転居); idempotent, audited."""
    from cityos.gis.loaders.registry import RegistryError, apply_changes
    from cityos.platform.audit import Who, access_of
    from cityos.platform.db.connection import connect

    with connect() as conn:
        try:
            report = apply_changes(conn, path, Who.cli(), allow_refused,
                                   access_of("cli:gis apply-registry-changes").why)
        except RegistryError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(2) from exc
        conn.commit()
    if report.skipped:
        typer.echo(f"{path.name}: already applied (same content); nothing changed")
        return
    typer.echo(f"{report.source}: {report.inserted} inserted, {report.updated} updated, {report.moved_out} moved out, "
               f"{report.unchanged} unchanged, {len(report.refused)} refused (as of {report.as_of})")
    for problem in report.refused[:20]:
        typer.echo(f"  line {problem['line']}: {problem['reason']}")


def _analysis_command(analysis):
    """The ``cityos gis`` command of a declared analysis: its parameters as options (``--as-of`` for a registry
    aggregate, ``--k`` where declared), its rows as CSV or JSON lines; audited when it declares an access."""
    def command(as_of: str | None = None, k: int | None = None, **given) -> None:
        from cityos.gis.statistics import NotAReferenceDate, check_reference_date
        from cityos.platform.audit import record_command
        from cityos.platform.db.connection import connect
        from cityos.platform.settings import get_settings

        settings = get_settings()
        try:
            day = check_reference_date(date.fromisoformat(as_of) if as_of else None) if analysis.reference_date \
                else None
            ctx = analysis.context(k or settings.k_anonymity, settings.zone, channel="cli", as_of=day, **given)
        except (NotAReferenceDate, ValueError) as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(2) from exc
        with connect() as conn:
            result = analysis.view("cli", analysis.run(conn, ctx), ctx)
            if analysis.access is not None:
                record_command(conn, f"gis {analysis.command}", detail={**ctx.params, "rows": len(result)})
                conn.commit()
        if analysis.cli_output == "csv":
            typer.echo(result.drop(columns=["geometry"], errors="ignore").to_csv(index=False))
            return
        for row in (result if isinstance(result, list) else result.to_dict(orient="records")):
            row.pop("geometry", None)
            typer.echo(json.dumps(row, default=str, ensure_ascii=False))

    leading = []
    if analysis.reference_date:
        leading.append(inspect.Parameter("as_of", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
                                         default=typer.Option(None, help="Reference date YYYY-MM-01 (default this "
                                                                          "month's)")))
    if analysis.k_option:
        leading.append(inspect.Parameter("k", inspect.Parameter.KEYWORD_ONLY, annotation=int | None,
                                         default=typer.Option(None, help="Smallest published count (default "
                                                                         "CITYOS_K_ANONYMITY).")))
    command.__signature__ = analysis.signature(
        lambda p: typer.Option(p.default, f"--{p.name.replace('_', '-')}", help=p.help, min=p.ge, max=p.le),
        tuple(leading), channel="cli")
    analysis.describe(command)
    return command


def _declare_analyses() -> None:
    from cityos.gis.declarations import analyses

    for analysis in analyses().values():
        if analysis.cli:
            app.command(analysis.command)(_analysis_command(analysis))


_declare_analyses()
