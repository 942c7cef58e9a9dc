"""The gateway's HTTP metrics: a small ASGI middleware that counts every request.

It writes the metrics prometheus-fastapi-instrumentator's default instrumentation writes, with
the same names, help texts, labels and buckets (so dashboards and alerts read them unchanged):
`http_requests_total{method,status,handler}` (status grouped as `2xx`, `4xx`, ...),
`http_request_size_bytes{handler}` and `http_response_size_bytes{handler}` (summaries of the
`Content-Length` headers, 0 without one), `http_request_duration_highr_seconds` (no labels,
many buckets) and `http_request_duration_seconds{method,handler}` (few buckets). `handler` is the
route's path template (`/v1/jobs/{job_id}`), `none` for a path no route serves; requests whose
handler contains `/metrics` are not counted.

The instrumentator looks the route up before the request runs, trying every route of the app
(most of the middleware's cost on a small request). Here the route is read after the request
ran, from what the router left in the ASGI scope; only requests no API route answered (static
files, 404s, redirects) are looked up the instrumentator's way.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, Summary
from prometheus_fastapi_instrumentator.routing import get_route_name
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXCLUDED = "/metrics"  # a handler containing it is not counted (the scrape itself)
HIGHR_BUCKETS = (
    *(0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5),
    *(7.5, 10, 30, 60, float("inf")),
)
LOWR_BUCKETS = (0.1, 0.5, 1, float("inf"))
SIZE_NOTE = "Only value of header is respected. Otherwise ignored. No percentile calculated. "


class HttpMetrics:
    """ASGI middleware writing the HTTP request metrics (see the module doc) into `registry`."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.total = Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ("method", "status", "handler"),
            registry=registry,
        )
        self.in_size = Summary(
            "http_request_size_bytes",
            f"Content length of incoming requests by handler. {SIZE_NOTE}",
            ("handler",),
            registry=registry,
        )
        self.out_size = Summary(
            "http_response_size_bytes",
            f"Content length of outgoing responses by handler. {SIZE_NOTE}",
            ("handler",),
            registry=registry,
        )
        self.latency_highr = Histogram(
            "http_request_duration_highr_seconds",
            "Latency with many buckets but no API specific labels. Made for more accurate "
            "percentile calculations. ",
            buckets=HIGHR_BUCKETS,
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler. Made to be only used if aggregation by "
            "handler is important. ",
            ("method", "handler"),
            buckets=LOWR_BUCKETS,
            registry=registry,
        )
        self._children: dict[tuple[str, str, str], tuple[Any, Any, Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = scope.get("root_path", "")  # a mount changes it as it routes
        status, out_size = 500, 0

        async def counting_send(message: Message) -> None:
            nonlocal status, out_size
            if message["type"] == "http.response.start":
                status = int(message["status"])
                out_size = _content_length(message.get("headers", ()))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            handler, templated = route_template(scope, root_path)
            if EXCLUDED not in handler:
                duration = max(time.perf_counter() - started, 0.0)
                in_size = _content_length(scope.get("headers", ()))
                label = handler if templated else "none"
                self._observe(scope["method"], status, label, in_size, out_size, duration)

    def _observe(
        self, method: str, status: int, handler: str, in_size: int, out_size: int, duration: float
    ) -> None:
        key = (method, f"{str(status)[0]}xx", handler)
        children = self._children.get(key)
        if children is None:
            children = (
                self.total.labels(*key),
                self.in_size.labels(handler),
                self.out_size.labels(handler),
                self.latency.labels(method, handler),
            )
            self._children[key] = children
        total, incoming, outgoing, latency = children
        total.inc()
        incoming.observe(in_size)
        outgoing.observe(out_size)
        self.latency_highr.observe(duration)
        latency.observe(duration)


def route_template(scope: Scope, root_path: str) -> tuple[str, bool]:
    """The path template of the route that answered a request that ran (`scope` as the app
    left it; `root_path` as it came in) as the instrumentator names it, and True; or the
    request's path and False when no route serves it."""
    route = scope.get("route")
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    if route is not None and getattr(context, "original_route", None) is route:
        return context.path, True  # a route of an included router: the path with its prefix
    if route is not None and context is None and isinstance(getattr(route, "path", None), str):
        return route.path, True  # a route of the app itself
    request = Request({**scope, "root_path": root_path})
    name = get_route_name(request, should_include_root_path=False)
    return (name, True) if name else (request.url.path, False)


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """The `Content-Length` among raw headers, 0 without one (or with one that is no number)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0
