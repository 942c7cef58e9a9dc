"""The web page: `GET /` and its static assets, served by the gateway without an API key."""

from __future__ import annotations

import re

import pytest

from service.web.routes import STATIC_DIR

VIEWS = ("Translate", "Sample", "Inspect", "Train", "Models", "Jobs")
CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".svg": ("image/svg+xml",),
    ".png": ("image/png",),
}


def _references(html: str) -> list[str]:
    return re.findall(r'\b(?:src|href)="([^"]*)"', html)


def test_index_is_html_with_its_six_views(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for view in VIEWS:
        assert f">{view}</button>" in html, view
    assert 'aria-live="polite"' in html


@pytest.mark.parametrize(
    "control",
    [
        "translate-model",
        "translate-file",
        "sample-model",
        "sample-count",
        "sample-seed",
        "sample-class",
        "sample-truncation",
        "dataset-file",
        "dataset-name",
        "dataset-kind",
        "train-dataset",
        "train-family",
        "train-steps",
        "train-size",
        "train-batch",
        "inspect-model",
        "inspect-file",
        "inspect-input",
        "inspect-class",
        "train-extra",
        "api-key",
    ],
)
def test_controls_are_labelled(client, control):
    html = client.get("/").text
    assert f'<label for="{control}">' in html
    assert f'id="{control}"' in html


def test_every_label_points_at_a_control(client):
    html = client.get("/").text
    for target in re.findall(r'<label for="([^"]+)"', html):
        assert f'id="{target}"' in html, target


def test_references_are_local_and_served(client):
    html = client.get("/").text
    references = _references(html)
    assert "/static/app.js" in references
    assert "/static/style.css" in references
    for ref in references:
        # the page's assets, its anchors, and the API docs the gateway serves (offline)
        assert ref.startswith(("/static/", "#")) or ref in ("/docs", "/redoc"), ref
        if ref.startswith("#"):
            continue
        response = client.get(ref)
        assert response.status_code == 200, ref
        suffix = ref[ref.rfind(".") :]
        expected = CONTENT_TYPES.get(suffix)
        if expected:
            assert response.headers["content-type"].startswith(expected), ref


def test_no_remote_urls_in_the_assets():
    # the page's own files; vendor/ (ReDoc's bundle) is checked in a browser, where no request
    # of /redoc may leave the machine (tests/browser/test_api_docs.py)
    for path in (p for p in STATIC_DIR.iterdir() if p.is_file()):
        text = path.read_text(encoding="utf-8")
        remote = re.findall(r"(?:src|href)=\"?https?://|@import\s+url\(\s*['\"]?https?://", text)
        assert not remote, path.name
        assert "cdn" not in text.lower() or path.suffix == ".js", path.name


def test_missing_asset_is_404(client):
    assert client.get("/static/nope.js").status_code == 404


def test_page_is_outside_the_api_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths


def test_page_needs_no_key_on_a_keyed_gateway(keyed_gateway):
    with keyed_gateway.client() as http:
        page = http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        script = http.get("/static/app.js")
        assert script.status_code == 200
        assert "Authorization" in script.text
        assert http.get("/static/style.css").status_code == 200
        assert http.get("/v1/models").status_code == 401
