"""Interactive API documentation served offline: Swagger UI at `/docs`, ReDoc at `/redoc`.

FastAPI's own pages load their scripts and styles from a CDN, so on a machine that reaches no
internet they are blank. Here every asset comes from this gateway: Swagger UI from the installed
`swagger-ui-bundle-v2` package (Apache 2.0), ReDoc's standalone bundle vendored under
`service/web/static/vendor/redoc/` (redoc 2.5.4 from npm, MIT, its licence beside it), with
ReDoc's Google Fonts left out and the one asset the bundle fetched from Redocly's CDN (its
attribution logo, `logo-mini.svg`) pointed at a local stand-in.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

SWAGGER_ASSETS = "/static/swagger-ui"
REDOC_SCRIPT = "/static/vendor/redoc/redoc.standalone.js"
FAVICON = "/static/favicon.svg"


def install_api_docs(app: FastAPI) -> None:
    """Serve `/docs` (Swagger UI) and `/redoc` from local assets (the app is built with
    `docs_url=None, redoc_url=None`)."""
    app.mount(SWAGGER_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            oauth2_redirect_url=redirect_url,
            swagger_js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
            swagger_favicon_url=FAVICON,
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            redoc_js_url=REDOC_SCRIPT,
            redoc_favicon_url=FAVICON,
            with_google_fonts=False,
        )
