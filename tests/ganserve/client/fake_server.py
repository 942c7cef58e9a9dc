"""A scripted stand-in for the ganserve API, for `httpx.MockTransport`: each route answers the
responses (or raises the transport errors) queued for it, in order, the last one again and
again; every request is recorded."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import httpx
from PIL import Image

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def problem(status: int, code: str, detail: str = "It went wrong.", **extra: Any) -> httpx.Response:
    """An RFC 9457 problem response, as the server sends them (`headers` go to the headers)."""
    headers = extra.pop("headers", {})
    body = {
        "type": f"urn:ganserve:problem:{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/problem+json", **headers},
    )


def job(job_id: str = "j1", status: str = "queued", **fields: Any) -> dict[str, Any]:
    """A job's JSON."""
    return {
        "id": job_id,
        "url": f"/v1/jobs/{job_id}",
        "kind": fields.pop("kind", "translation"),
        "status": status,
        "progress": fields.pop("progress", 1.0 if status == "succeeded" else 0.0),
        "result": fields.pop("result", None),
        "error": fields.pop("error", None),
        **fields,
    }


def png(width: int = 4, height: int = 3, colour: tuple[int, int, int] = (10, 20, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeServer:
    """Routes by (method, path); see the module doc."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *answers: Answer) -> FakeServer:
        self.routes.setdefault((method, path), []).extend(answers)
        return self

    def json(self, method: str, path: str, body: Any, status: int = 200) -> FakeServer:
        return self.on(method, path, httpx.Response(status, json=body))

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return problem(404, "not_found", f"No route {request.method} {request.url.path}.")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)
