"""Serves the living-lab web apps (static files of ``apps/``) under /apps, their configuration, the landing
page (``/`` and ``/apps/``, Japanese first: each app, the API docs and the open-data portal) and the favicon."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

APPS_DIR = Path(__file__).resolve().parents[2] / "apps"
#: the folders of apps/ that are served (never node_modules or build scripts)
SERVED = ("shared", "vendor", "hydrants", "snowplows", "energy", "staff")

router = APIRouter(tags=["apps"])


def _portal_url(settings) -> str:
    return settings.ckan_url or f"http://127.0.0.1:{settings.ckan_port}"


@router.get("/", include_in_schema=False)
@router.get("/apps/", include_in_schema=False)
def landing(request: Request) -> HTMLResponse:
    """The landing page: the apps, the API documentation and the open-data portal."""
    page = (APPS_DIR / "index.html").read_text(encoding="utf-8")
    portal = html.escape(_portal_url(request.app.state.settings), quote=True)
    return HTMLResponse(page.replace("{{OPENDATA_URL}}", portal), headers={"Cache-Control": "no-cache"})


@router.get("/apps", include_in_schema=False)
def apps_root() -> RedirectResponse:
    return RedirectResponse("/apps/", status_code=308)


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    return FileResponse(APPS_DIR / "shared" / "favicon.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/apps/config.json", include_in_schema=False)
def config(request: Request) -> dict:
    """What the apps need to know of the deployment (basemap tiles; empty = offline style)."""
    settings = request.app.state.settings
    return {"basemap_tiles": settings.basemap_tiles, "basemap_attribution": settings.basemap_attribution,
            "opendata_url": _portal_url(settings)}


class NoVaryOrigin:
    """Pure ASGI middleware (outside CORS): answers under /apps/ carry no ``Vary: Origin``.

    The apps' files and data are the same for every origin, but the CORS middleware marks every answer
    ``Vary: Origin``. A service worker that cached a file at install (a request without ``Origin``) then
    missed it for the page's module scripts (requests with ``Origin``), so an offline reload after one
    visit found nothing."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/apps/"):
            return await self.app(scope, receive, send)

        async def strip(message) -> None:
            if message["type"] == "http.response.start":
                headers = []
                for name, value in message.get("headers", []):
                    if name.lower() == b"vary":
                        kept = [v.strip() for v in value.split(b",") if v.strip().lower() != b"origin"]
                        if not kept:
                            continue
                        value = b", ".join(kept)
                    headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, strip)


def mount_apps(app: FastAPI) -> None:
    """Mount each app folder (after the routers, so /apps/config.json is answered by the route)."""
    for name in SERVED:
        folder = APPS_DIR / name
        if folder.is_dir():
            app.mount(f"/apps/{name}", StaticFiles(directory=folder, html=True), name=f"apps-{name}")
