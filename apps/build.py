"""Builds the apps' vendor folder from npm, copied next to the apps (no CDN at run time): MapLibre GL JS
(the maps), Swagger UI and ReDoc (``/docs`` and ``/redoc``). axe-core stays in node_modules for the tests.

``ensure_built()`` runs ``npm ci`` (``npm install`` without a lock file) when the vendor copy is
missing or older than package.json, installing Debian's nodejs/npm first if the machine has none.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

APPS = Path(__file__).resolve().parent
VENDOR = APPS / "vendor" / "maplibre-gl"
DIST_FILES = ("maplibre-gl.mjs", "maplibre-gl-shared.mjs", "maplibre-gl-worker.mjs", "maplibre-gl.css")
#: vendor folder -> (npm package, files copied from it, its licence file)
OTHERS = {
    "swagger-ui": ("swagger-ui-dist", ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"), "LICENSE"),
    "redoc": ("redoc", ("bundles/redoc.standalone.js",), "LICENSE"),
}
#: ReDoc's bundle shows a logo from Redocly's CDN; a page that must work offline under a strict CSP gets an
#: empty image instead (ReDoc hides an image that fails to load)
PATCHES = {"redoc.standalone.js": (b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"data:,")}
#: axe-core, injected by the accessibility tests (never served)
AXE = APPS / "node_modules" / "axe-core" / "axe.min.js"


def _npm() -> str:
    npm = shutil.which("npm")
    if npm:
        return npm
    if os.geteuid() != 0:
        raise RuntimeError("npm is needed to bundle MapLibre GL JS: `sudo apt-get install -y nodejs npm`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nodejs", "npm"], check=True, env=env)
    return shutil.which("npm") or "npm"


def ensure_built() -> Path:
    """The vendor folder, built if needed; idempotent and quick when up to date."""
    stamp = VENDOR / ".built"
    complete = all((APPS / "vendor" / folder).is_dir() for folder in OTHERS) and AXE.exists()
    if complete and stamp.exists() and stamp.stat().st_mtime >= (APPS / "package.json").stat().st_mtime:
        return VENDOR
    command = "ci" if (APPS / "package-lock.json").exists() else "install"
    subprocess.run([_npm(), command, "--no-audit", "--no-fund", "--ignore-scripts"], cwd=APPS, check=True,
                   capture_output=True)
    VENDOR.mkdir(parents=True, exist_ok=True)
    dist = APPS / "node_modules" / "maplibre-gl" / "dist"
    for name in DIST_FILES:
        shutil.copy2(dist / name, VENDOR / name)
    shutil.copy2(APPS / "node_modules" / "maplibre-gl" / "LICENSE.txt", VENDOR / "LICENSE.txt")
    for folder, (package, files, licence) in OTHERS.items():
        target = APPS / "vendor" / folder
        target.mkdir(parents=True, exist_ok=True)
        for name in (*files, licence):
            shutil.copy2(APPS / "node_modules" / package / name, target / Path(name).name)
            if (patch := PATCHES.get(Path(name).name)) is not None:
                copied = target / Path(name).name
                copied.write_bytes(copied.read_bytes().replace(*patch))
    stamp.touch()
    return VENDOR


if __name__ == "__main__":
    print(ensure_built())
