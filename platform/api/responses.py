"""Response helpers for the open API: JSON, CSV and GeoJSON bodies with ETag and cache headers."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

import orjson
from fastapi import Request
from fastapi.responses import Response

Format = Literal["json", "csv", "geojson"]
MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8", "geojson": "application/geo+json"}


def _default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def to_json(data: object) -> bytes:
    return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)


def to_csv(rows: Sequence[dict]) -> bytes:
    """CSV with a header row (UTF-8 with BOM so that spreadsheet programs read Japanese text)."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=[k for k in rows[0] if k != "geometry"], extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()})
    return ("\ufeff" + buf.getvalue()).encode()


def to_geojson(rows: Sequence[dict], lon: str = "lon", lat: str = "lat") -> bytes:
    """A FeatureCollection of point features from rows with ``lon``/``lat`` columns."""
    features = [{"type": "Feature",
                 "geometry": {"type": "Point", "coordinates": [r[lon], r[lat]]} if r.get(lon) is not None else None,
                 "properties": {k: v for k, v in r.items() if k not in (lon, lat)}} for r in rows]
    return to_json({"type": "FeatureCollection", "features": features})


def render(rows: Sequence[dict], fmt: Format, extra: dict | None = None) -> bytes:
    """``rows`` as the body of an answer in ``fmt``."""
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "geojson":
        return to_geojson(rows)
    return to_json({"items": rows, **(extra or {})})


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@dataclass(frozen=True)
class Encoded:
    """An answer encoded once (plain and gzip) to be sent many times (:mod:`cityos.platform.api.snapshots`)."""

    body: bytes
    gzipped: bytes
    media_type: str
    etag: str

    @classmethod
    def of(cls, rows: Sequence[dict], fmt: Format, extra: dict | None = None) -> Encoded:
        body = render(rows, fmt, extra)
        return cls(body, gzip.compress(body, compresslevel=6), MEDIA[fmt], _etag(body))

    def response(self, request: Request, *, max_age: int) -> Response:
        """The answer for ``request``: 304 to a current ETag, gzip when accepted, else plain."""
        headers = {"ETag": self.etag, "Cache-Control": f"public, max-age={max_age}", "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(self.gzipped, media_type=self.media_type, headers={**headers, "Content-Encoding": "gzip"})
        return Response(self.body, media_type=self.media_type, headers=headers)


def respond(request: Request, rows: Sequence[dict], fmt: Format, *, max_age: int, extra: dict | None = None
            ) -> Response:
    """Render ``rows`` in ``fmt`` with an ETag; ``304`` when the client's copy is current."""
    body = render(rows, fmt, extra)
    etag = _etag(body)
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=MEDIA[fmt], headers=headers)
