"""A bare FastAPI gateway: the HTTP floor that `benchmarks/stack_overhead.py` compares with.

It answers the same multipart `POST /v1/translations` (an `image` file and form fields) the
way the gateway's route takes it (a plain `def` route, FastAPI's `UploadFile` and `Form`), but
does nothing a translation needs: it stores the uploaded bytes in Redis under a new id and
answers 201 with a job-shaped JSON that names `GET /blobs/{id}`, which serves those bytes back.
So a client's job loop (POST, then GET the result image) runs unchanged against it, and what it
costs is uvicorn, FastAPI, the multipart parser and two Redis round trips: no checks, no
decoding, no queue, no worker. Served as `service.app:serve` is (`uvicorn --factory`, the flags of
`ganserve.processes.gateway_command`), on the Redis of `BARE_GATEWAY_REDIS_URL`.
"""

from __future__ import annotations

import os
import uuid
from typing import Annotated

import redis
from fastapi import FastAPI, File, Form, HTTPException, Response, UploadFile

REDIS_URL_VARIABLE = "BARE_GATEWAY_REDIS_URL"
BLOB_TTL_S = 600  # the blobs expire by themselves: nothing to clean up after a run


def create_app() -> FastAPI:
    """The bare app, on the Redis named by `BARE_GATEWAY_REDIS_URL`."""
    store = redis.Redis.from_url(os.environ[REDIS_URL_VARIABLE])
    app = FastAPI()

    @app.post("/v1/translations", status_code=201)
    def upload(
        image: Annotated[UploadFile, File()],
        model: Annotated[str, Form()],
        seed: Annotated[int | None, Form()] = None,
    ) -> dict:
        blob_id = uuid.uuid4().hex
        store.set(f"bare-gateway:{blob_id}", image.file.read(), ex=BLOB_TTL_S)
        return {"id": blob_id, "status": "succeeded", "result": {"images": [f"/blobs/{blob_id}"]}}

    @app.get("/blobs/{blob_id}")
    def blob(blob_id: str) -> Response:
        data = store.get(f"bare-gateway:{blob_id}")
        if data is None:
            raise HTTPException(404, "no such blob")
        return Response(data, media_type="image/png")

    return app
