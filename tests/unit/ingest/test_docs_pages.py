"""/docs and /redoc load from assets the app serves itself: no CDN, so they work offline (issue 16)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from config.settings import Settings
from engine.runtime.container import Container
from engine.runtime.endpoints import Endpoints

#: Any absolute URL: the pages may only name the app's own paths.
_ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+""")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    from engine.ingest.app import create_app

    # No service is reachable: the pages need none.
    endpoints = Endpoints(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", sqs_endpoint_url=None, s3_endpoint_url=None,
        redis_url=None, stripe_api_base=None, stripe_api_key=None, aws_region="eu-west-1", embedded_aws=True,
    )  # fmt: skip
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("docs")), rate_limit_per_minute=0)
    app: FastAPI = create_app(Container(settings=settings, endpoints=endpoints))
    return TestClient(app)


def _assets(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(r"""url: ?'([^']+)'""", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_page_names_no_other_host_and_every_asset_loads(client: TestClient, page: str) -> None:
    answer = client.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert not _ABSOLUTE_URL.search(html), _ABSOLUTE_URL.search(html)
    assert "cdn" not in html.lower() and "fonts.googleapis" not in html
    assets = _assets(html)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        loaded = client.get(asset)
        assert loaded.status_code == 200, asset
        assert loaded.content, asset
    if page == "/docs":
        assert {"/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css", "/openapi.json"} <= set(assets)
        assert '"validatorUrl": null' in html  # the validator badge would send the document to swagger.io


def test_the_pages_are_not_operations_of_the_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(p.startswith(("/docs", "/redoc")) for p in paths)
