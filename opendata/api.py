"""HTTP API of dataset requests: citizens ask (anonymously, rate-limited), staff answer and close."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from cityos.opendata import dataset_requests as store
from cityos.opendata.dataset_requests import Answer, RequestIn, RequestOut, StaffRequestOut, Status
from cityos.platform.auth import Principal, require_scope
from cityos.platform.db.connection import connect
from cityos.platform.ratelimit import Limits, RateLimiter

router = APIRouter(prefix="/api/v1/dataset-requests", tags=["dataset requests"])
REQUEST_LIMITS = Limits(per_minute=5, per_day=50)
_limiter = RateLimiter()


def _requester(request: Request) -> str:
    salt = request.app.state.settings.database_url  # never published; stable per deployment
    address = request.client.host if request.client else "unknown"
    return hashlib.sha256(f"{salt}|requests|{address}".encode()).hexdigest()[:32]


@router.post("", status_code=201, response_model=RequestOut,
             summary="Request a dataset / データセットのリクエスト")
def create_request(body: RequestIn, request: Request) -> dict:
    """Anyone may ask the city to publish a dataset; at most 5 a minute and 50 a day from one address.
    The contact, if given, is seen by staff only."""
    requester = _requester(request)
    if (retry := _limiter.check(requester, REQUEST_LIMITS)) is not None:
        raise HTTPException(429, "too many requests; please try later", headers={"Retry-After": str(retry)})
    with connect(autocommit=True) as conn:
        request_id = store.create(conn, body, requester)
        return store.get(conn, request_id) or {}


@router.get("", response_model=list[RequestOut], summary="Dataset requests / リクエスト一覧")
def list_requests(status: Status | None = None, limit: int = Query(100, ge=1, le=500),
                  offset: int = Query(0, ge=0, le=1_000_000)) -> list[dict]:
    """Public list, newest first (no contacts)."""
    with connect(autocommit=True) as conn:
        return store.listing(conn, status, limit=limit, offset=offset)


@router.get("/inbox", response_model=list[StaffRequestOut], summary="Dataset requests with contacts (staff)")
def inbox(status: Status | None = "open", limit: int = Query(100, ge=1, le=500),
          offset: int = Query(0, ge=0, le=1_000_000),
          _: Principal = Depends(require_scope("requests:manage"))) -> list[dict]:
    """For staff answering requests: includes the requester's contact (access audited)."""
    with connect(autocommit=True) as conn:
        return store.listing(conn, status, staff=True, limit=limit, offset=offset)


@router.get("/{request_id}", response_model=RequestOut, summary="One dataset request")
def get_request(request_id: int = Path(ge=1, le=2**62)) -> dict:
    with connect(autocommit=True) as conn:
        if (row := store.get(conn, request_id)) is None:
            raise HTTPException(404, f"no dataset request {request_id}")
        return row


@router.post("/{request_id}/answer", response_model=StaffRequestOut, summary="Answer or close a request (staff)")
def answer_request(body: Answer, request_id: int = Path(ge=1, le=2**62),
                   principal: Principal = Depends(require_scope("requests:manage"))) -> dict:
    with connect(autocommit=True) as conn:
        if (row := store.answer(conn, request_id, body.answer, body.status, principal.name)) is None:
            raise HTTPException(404, f"no dataset request {request_id}")
        return row
