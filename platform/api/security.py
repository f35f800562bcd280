"""Security headers on every answer, and a Content-Security-Policy for the HTML pages (apps and /docs).

- Every response: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: strict-origin-when-cross-origin``; API answers (not HTML) also get the strictest
  policy, ``default-src 'none'; frame-ancestors 'none'`` (a JSON body opened as a page runs nothing).
- The living-lab apps: scripts only from the platform itself (MapLibre is bundled, no CDN), its web
  workers from ``blob:`` (how MapLibre starts them), inline ``style`` attributes, basemap tiles from the
  configured ``CITYOS_BASEMAP_TILES`` origin, and no framing.
- ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), both bundled from npm like MapLibre (``apps/build.py``) so
  they work without internet: scripts only from the platform, plus Swagger UI's one inline start-up script,
  allowed by its hash (see :func:`docs_page`); ReDoc's search runs in a ``blob:`` worker.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html import escape
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

COMMON = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
          (b"referrer-policy", b"strict-origin-when-cross-origin")]
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
SWAGGER = "/apps/vendor/swagger-ui"
REDOC = "/apps/vendor/redoc"
DOCS_ASSETS = "/apps/shared"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def apps_policy(basemap_tiles: str = "") -> str:
    """The CSP of the apps; the basemap's origin (if any) may serve images and be fetched."""
    tiles = ""
    if basemap_tiles:
        parts = urlsplit(basemap_tiles.replace("{", "").replace("}", ""))
        if parts.scheme in ("http", "https") and parts.netloc:
            tiles = f" {parts.scheme}://{parts.netloc}"
    return ("default-src 'self'; script-src 'self'; worker-src 'self' blob:; child-src 'self' blob:; "
            f"style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:{tiles}; connect-src 'self'{tiles}; "
            "font-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def script_hashes(html: str) -> list[str]:
    """CSP sources (``'sha256-...'``) of the inline scripts of ``html``."""
    return [f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
            for body in _INLINE_SCRIPT.findall(html)]


def _with_language(html: str, lang: str = "en") -> str:
    """The page with its language declared (screen readers; WCAG 3.1.1)."""
    return html.replace("<html>", f'<html lang="{lang}">', 1)


def _with_accessibility(html: str) -> str:
    """The page with our stylesheet after the widget's own (colours that reach WCAG AA contrast) and our
    script that names the controls the widget leaves unnamed (both in ``apps/shared``)."""
    html = html.replace("</head>", f'<link rel="stylesheet" href="{DOCS_ASSETS}/docs.css">\n</head>', 1)
    return html.replace("</body>", f'<script src="{DOCS_ASSETS}/docs.js"></script>\n</body>', 1)


def docs_page(app: FastAPI) -> tuple[str, str]:
    """Swagger UI's page for ``app`` and its CSP (built once: the page never varies). Deep links are off:
    Swagger UI puts each one as a link inside the button that opens the operation (nested controls, which
    screen readers cannot reach)."""
    html = _with_accessibility(_with_language(bytes(get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - docs",
        swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js", swagger_css_url=f"{SWAGGER}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
        swagger_ui_parameters={"deepLinking": False}).body).decode()))
    policy = (f"default-src 'none'; script-src 'self' {' '.join(script_hashes(html))}; "
              "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
              "form-action 'self'; frame-ancestors 'none'")
    return html, policy


#: ReDoc's theme: its default colours that miss WCAG AA contrast (4.5:1) replaced by darker (on white) or
#: lighter (on the dark right panel) ones of the same hue
REDOC_THEME = {
    "colors": {
        "text": {"secondary": "#5f6468"},
        "responses": {"error": {"tabTextColor": "#ff8a80"}, "success": {"tabTextColor": "#6cc070"},
                      "redirect": {"color": "#8a5a00", "tabTextColor": "#ffc870"},
                      "info": {"color": "#1a6b8a", "tabTextColor": "#87ceeb"}},
    },
    "typography": {"code": {"color": "#b71c1c"}},
}


def _with_theme(html: str) -> str:
    """ReDoc's element with :data:`REDOC_THEME` (ReDoc reads a ``theme`` attribute as JSON)."""
    theme = escape(json.dumps(REDOC_THEME, separators=(",", ":")), quote=True)
    return html.replace("<redoc ", f'<redoc theme="{theme}" ', 1)


def redoc_page(app: FastAPI) -> tuple[str, str]:
    """ReDoc's page for ``app`` (no Google Fonts, a theme with enough contrast) and its CSP."""
    html = _with_accessibility(_with_theme(_with_language(bytes(get_redoc_html(
        openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - ReDoc",
        redoc_js_url=f"{REDOC}/redoc.standalone.js", redoc_favicon_url="/favicon.ico",
        with_google_fonts=False).body).decode())))
    policy = ("default-src 'none'; script-src 'self'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
              "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; "
              "form-action 'self'; frame-ancestors 'none'")
    return html, policy


def mount_docs(app: FastAPI) -> None:
    """``/docs`` and ``/redoc`` with their CSPs (create the app with ``docs_url=None, redoc_url=None``)."""

    html, policy = docs_page(app)
    redoc_html, redoc_policy = redoc_page(app)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": policy})

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return HTMLResponse(redoc_html, headers={"Content-Security-Policy": redoc_policy})


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers above to every HTTP response (keeps a route's own CSP)."""

    def __init__(self, app, basemap_tiles: str = ""):
        self.app = app
        self.apps_policy = apps_policy(basemap_tiles).encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        in_apps = scope["path"].startswith("/apps/")

        async def add_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [h for h in COMMON if h[0] not in names]
                if b"content-security-policy" not in names:
                    html = any(n.lower() == b"content-type" and v.startswith(b"text/html") for n, v in headers)
                    headers.append((b"content-security-policy",
                                    self.apps_policy if in_apps or html else API_POLICY.encode()))
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, add_headers)
