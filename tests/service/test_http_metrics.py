"""service.http_metrics against prometheus-fastapi-instrumentator, whose metrics it replaces: the
same requests to two gateway apps, one with each, give the same samples (every route of the app,
its mounts, unknown paths, a wrong method, a trailing-slash redirect, the scrape itself)."""

import re

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from starlette.middleware import Middleware

from core.settings import Settings
from service.app import create_app
from service.http_metrics import HttpMetrics
from tests.ganserve.client import run_async
from tests.prometheus import Samples, parse
from tests.service.factories import image_bytes

UNREACHABLE = "redis://127.0.0.1:1/0"  # routing is what counts: a route needing Redis says 503
EXTRA = [
    ("GET", "/"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/openapi.json"),
    ("GET", "/static/app.js"),
    ("GET", "/static/swagger-ui/swagger-ui.css"),
    ("GET", "/static/missing.js"),
    ("GET", "/metrics"),
    ("GET", "/nope"),
    ("GET", "/nope/metrics"),
    ("GET", "/v1/nope"),
    ("GET", "/v1/jobs/"),  # redirected to /v1/jobs
    ("PUT", "/v1/models"),  # 405
    ("HEAD", "/healthz"),
]


def _app(tmp_path, registry: CollectorRegistry, reference: bool):
    """A gateway app counting into `registry`: with the instrumentator when `reference`."""
    app = create_app(Settings(data_dir=tmp_path, redis_url=UNREACHABLE))
    for index, middleware in enumerate(app.user_middleware):
        if middleware.cls is HttpMetrics:
            app.user_middleware[index] = (
                Middleware(
                    PrometheusInstrumentatorMiddleware,
                    registry=registry,
                    excluded_handlers=["/metrics"],
                )
                if reference
                else Middleware(HttpMetrics, registry=registry)
            )
    return app


def _requests(app) -> list[tuple[str, str]]:
    """One request per method of every route in the OpenAPI document (path parameters filled
    in), and the `EXTRA` ones."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        concrete = re.sub(r"\{(\w+)\}", lambda m: "0" if m.group(1) == "k" else "x1", path)
        found.extend((method.upper(), concrete) for method in operations)
    return found + EXTRA


async def _send(app, requests: list[tuple[str, str]]) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    http = httpx.AsyncClient(transport=transport, base_url="http://test")
    async with app.router.lifespan_context(app), http:
        for method, path in requests:
            await http.request(method, path)
        files = {"image": ("in.png", image_bytes(), "image/png")}
        await http.post("/v1/translations", files=files, data={"model": "m"})


def _counted(registry: CollectorRegistry) -> Samples:
    """The samples, durations' sums and buckets left out (they differ from run to run)."""
    samples = parse(generate_latest(registry).decode())
    return {
        key: value
        for key, value in samples.items()
        if not (key[0].startswith("http_request_duration") and not key[0].endswith("_count"))
        and not key[0].endswith("_created")
    }


def test_the_same_samples_as_the_instrumentator(tmp_path):
    registries = {kind: CollectorRegistry() for kind in ("reference", "ours")}
    for kind, registry in registries.items():
        app = _app(tmp_path / kind, registry, reference=kind == "reference")
        run_async(_send(app, _requests(app)))
    reference, ours = (_counted(r) for r in registries.values())
    assert len(reference) > 100
    assert ours == reference
    handlers = {dict(labels).get("handler") for _, labels in ours}
    assert {"/v1/jobs/{job_id}", "/static", "/v1/jobs/", "none"} <= handlers
    assert not any(h and "/metrics" in h for h in handlers)
