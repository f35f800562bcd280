"""Scoped API tokens for staff and services, checked on every protected route and audited.

Tokens are random strings shown once; only their SHA-256 hash is stored. A route declares the
scope it needs with ``Depends(require_scope("devices:write"))``; the caller is written to the
audit log together with the action.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg.types.json import Jsonb

from cityos.platform.db.connection import aconnect

#: Every scope a token may carry.
SCOPES = {
    "devices:read", "devices:write",          # device registry and credentials
    "deadletters:read", "deadletters:write",  # inspect and replay rejected messages
    "registry:read",                          # raw resident-registry rows (staff only)
    "consent:write",                          # record consent on behalf of residents
    "publish",                                # run open-data publishing
    "hydrants:moderate",                      # approve residents' hydrant reports (staff, fire crews)
    "requests:manage",                        # answer and close citizens' dataset requests
    "telemetry:read",                         # every device's readings through the standard APIs (audited)
    "telemetry:write",                        # producers writing readings over HTTP (NGSI-LD upserts)
    "sta:read",                               # SensorThings API: the city's non-public vehicles and sensors
    "sta:write",                              # SensorThings API: create Observations as a service
    "admin",                                  # everything
}

#: ``household:<device_id>``: a resident's own view of their home's meter (the energy dashboard).
HOUSEHOLD_PREFIX = "household:"

bearer = HTTPBearer(auto_error=False)


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: psycopg.Connection, name: str, scopes: list[str],
                 expires_at: datetime | None = None) -> str:
    """Create a token with ``scopes``; returns the token (shown once, stored hashed)."""
    unknown = {s for s in scopes if s not in SCOPES and not s.startswith(HOUSEHOLD_PREFIX)}
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}; known: {', '.join(sorted(SCOPES))}")
    token = "cty_" + secrets.token_urlsafe(32)
    conn.execute("insert into core.api_tokens (token_hash, name, scopes, expires_at) values (%s, %s, %s, %s)",
                 (hash_token(token), name, scopes, expires_at))
    return token


@dataclass(frozen=True)
class Principal:
    """Who is calling: a named token with scopes."""

    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        if scope == HOUSEHOLD_PREFIX:  # any household token
            return any(s.startswith(HOUSEHOLD_PREFIX) for s in self.scopes)
        return "admin" in self.scopes or scope in self.scopes

    @property
    def households(self) -> list[str]:
        """The meters this principal may see as their own."""
        return sorted(s.removeprefix(HOUSEHOLD_PREFIX) for s in self.scopes if s.startswith(HOUSEHOLD_PREFIX))


async def lookup_token(database_url: str, token: str) -> Principal | None:
    """The principal of a valid (unexpired, unrevoked) ``token``, or None."""
    async with aconnect(database_url, autocommit=True) as conn:
        cur = await conn.execute(
            "select name, scopes from core.api_tokens where token_hash = %s and revoked_at is null "
            "and (expires_at is null or expires_at > now())", (hash_token(token),))
        row = await cur.fetchone()
    return Principal(row[0], frozenset(row[1])) if row else None


async def audit(database_url: str, principal: Principal | None, action: str, resource: str,
                detail: dict | None = None, client_addr: str | None = None, subject: str = "",
                reason: str = "") -> None:
    """Append one entry to the audit log (entry point ``api``; who: the token's name)."""
    from cityos.platform.audit import INSERT

    async with aconnect(database_url, autocommit=True) as conn:
        await conn.execute(INSERT, (
            principal.name if principal else "anonymous", ",".join(sorted(principal.scopes)) if principal else "",
            "api", action, resource, subject, reason, Jsonb(detail or {}), client_addr))


async def audit_subject(request: Request, where: str, principal: Principal) -> str:
    """The subject of a request as :class:`cityos.platform.audit.Access` says where to find it."""
    kind, _, name = where.partition(":")
    if kind == "path":
        return str(request.path_params.get(name, ""))
    if kind == "query":
        return request.query_params.get(name, "") or f"{name}: (default)"
    if kind == "body":
        try:
            body = await request.json()
        except ValueError:
            return ""
        return str(body.get(name, "")) if isinstance(body, dict) else ""
    if where == "households":
        return ",".join(principal.households)
    return where


def caller_address(request: Request) -> str | None:
    """The caller's address as the access middleware resolved it (forwarded headers only from trusted
    proxies), else the peer."""
    return request.scope.get("state", {}).get("client_addr") or (request.client.host if request.client else None)


def request_detail(request: Request, scope: str) -> dict:
    """What the audit log keeps of a request: the scope used, the query parameters and path parameters
    (which district, which subject, how many rows), never headers or bodies."""
    detail: dict = {"scope": scope}
    if request.query_params:
        detail["query"] = {k: request.query_params.getlist(k) if len(request.query_params.getlist(k)) > 1 else v
                           for k, v in request.query_params.items()}
    if request.path_params:
        detail["path"] = {k: str(v) for k, v in request.path_params.items()}
    return detail


def require_scope(scope: str):
    """A FastAPI dependency: the caller must present a bearer token with ``scope``; audited, with the
    request's parameters, and so is every presented token that is unknown, expired or revoked.

    The row of an admitted call names the token (who), the route (what), the subject and the reason the
    route declares in :data:`cityos.platform.audit.PERSONAL`, and is written before the route runs."""

    async def dependency(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
        if credentials is None:
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        settings = request.app.state.settings
        detail = request_detail(request, scope)
        principal = await lookup_token(settings.database_url, credentials.credentials)
        if principal is None:
            await audit_invalid_token(request, credentials.credentials, detail)
            raise HTTPException(401, "invalid or expired token", headers={"WWW-Authenticate": "Bearer"})
        if not principal.allows(scope):
            await audit(settings.database_url, principal, "denied", request.url.path, detail, caller_address(request))
            raise HTTPException(403, f"this token lacks the scope {scope!r}")
        await audit_admitted(request, principal, detail)
        return principal

    return dependency


async def audit_invalid_token(request: Request, token: str, detail: dict) -> None:
    """The row of a presented token that is unknown, expired or revoked (which one: a short hash prefix,
    enough to tell repeated attempts apart)."""
    await audit(request.app.state.settings.database_url, None, "invalid_token", request.url.path,
                {**detail, "token_hash_prefix": hash_token(token)[:12]}, caller_address(request))


async def audit_admitted(request: Request, principal: Principal, detail: dict) -> None:
    """The row of an admitted call: the token (who), the route (what), and the subject and reason the route
    declares in :data:`cityos.platform.audit.PERSONAL`."""
    from cityos.platform.audit import PERSONAL

    route = request.scope.get("route")
    entry = f"{request.method} {getattr(route, 'path', request.url.path)}"
    access = PERSONAL.get(f"api:{entry}")
    subject = await audit_subject(request, access.subject, principal) if access else ""
    await audit(request.app.state.settings.database_url, principal, entry, request.url.path, detail,
                caller_address(request), subject=subject, reason=access.why if access else "")
