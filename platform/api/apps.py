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


def mount_apps(app: FastAPI) -> None:
    """Mount each app folder (after the routers, so /apps/config.json is answered by the route)."""
    for name in SERVED:
        folder = APPS_DIR / name
        if folder.is_dir():
            app.mount(f"/apps/{name}", StaticFiles(directory=folder, html=True), name=f"apps-{name}")
