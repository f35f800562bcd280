"""``cityos gis ...``: load the city's layers and run the analyses from the command line."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Unified GIS: load layers, run analyses.")

#: layer name -> (table, columns, accepted geometry types)
VECTOR_LAYERS = {
    "districts": ("gis.districts", ("code", "name_ja", "name_en", "area_m2"), ("MultiPolygon",)),
    "roads": ("gis.roads", ("road_id", "name", "road_class"), ("LineString",)),
    "facilities": ("gis.facilities", ("id", "name", "kind", "district_code"), ("Point",)),
    "bus_stops": ("gis.bus_stops", ("stop_id", "name", "boardings_per_day"), ("Point",)),
    "accidents": ("gis.accidents", ("id", "occurred_at", "severity"), ("Point",)),
    "addresses": ("gis.addresses", ("address_id", "district_code"), ("Point",)),
}


def _report(report) -> None:
    typer.echo(f"loaded {report.loaded}, repaired {len(report.repaired)}, refused {len(report.refused)} "
               f"from {report.source}")
    for problem in (report.repaired + report.refused)[:20]:
        typer.echo(f"  {problem}")


@app.command("load-fire-water")
def load_fire_water(path: Path) -> None:
    """Load a 消防水利施設一覧 CSV (standard or older format; UTF-8, BOM or CP932)."""
    from cityos.gis.loaders.fire_water import read_fire_water
    from cityos.gis.store import record_report, replace_layer
    from cityos.platform.db.connection import connect

    gdf, report = read_fire_water(path)
    with connect() as conn:
        replace_layer(conn, "gis.fire_water", gdf, ["id", "kind", "address", "diameter", "note", "attributes"])
        record_report(conn, "fire_water", report)
        conn.commit()
    _report(report)


@app.command("load")
def load(layer: str, path: Path, source_layer: str = typer.Option(None, help="Layer inside a GeoPackage.")) -> None:
    """Load a vector layer (districts, roads, facilities, bus_stops, accidents, addresses)."""
    from cityos.gis.loaders.vectors import MEASURE_CRS, read_vector, repair_geometries
    from cityos.gis.store import record_report, replace_layer
    from cityos.platform.db.connection import connect

    if layer not in VECTOR_LAYERS:
        typer.secho(f"unknown layer {layer!r}; one of {', '.join(VECTOR_LAYERS)}", fg="red", err=True)
        raise typer.Exit(2)
    table, columns, kinds = VECTOR_LAYERS[layer]
    gdf, report = repair_geometries(read_vector(path, source_layer), str(path), kinds)
    if layer == "districts":
        gdf["area_m2"] = gdf.to_crs(MEASURE_CRS).area.round(1)
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        typer.secho(f"{path}: missing columns {', '.join(missing)}", fg="red", err=True)
        raise typer.Exit(2)
    with connect() as conn:
        replace_layer(conn, table, gdf, list(columns))
        record_report(conn, layer, report)
        conn.commit()
    _report(report)


@app.command("population")
def population(as_of: str = typer.Option(None, help="YYYY-MM-DD (default today)"),
               k: int = typer.Option(None, help="Smallest published count (default CITYOS_K_ANONYMITY).")) -> None:
    """Population per district by age band (suppressed), as CSV."""
    from cityos.gis.analyses.population import population_by_district
    from cityos.gis.sources import residents_extract
    from cityos.platform.db.connection import connect
    from cityos.platform.settings import get_settings

    with connect() as conn:
        table = population_by_district(residents_extract(conn), date.fromisoformat(as_of) if as_of else date.today(),
                                       k or get_settings().k_anonymity)
    typer.echo(table.to_csv(index=False))


@app.command("hotspots")
def hotspots(days: int = typer.Option(365), latent_only: bool = typer.Option(False)) -> None:
    """Accident-risk hotspots from harsh braking and police accident points, as JSON lines."""
    from cityos.gis.analyses.hotspots import HARSH_BRAKE_MS2
    from cityos.gis.analyses.hotspots import hotspots as compute
    from cityos.gis.sources import accident_points, vehicle_observations
    from cityos.platform.db.connection import connect

    with connect() as conn:
        table = compute(vehicle_observations(conn, days, HARSH_BRAKE_MS2), accident_points(conn, days))
    if latent_only:
        table = table[table["latent"]]
    for row in table[table["hot"]].to_dict(orient="records"):
        typer.echo(json.dumps(row, default=str))


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


@app.command("bus-coverage")
def bus_coverage(as_of: str = typer.Option(None, help="YYYY-MM-DD (default today)"),
                 k: int = typer.Option(None, help="Smallest published count (default CITYOS_K_ANONYMITY).")) -> None:
    """Share of residents (and 65+) within 300 m / 500 m of a bus stop per district, as CSV."""
    from cityos.gis.analyses.bus_coverage import coverage_by_district
    from cityos.gis.sources import bus_stops, residents_at_addresses
    from cityos.platform.db.connection import connect
    from cityos.platform.settings import get_settings

    with connect() as conn:
        people = residents_at_addresses(conn, date.fromisoformat(as_of) if as_of else date.today())
        table = coverage_by_district(people, bus_stops(conn), k or get_settings().k_anonymity)
    typer.echo(table.to_csv(index=False))


@app.command("snowplow-coverage")
def snowplow_coverage(hours: int = typer.Option(12, help="Plowed within the last N hours."),
                      not_plowed: bool = typer.Option(False, help="Only roads not plowed in that time.")) -> None:
    """Roads with the time a snowplow last passed with its blade down, as JSON lines."""
    from datetime import UTC, datetime, timedelta

    from cityos.gis.analyses.city_sql import snowplow_coverage as compute
    from cityos.platform.db.connection import connect

    with connect() as conn:
        rows = compute(conn, datetime.now(UTC) - timedelta(hours=hours))
    for row in rows:
        if not (not_plowed and row.get("plowed")):
            row.pop("geometry", None)
            typer.echo(json.dumps(row, default=str, ensure_ascii=False))


@app.command("energy-by-district")
def energy_by_district(k: int = typer.Option(None, help="Smallest number of homes (default CITYOS_K_ANONYMITY).")
                       ) -> None:
    """Consumption per home per district and hour of day, week over week (opted-in homes), as JSON lines."""
    from datetime import UTC, datetime

    from cityos.gis.analyses.city_sql import energy_by_district as compute
    from cityos.platform.db.connection import connect
    from cityos.platform.exits import CLI_ENERGY
    from cityos.platform.settings import get_settings

    with connect() as conn:
        settings = get_settings()
        for row in compute(conn, datetime.now(UTC), k or settings.k_anonymity, CLI_ENERGY, settings.timezone):
            typer.echo(json.dumps(row, default=str))


@app.command("vacant-houses")
def vacant_houses(days: int = typer.Option(30, help="Window of near-zero consumption.")) -> None:
    """Vacant-house candidates (addresses: personal data, for staff; the run is audited under the OS user),
    as JSON lines."""
    from datetime import UTC, datetime

    from cityos.gis.analyses.city_sql import vacant_house_candidates
    from cityos.platform.audit import record_command
    from cityos.platform.db.connection import connect

    with connect() as conn:
        rows = vacant_house_candidates(conn, datetime.now(UTC), days)
        record_command(conn, "gis vacant-houses", detail={"days": days, "rows": len(rows)})
        conn.commit()
    for row in rows:
        row.pop("geometry", None)
        typer.echo(json.dumps(row, default=str))
