"""NGSI-LD errors as ProblemDetails (IETF RFC 7807), with the standard's error types.

Every route of the NGSI-LD router uses :class:`NgsiRoute`, which turns :class:`NgsiError`, FastAPI's
request-validation errors and HTTP exceptions (a missing token, a lacking scope) into ProblemDetails.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"

#: The standard's error types and their HTTP status.
STATUS = {
    "InvalidRequest": 400, "BadRequestData": 400, "TooComplexQuery": 403, "TooManyResults": 403,
    "ResourceNotFound": 404, "AlreadyExists": 409, "OperationNotSupported": 422, "LdContextNotAvailable": 503,
    "NoMultiTenantSupport": 501, "NotAcceptable": 406, "InternalError": 500,
}


class NgsiError(Exception):
    """An error of one of the standard's types (``BadRequestData``, ``ResourceNotFound`` ...)."""

    def __init__(self, kind: str, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail
        self.status = status or STATUS[kind]

    def body(self) -> dict:
        """The ProblemDetails object."""
        return {"type": ERRORS + self.kind, "title": self.kind, "status": self.status, "detail": self.detail}


def problem(kind: str, detail: str, status: int | None = None, headers: dict | None = None) -> JSONResponse:
    """A ProblemDetails response."""
    err = NgsiError(kind, detail, status)
    return JSONResponse(err.body(), status_code=err.status, media_type="application/json", headers=headers)


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


class NgsiRoute(APIRoute):
    """A route whose errors are ProblemDetails, as the standard requires of every NGSI-LD answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except NgsiError as err:
                return JSONResponse(err.body(), status_code=err.status, media_type="application/json")
            except RequestValidationError as exc:
                return problem("BadRequestData", _validation_detail(exc))
            except HTTPException as exc:
                kind = "BadRequestData" if exc.status_code == 400 else "InvalidRequest"
                body = {"type": ERRORS + kind if exc.status_code == 400 else "about:blank",
                        "title": kind if exc.status_code == 400 else _TITLES.get(exc.status_code, "Error"),
                        "status": exc.status_code, "detail": str(exc.detail)}
                return JSONResponse(body, status_code=exc.status_code, media_type="application/json",
                                    headers=getattr(exc, "headers", None))

        return route


_TITLES = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 413: "Payload Too Large", 429: "Too Many Requests"}
