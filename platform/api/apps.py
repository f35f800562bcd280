"""Serves the living-lab web apps (static files of ``apps/``) under /apps, and their configuration."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles

APPS_DIR = Path(__file__).resolve().parents[2] / "apps"
#: the folders of apps/ that are served (never node_modules or build scripts)
SERVED = ("shared", "vendor", "hydrants", "snowplows", "energy", "staff")

router = APIRouter(tags=["apps"])


@router.get("/apps/config.json", include_in_schema=False)
def config(request: Request) -> dict:
    """What the apps need to know of the deployment (basemap tiles; empty = offline style)."""
    settings = request.app.state.settings
    return {"basemap_tiles": settings.basemap_tiles, "basemap_attribution": settings.basemap_attribution}


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
