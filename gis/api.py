"""HTTP API of the GIS analyses (aggregated, suppressed) and of the raw registry (staff, audited)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from cityos.platform.api.responses import respond, to_json
from cityos.platform.auth import Principal, require_scope
from cityos.platform.db.connection import connect

router = APIRouter(prefix="/api/v1/gis", tags=["GIS analyses"])
PROPERTIES = ("cell", "harsh_brakes", "accidents", "gi_z", "gi_p", "hot", "latent")


def _records(frame) -> list[dict]:
    return [{k: (None if v is None or v != v else v) for k, v in row.items()} for row in
            frame.astype(object).to_dict(orient="records")]


def _reference_date(as_of: date | None) -> date:
    from fastapi import HTTPException

    from cityos.gis.statistics import NotAReferenceDate, check_reference_date

    try:
        return check_reference_date(as_of)
    except NotAReferenceDate as exc:
        raise HTTPException(400, str(exc)) from exc


AS_OF = Query(None, description="A reference date: the first day of a month (YYYY-MM-01), default the current "
                                "month's / 基準日（各月1日）")


@router.get("/population", summary="Population per district by age group / 地域・年齢別人口")
def population(request: Request, as_of: date | None = AS_OF, format: Literal["json", "csv"] = "json") -> Response:
    """Residents per district and age group on a reference date, protected together with every other
    published figure of that date (small counts and whatever would let them be recovered are blank)."""
    from cityos.gis.analyses.population import population_table
    from cityos.gis.statistics import published_statistics

    day = _reference_date(as_of)
    with connect(autocommit=True) as conn:
        stats = published_statistics(conn, day, request.app.state.settings.k_anonymity)
    return respond(request, _records(population_table(stats)), format, max_age=3600)


@router.get("/bus-coverage", summary="Bus-stop coverage per district / バス停カバー率")
def bus_coverage(request: Request, as_of: date | None = AS_OF, format: Literal["json", "csv"] = "json") -> Response:
    """Share of residents (and of residents 65+) within 300 m and 500 m of a stop; badly served districts
    (reference dates only; protected with the population figures of the same date)."""
    from cityos.gis.analyses.bus_coverage import coverage_table
    from cityos.gis.statistics import published_statistics

    day = _reference_date(as_of)
    with connect(autocommit=True) as conn:
        stats = published_statistics(conn, day, request.app.state.settings.k_anonymity)
    return respond(request, _records(coverage_table(stats)), format, max_age=3600)


def _staff_day(as_of: date | None, today: date) -> date:
    """The day of an exact registry figure: ``as_of`` (from 1900 up to a year ahead; 400 otherwise) or today."""
    if as_of is None:
        return today
    if not date(1900, 1, 1) <= as_of <= today.replace(year=today.year + 1, day=min(today.day, 28)):
        raise HTTPException(400, f"as_of must lie between 1900-01-01 and a year from today, not {as_of}")
    return as_of


@router.get("/registry/population", summary="Exact population per district, any day (staff only, audited)")
def registry_population(request: Request, as_of: date | None = None, format: Literal["json", "csv"] = "json",
                        _: Principal = Depends(require_scope("registry:read"))) -> Response:
    """Unprotected counts for staff with the registry scope (every call is audited); never cached publicly."""
    from cityos.gis.analyses.population import population_table

    return _exact(request, as_of, format, population_table)


@router.get("/registry/bus-coverage", summary="Exact bus-stop coverage, any day (staff only, audited)")
def registry_bus_coverage(request: Request, as_of: date | None = None, format: Literal["json", "csv"] = "json",
                          _: Principal = Depends(require_scope("registry:read"))) -> Response:
    """Unprotected coverage counts for staff with the registry scope (every call is audited)."""
    from cityos.gis.analyses.bus_coverage import coverage_table

    return _exact(request, as_of, format, coverage_table)


def _exact(request: Request, as_of: date | None, format: str, table_of) -> Response:
    """``table_of`` the exact statistics of ``as_of`` (default today), private and never stored by caches."""
    from cityos.gis.statistics import city_zone, exact_statistics

    with connect(autocommit=True) as conn:
        stats = exact_statistics(conn, _staff_day(as_of, datetime.now(city_zone()).date()))
    response = respond(request, _records(table_of(stats)), format, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@router.get("/hotspots", summary="Accident-risk hotspots (GeoJSON) / 潜在的な事故危険箇所")
def hotspots(request: Request, days: int = Query(365, ge=1, le=3650),
             permutations: int = Query(999, ge=99, le=9999, description="Without an API key at most "
                                       "CITYOS_ANONYMOUS_MAX_PERMUTATIONS (999)")) -> Response:
    """H3 cells with harsh-brake counts, accidents, Gi* z-score and p-value, hot and latent flags.
    The permutation test's cost grows with ``permutations``: callers without an API key get at most
    ``CITYOS_ANONYMOUS_MAX_PERMUTATIONS``."""
    most = request.app.state.settings.anonymous_max_permutations
    if permutations > most and request.scope.get("state", {}).get("caller") != "key":
        raise HTTPException(400, f"at most {most} permutations without an API key (X-API-Key); "
                                 f"with one, up to 9999")
    from cityos.gis.analyses.hotspots import HARSH_BRAKE_MS2, cell_polygon
    from cityos.gis.analyses.hotspots import hotspots as compute
    from cityos.gis.sources import accident_points, vehicle_observations

    with connect(autocommit=True) as conn:
        brakes = vehicle_observations(conn, days, HARSH_BRAKE_MS2)
        accidents = accident_points(conn, days)
    table = compute(brakes, accidents, permutations=permutations)
    features = [{"type": "Feature", "id": r["cell"],
                 "geometry": {"type": "Polygon", "coordinates": [cell_polygon(r["cell"])]},
                 "properties": {k: r[k] for k in PROPERTIES}}
                for r in _records(table)]
    return Response(to_json({"type": "FeatureCollection", "features": features}), media_type="application/geo+json")


@router.get("/registry/residents", summary="Raw registry rows (staff only, audited)")
def registry_rows(district_code: str, limit: int = Query(100, ge=1, le=5000),
                  _: Principal = Depends(require_scope("registry:read"))) -> list[dict]:
    """Resident-registry rows of one district, for staff with the registry scope; every call is audited."""
    with connect(autocommit=True) as conn:
        cur = conn.execute("select person_id, household_id, district_code, address_id, birth_date, sex, moved_in, "
                           "moved_out from registry.residents where district_code = %s order by person_id limit %s",
                           (district_code, limit))
        names = [d.name for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _geojson(rows: list[dict]) -> Response:
    import json

    features = [{"type": "Feature", "geometry": json.loads(r.pop("geometry")), "properties": r} for r in rows]
    return Response(to_json({"type": "FeatureCollection", "features": features}), media_type="application/geo+json")


@router.get("/exports/{layer}", summary="Download a layer as GeoPackage or GeoJSON / レイヤーのダウンロード",
            responses={200: {"content": {"application/geopackage+sqlite3": {}, "application/geo+json": {}}},
                       404: {"description": "Unknown layer"}})
def export_layer(request: Request, layer: str, format: Literal["gpkg", "geojson"] = "gpkg") -> Response:
    """Public layers and analysis results (aggregated, small cells suppressed); never raw registry rows."""

    from cityos.gis.exports import EXPORTS, FORMATS, build, to_bytes

    if layer not in EXPORTS:
        raise HTTPException(404, f"unknown layer {layer!r}; one of {', '.join(EXPORTS)}")
    with connect(autocommit=True) as conn:
        gdf = build(conn, layer, request.app.state.settings.k_anonymity)
    return Response(to_bytes(gdf, layer, format), media_type=FORMATS[format][1],
                    headers={"Content-Disposition": f'attachment; filename="{layer}.{format}"',
                             "Cache-Control": "public, max-age=300"})


@router.get("/snowplow-coverage", summary="Roads and when they were last plowed (GeoJSON) / 除雪状況")
def snowplow_coverage(hours: int = Query(12, ge=1, le=24 * 14)) -> Response:
    """Every road with the last time a snowplow passed with its blade down within the last ``hours``."""
    from datetime import UTC, datetime, timedelta

    from cityos.gis.analyses.city_sql import snowplow_coverage as compute

    with connect(autocommit=True) as conn:
        rows = compute(conn, datetime.now(UTC) - timedelta(hours=hours))
    return _geojson(rows)


@router.get("/energy-by-district", summary="Household consumption per district and hour / 地区別電力使用")
def energy_by_district(request: Request, format: Literal["json", "csv"] = "json") -> Response:
    """Average power per home by district and local hour of day (the city's time zone, ``CITYOS_TIMEZONE``,
    default Asia/Tokyo), this week and last. HEMS homes whose owners consented to open data (not research or
    services) only; districts with fewer than k homes are blanked."""
    from datetime import UTC, datetime

    from cityos.gis.analyses.city_sql import energy_by_district as compute
    from cityos.platform.exits import API_ENERGY_BY_DISTRICT

    with connect(autocommit=True) as conn:
        settings = request.app.state.settings
        rows = compute(conn, datetime.now(UTC), settings.k_anonymity, API_ENERGY_BY_DISTRICT, settings.timezone)
    return respond(request, rows, format, max_age=300)


@router.get("/energy-by-area", summary="Household consumption at the finest area with k homes / 地域別電力使用")
def energy_by_area(request: Request, format: Literal["json", "csv"] = "json") -> Response:
    """Per district and local hour of day (the city's time zone, last 7 days), HEMS homes whose owners consented
    to open data only, shown at the finest level
    whose group has at least k homes: the district, else its town (町), else the city's left-over homes.
    Each row gives ``level`` (district, town, city or suppressed) and ``area``."""
    from datetime import UTC, datetime

    from cityos.gis.analyses.energy_areas import energy_by_area_from_db
    from cityos.platform.exits import API_ENERGY_BY_AREA

    with connect(autocommit=True) as conn:
        settings = request.app.state.settings
        rows = energy_by_area_from_db(conn, datetime.now(UTC), settings.k_anonymity, API_ENERGY_BY_AREA,
                                      settings.timezone)
    return respond(request, rows, format, max_age=300)


@router.get("/vacant-houses", summary="Vacant-house candidates (staff only, audited) / 空き家候補")
def vacant_houses(days: int = Query(30, ge=7, le=365),
                  _: Principal = Depends(require_scope("registry:read"))) -> Response:
    """Addresses with no registered resident and a near-idle meter for ``days`` days."""
    from datetime import UTC, datetime

    from cityos.gis.analyses.city_sql import vacant_house_candidates

    with connect(autocommit=True) as conn:
        return _geojson(vacant_house_candidates(conn, datetime.now(UTC), days))


def _analysis_route(analysis):
    """The route of a declared analysis: its parameters as query parameters, rows as JSON or CSV."""
    import inspect

    def route(request: Request, format: Literal["json", "csv"] = "json", **given) -> Response:
        settings = request.app.state.settings
        try:
            ctx = analysis.context(settings.k_anonymity, settings.zone, **given)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        with connect(autocommit=True) as conn:
            table = analysis.run(conn, ctx)
        return respond(request, _records(table.drop(columns=["geometry"], errors="ignore")), format,
                       max_age=analysis.max_age)

    route.__signature__ = analysis.signature(
        lambda p: Query(p.default, description=p.help, ge=p.ge, le=p.le),
        (inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
         inspect.Parameter("format", inspect.Parameter.KEYWORD_ONLY, annotation=Literal["json", "csv"],
                           default="json")), Response)
    analysis.describe(route)
    return route


def _declare_analyses() -> None:
    from cityos.gis.declarations import analyses

    for analysis in analyses().values():
        if analysis.api:
            router.add_api_route(analysis.path.removeprefix(router.prefix), _analysis_route(analysis),
                                 methods=["GET"], summary=f"{analysis.title} / {analysis.title_ja}")


_declare_analyses()
