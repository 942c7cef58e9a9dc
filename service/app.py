"""The gateway application, built by `create_app()`.

Run it with `uvicorn --factory service.app:create_app`.

There is no import-time application or settings object: `create_app` reads the settings through
`core.settings.get_settings()` when none are given, so launchers and tests set the
environment first. Creating the app opens no connection (the Redis client connects lazily, the
Celery app only names tasks) and writes nothing; the storage folders are created at startup.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata

import redis
import redis.asyncio
from celery import Celery
from fastapi import Depends, FastAPI, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from core.jobs import JobStore
from core.logs import configure_logging
from core.settings import Settings, get_settings
from core.storage import Storage
from service.api.deps import require_key
from service.api.routes import (
    datasets,
    families,
    health,
    inspections,
    interpolations,
    job_files,
    jobs,
    model_exports,
    models,
    projections,
    run_outputs,
    samples,
    training_runs,
    translations,
    usage,
    webhooks,
)
from service.api_docs import install_api_docs
from service.errors import install_error_handlers
from service.http_metrics import HttpMetrics
from service.idempotency import Idempotency
from service.job_changes import JobChanges
from service.metrics import QueueCollector
from service.middleware import ApiKeyGate, BodyLimit
from service.openapi import install_openapi, operation_id
from service.prefer_wait import PreferWait
from service.rate_limits import RateLimits
from service.request_log import RequestLog
from service.security import ANONYMOUS
from service.uvicorn_server import METRICS_VARIABLE, settings_or_exit
from service.web import routes as web

log = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
JSON_BODY_LIMIT = 1024 * 1024  # JSON requests
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small form fields beside a file

DESCRIPTION = """\
A self-hosted GAN image service: image-to-image translation (pix2pix), sampling (U-Net GAN,
Progressive GAN), the latent space of sampling models (latents in and out, interpolations,
projections of real images, discriminator-guided sampling) and training runs. Jobs are
queued; poll `GET /v1/jobs/{id}` (optionally with `?wait=S`) and fetch result images from the
URLs in `result.images`.

Errors always have the shape `{"error": {"code": "<snake_case>", "message": "<sentence>"}}`.
When API keys are configured, every `/v1` route needs `Authorization: Bearer <key>`.
"""


def _version() -> str:
    try:
        return metadata.version("ganserve")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _celery_app(broker_url: str) -> Celery:
    """A Celery app that only sends tasks by name (the workers package is never imported)."""
    app = Celery("ganserve-gateway", broker=broker_url, set_as_current=False)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_transport_options={"socket_timeout": 5, "socket_connect_timeout": 3},
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
    )
    return app


def _add_metrics(app: FastAPI, store: JobStore) -> None:
    """Prometheus metrics at /metrics (a registry per app, so several apps can share a process):
    the HTTP requests, and the queues' depths and running jobs read from Redis at each scrape.

    Under several gateway processes (`service.uvicorn_server` sets PROMETHEUS_MULTIPROC_DIR),
    each process writes its HTTP metrics to that folder and every scrape adds up all of them."""
    registry = CollectorRegistry()
    registry.register(QueueCollector(store))
    counted = registry
    if METRICS_VARIABLE in os.environ:
        MultiProcessCollector(registry)
        counted = CollectorRegistry()  # this process's own values: in the folder already
    app.add_middleware(HttpMetrics, registry=counted)  # added first: innermost of the gateway's

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway for `settings` (default: `get_settings()`, from the environment)."""
    settings = settings or get_settings()
    redis_url = settings.redis_url or DEFAULT_REDIS_URL
    client = redis.Redis.from_url(
        redis_url, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30
    )
    # job-change notifications (pub/sub) for long-polls and event streams: asyncio, no thread
    pushed = redis.asyncio.Redis.from_url(
        redis_url, socket_connect_timeout=3, health_check_interval=30
    )
    changes = JobChanges(pushed)
    celery_app = _celery_app(redis_url)
    storage = Storage.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        storage.ensure()
        log.info(
            "ganserve gateway: storage %s, API keys %s",
            storage.root.resolve(),
            "required" if settings.key_list else f"off (owner {ANONYMOUS!r})",
        )
        yield
        client.close()
        await changes.close()
        await pushed.aclose()
        celery_app.close()

    app = FastAPI(
        title="ganserve",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served offline by service.api_docs instead of from a CDN
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.redis = client
    app.state.job_changes = changes
    app.state.job_store = JobStore(client, ttl=settings.result_ttl)
    app.state.celery = celery_app
    app.state.storage = storage
    install_error_handlers(app)
    install_openapi(app)

    app.include_router(health.router)
    for module in (
        models,
        model_exports,
        translations,
        samples,
        interpolations,
        projections,
        inspections,
        datasets,
        training_runs,
        families,
        jobs,
        job_files,
        run_outputs,
        usage,
        webhooks,
    ):
        app.include_router(module.router, prefix="/v1", dependencies=[Depends(require_key)])
    app.include_router(web.router)  # the web page at / (outside /v1: no API key needed)
    install_api_docs(app)  # before /static, which would shadow its assets
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")

    _add_metrics(app, app.state.job_store)
    app.add_middleware(PreferWait, changes=changes, keys=settings.key_list)  # after the key check
    app.add_middleware(Idempotency, client=pushed, keys=settings.key_list)  # replays what was sent
    app.add_middleware(
        BodyLimit,
        default=JSON_BODY_LIMIT,
        limits={
            "/v1/translations": (
                settings.max_upload_bytes + FORM_OVERHEAD,
                f"The image is larger than the limit of {settings.max_upload_bytes} bytes.",
            ),
            "/v1/projections": (
                settings.max_upload_bytes + FORM_OVERHEAD,
                f"The image is larger than the limit of {settings.max_upload_bytes} bytes.",
            ),
            "/v1/inspections": (
                2 * settings.max_upload_bytes + FORM_OVERHEAD,  # the image and a pix2pix input
                f"The images are larger than the limit of {settings.max_upload_bytes} bytes each.",
            ),
            "/v1/models": (
                2 * settings.max_model_bytes + FORM_OVERHEAD,  # a .pth and its discriminator
                f"The model files are larger than the limit of {settings.max_model_bytes} bytes "
                "each.",
            ),
            "/v1/datasets": (
                settings.max_archive_bytes + FORM_OVERHEAD,
                f"The archive is larger than the limit of {settings.max_archive_bytes} bytes.",
            ),
        },
    )
    app.add_middleware(
        RateLimits,
        redis_url=redis_url,
        keys=settings.key_list,
        operator_keys=settings.operator_key_list,
        per_key=settings.key_requests_per_second,
        per_operator=settings.operator_requests_per_second,
        overall=settings.requests_per_second,
    )
    app.add_middleware(ApiKeyGate, keys=settings.key_list)  # before any body
    app.add_middleware(RequestLog)  # outermost: every answer has its id and its access line
    return app


def serve() -> FastAPI:
    """The app as `ganserve gateway` and Compose serve it (uvicorn's factory, in each gateway
    process: `service.uvicorn_server`): the process logs in ganserve's format (`core.logs`)
    first."""
    configure_logging()
    settings_or_exit()
    return create_app()
