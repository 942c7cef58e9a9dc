"""service.idempotency on a small app and a real Redis: what is kept, what is released, and the
fingerprint (the real stack: tests/e2e/test_idempotency.py)."""

import uuid

import httpx
import redis.asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.idempotency import Fingerprint, Idempotency
from tests.ganserve.client import run_async


def _app() -> tuple[Starlette, dict[str, int]]:
    runs = {"flaky": 0, "boom": 0, "count": 0}

    async def count(request: Request) -> JSONResponse:
        await request.body()
        runs["count"] += 1
        return JSONResponse({"run": runs["count"]}, status_code=202)

    async def flaky(request: Request) -> JSONResponse:
        runs["flaky"] += 1
        status = 503 if runs["flaky"] == 1 else 202
        return JSONResponse({"run": runs["flaky"]}, status_code=status)

    async def boom(request: Request) -> JSONResponse:
        runs["boom"] += 1
        if runs["boom"] == 1:
            raise RuntimeError("the route failed")
        return JSONResponse({"run": runs["boom"]}, status_code=202)

    routes = [
        Route(f"/{n}", f, methods=["POST"])
        for n, f in (("count", count), ("flaky", flaky), ("boom", boom))
    ]
    return Starlette(routes=routes), runs


def _post(app: Starlette, redis_url: str, path: str, key: str, **kwargs) -> list[httpx.Response]:
    """The same request twice, through `Idempotency` (its Redis client made in this loop)."""

    async def twice() -> list[httpx.Response]:
        guarded = Idempotency(app, redis.asyncio.Redis.from_url(redis_url), keys=[])
        transport = httpx.ASGITransport(app=guarded, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            headers = {"Idempotency-Key": key}
            return [await http.post(path, headers=headers, **kwargs) for _ in range(2)]

    return run_async(twice())


def test_an_answer_is_replayed_and_the_route_runs_once(redis_url):
    app, runs = _app()
    first, second = _post(app, redis_url, "/count", str(uuid.uuid4()), json={"a": 1})
    assert first.json() == second.json() == {"run": 1} and runs["count"] == 1
    assert second.headers["idempotent-replayed"] == "true"


def test_a_try_again_answer_and_a_failure_release_the_key(redis_url):
    app, runs = _app()
    unavailable, retried = _post(app, redis_url, "/flaky", str(uuid.uuid4()), json={})
    assert (unavailable.status_code, retried.status_code) == (503, 202)
    assert "idempotent-replayed" not in retried.headers and runs["flaky"] == 2
    failed, rerun = _post(app, redis_url, "/boom", str(uuid.uuid4()), json={})
    assert (failed.status_code, rerun.status_code) == (500, 202) and runs["boom"] == 2


def _digest(content_type: str, chunks: list[bytes], path: str = "/v1/translations") -> str:
    scope = {
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [(b"content-type", content_type.encode())],
    }
    fingerprint = Fingerprint(scope)
    for chunk in chunks:
        fingerprint.update(chunk)
    return fingerprint.hexdigest()


def _multipart(boundary: str, value: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n{value}\r\n'
        f"--{boundary}--\r\n"
    ).encode()


def test_the_fingerprint_ignores_the_multipart_boundary_wherever_chunks_cut_it():
    one = _digest("multipart/form-data; boundary=aaaa1111", [_multipart("aaaa1111", "p2p")])
    body = _multipart("bbbb2222", "p2p")
    for cut in range(1, len(body)):
        split = _digest("multipart/form-data; boundary=bbbb2222", [body[:cut], body[cut:]])
        assert split == one, cut
    other = _digest("multipart/form-data; boundary=aaaa1111", [_multipart("aaaa1111", "p2q")])
    assert other != one
    assert _digest("application/json", [b'{"a": 1}']) != _digest("application/json", [b'{"a": 2}'])
    assert _digest("application/json", [b"{}"]) != _digest(
        "application/json", [b"{}"], "/v1/samples"
    )
