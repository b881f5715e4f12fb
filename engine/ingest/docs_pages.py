"""``/docs`` (Swagger UI) and ``/redoc`` served from assets the ``fastapi-offline`` package ships, under
``/docs/static``: FastAPI's own pages load their JavaScript and CSS from a CDN, so they were blank offline (and
told the CDN who reads our API documentation)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
STATIC_URL = "/docs/static"
#: Swagger UI's validator badge would send the document to validator.swagger.io: off.
_SWAGGER_PARAMETERS = {"validatorUrl": None, "persistAuthorization": True}


def assets_dir() -> Path:
    """The directory of the bundled Swagger UI and ReDoc files (``swagger-ui-bundle.js``, ``swagger-ui.css``,
    ``redoc.standalone.js``, ``favicon.png``).  Raises :class:`ModuleNotFoundError` without ``fastapi-offline``."""
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc`` and their assets; ``app`` must be made with ``docs_url=None, redoc_url=None``
    (FastAPI's CDN pages).  The pages are left out of the OpenAPI document."""
    app.mount(STATIC_URL, StaticFiles(directory=assets_dir()), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            swagger_ui_parameters=_SWAGGER_PARAMETERS,
        )

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
