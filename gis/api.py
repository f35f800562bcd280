"""HTTP API of the GIS analyses (aggregated, suppressed) and of the raw registry (staff, audited)."""

from __future__ import annotations

import inspect
from datetime import date, datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from cityos.gis.declarations import records
from cityos.gis.statistics import check_reference_date
from cityos.platform.api.responses import respond, to_json
from cityos.platform.auth import Principal, require_scope
from cityos.platform.db.connection import connect

router = APIRouter(prefix="/api/v1/gis", tags=["GIS analyses"])


def _staff_day(as_of: date | None, today: date) -> date:
    """The day of an exact registry figure: ``as_of`` (from 1900 up to a year ahead; 400 otherwise) or today."""
    if as_of is None:
        return today
    if not date(1900, 1, 1) <= as_of <= today.replace(year=today.year + 1, day=min(today.day, 28)):
        raise HTTPException(400, f"as_of must lie between 1900-01-01 and a year from today, not {as_of}")
    return as_of


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


AS_OF = Query(None, description="A reference date: the first day of a month (YYYY-MM-01), default the current "
                                "month's / 基準日（各月1日）")
FORMAT = inspect.Parameter("format", inspect.Parameter.KEYWORD_ONLY, annotation=Literal["json", "csv"], default="json")
REQUEST = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)


def _keyword(name: str, annotation, default) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


def _geojson(rows: list[dict], feature_id: str | None) -> Response:
    def feature(row: dict) -> dict:
        head = {"type": "Feature", "id": row[feature_id]} if feature_id else {"type": "Feature"}
        return {**head, "geometry": row.pop("geometry"), "properties": row}

    return Response(to_json({"type": "FeatureCollection", "features": [feature(r) for r in rows]}),
                    media_type="application/geo+json")


def _analysis_route(analysis):
    """The route of a declared analysis: its parameters as query parameters (``as_of`` for a registry aggregate,
    the scope where it declares one), rows as JSON or CSV or a GeoJSON FeatureCollection."""
    def route(request: Request, format: str = "json", as_of: date | None = None, **given) -> Response:
        settings = request.app.state.settings
        for p in analysis.params_of("api"):
            most = getattr(settings, p.keyless_max) if p.keyless_max else None
            if most is not None and (given.get(p.name) or 0) > most and \
                    request.scope.get("state", {}).get("caller") != "key":
                raise HTTPException(400, f"at most {most} {p.name} without an API key (X-API-Key); "
                                         f"with one, up to {p.le:g}")
        given.pop("_", None)
        try:
            day = check_reference_date(as_of) if analysis.reference_date else None
            ctx = analysis.context(settings.k_anonymity, settings.zone, channel="api", as_of=day, **given)
        except ValueError as exc:  # NotAReferenceDate too
            raise HTTPException(400, str(exc)) from None
        with connect(autocommit=True) as conn:
            result = analysis.view("api", analysis.run(conn, ctx), ctx)
        if analysis.api_output == "geojson":
            return _geojson(records(result), analysis.feature_id)
        return respond(request, records(result.drop(columns=["geometry"], errors="ignore")
                                        if not isinstance(result, list) else result), format,
                       max_age=analysis.max_age)

    leading = [REQUEST]
    if analysis.reference_date:
        leading.append(_keyword("as_of", date | None, AS_OF))
    if analysis.api_output == "table":
        leading.append(FORMAT)
    if analysis.scope:
        leading.append(_keyword("_", Principal, Depends(require_scope(analysis.scope))))
    route.__signature__ = analysis.signature(lambda p: Query(p.default, description=p.help, ge=p.ge, le=p.le),
                                             tuple(leading), Response, channel="api")
    analysis.describe(route)
    return route


def _staff_route(analysis):
    """The staff route of a registry aggregate: the exact figures of any day, audited, never stored by caches."""
    def route(request: Request, as_of: date | None = None, format: str = "json",
              _: Principal = Depends(require_scope("registry:read"))) -> Response:
        from cityos.gis.statistics import city_zone

        settings = request.app.state.settings
        day = _staff_day(as_of, datetime.now(city_zone()).date())
        ctx = analysis.context(settings.k_anonymity, settings.zone, channel="api", as_of=day, exact=True)
        with connect(autocommit=True) as conn:
            result = analysis.view("api", analysis.run(conn, ctx), ctx)
        response = respond(request, records(result), format, max_age=0)
        response.headers["Cache-Control"] = "private, no-store"
        return response

    route.__signature__ = inspect.Signature([
        REQUEST, _keyword("as_of", date | None, None), FORMAT,
        _keyword("_", Principal, Depends(require_scope("registry:read")))], return_annotation=Response)
    route.__doc__ = f"Exact figures of {analysis.title_ja} for staff with the registry scope (every call is audited)."
    route.__name__ = f"registry_{analysis.id}"
    return route


def _declare_analyses() -> None:
    from cityos.gis.declarations import analyses

    for analysis in analyses().values():
        if analysis.api:
            router.add_api_route(analysis.path.removeprefix(router.prefix), _analysis_route(analysis),
                                 methods=["GET"], summary=f"{analysis.title} / {analysis.title_ja}")
        if analysis.staff_exact:
            router.add_api_route(analysis.staff_path.removeprefix(router.prefix), _staff_route(analysis),
                                 methods=["GET"], summary=f"{analysis.title}: exact, any day (staff only, audited)")


_declare_analyses()
