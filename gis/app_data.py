"""The living-lab apps' own base data, served as static, versioned, cacheable files under ``/apps/data``.

The apps need whole public layers (fire-water facilities, roads, district outlines, facilities for
labels), the same for every resident. Asking the open API for them made every resident's visit count
against the anonymous rate of their address (120/min), which residents behind one address (a mobile
carrier's NAT, a school, an evacuation centre) share: a crowd blanked the maps. Here each layer is
built once per ``CITYOS_APP_DATA_REFRESH_S`` (60 s) per API process, whatever the traffic, kept in
memory (plain and gzip), and served like a static file, outside the per-address API rate limit:

- ``GET /apps/data/manifest.json``: the current versioned URL of each layer (``no-cache``: revalidated
  with its ETag on every load, a 304 costs nothing);
- ``GET /apps/data/{layer}.{version}.geojson``: the layer, ``Cache-Control: public, max-age=31536000,
  immutable`` with an ETag (the version is a hash of the content, so a changed layer gets a new URL).
  An outdated version is answered with the current content and ``no-cache``.

Only layers that the open API already publishes to anyone (OGC collections) are listed here.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from dataclasses import asdict, dataclass

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from cityos.gis.collections import COLLECTIONS
from cityos.gis.declarations import layers
from cityos.platform.db.connection import connect

router = APIRouter(prefix="/apps/data", tags=["apps"])

#: the layers the apps load whole: each a public OGC collection, declared with ``apps=True`` (base layers) or
#: with a staff-map ``style`` (:mod:`cityos.gis.layers`)
LAYERS = tuple(layer.id for layer in layers().values() if layer.ogc and (layer.apps or layer.style))
#: how the staff map draws each declared layer that has a style (its layer list and legend come from here)
STYLES = {layer.id: asdict(layer.style) for layer in layers().values() if layer.ogc and layer.style}
IMMUTABLE = "public, max-age=31536000, immutable"
GEOJSON = "application/geo+json"


@dataclass(frozen=True)
class Built:
    """One layer as served: its version, body and gzip body."""

    version: str
    body: bytes
    gz: bytes
    at: float


_built: dict[str, Built] = {}
_lock = threading.Lock()


def layer_geojson(conn, layer: str) -> dict:
    """The whole public layer ``layer`` as a GeoJSON FeatureCollection (coordinates to 6 decimals, ~0.1 m)."""
    c = COLLECTIONS[layer]
    columns = ", ".join(c.properties)
    rows = conn.execute(f"select {c.id_column}::text, st_asgeojson(geom, 6), {columns} from {c.table} "
                        f"order by {c.id_column}").fetchall()
    features = [{"type": "Feature", "id": r[0], "geometry": json.loads(r[1]) if r[1] else None,
                 "properties": dict(zip(c.properties, r[2:], strict=True))} for r in rows]
    return {"type": "FeatureCollection", "features": features}


def _build(layer: str) -> Built:
    with connect(autocommit=True) as conn:
        data = layer_geojson(conn, layer)
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    version = hashlib.sha256(body).hexdigest()[:16]
    return Built(version, body, gzip.compress(body, 6), time.monotonic())


def current(layer: str, refresh_s: float) -> Built:
    """The layer as served now, rebuilt when older than ``refresh_s`` (one rebuild at a time)."""
    built = _built.get(layer)
    if built and time.monotonic() - built.at < refresh_s:
        return built
    with _lock:
        built = _built.get(layer)
        if built and time.monotonic() - built.at < refresh_s:
            return built
        try:
            _built[layer] = _build(layer)
        except Exception:
            if built is None:
                raise
            _built[layer] = Built(built.version, built.body, built.gz, time.monotonic())  # keep serving the last
        return _built[layer]


def _answer(request: Request, body: bytes, gz: bytes, etag: str, cache_control: str, media: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(gz, media_type=media, headers={**headers, "Content-Encoding": "gzip"})
    return Response(body, media_type=media, headers=headers)


def manifest(refresh_s: float) -> dict:
    """Each layer's current versioned URL, and the staff map's styles of the declared layers."""
    return {"layers": {layer: f"/apps/data/{layer}.{current(layer, refresh_s).version}.geojson" for layer in LAYERS},
            "styles": STYLES}


@router.get("/manifest.json", include_in_schema=False)
def get_manifest(request: Request) -> Response:
    body = json.dumps(manifest(request.app.state.settings.app_data_refresh_s)).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
    return _answer(request, body, gzip.compress(body), etag, "no-cache", "application/json")


@router.get("/{name}", include_in_schema=False)
def get_layer(name: str, request: Request) -> Response:
    layer, _, rest = name.partition(".")
    version, _, ext = rest.partition(".")
    if layer not in LAYERS or ext != "geojson":
        raise HTTPException(404, "no such app data file")
    built = current(layer, request.app.state.settings.app_data_refresh_s)
    cache_control = IMMUTABLE if version == built.version else "no-cache"
    return _answer(request, built.body, built.gz, f'"{built.version}"', cache_control, GEOJSON)
