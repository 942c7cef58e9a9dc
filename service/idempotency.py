"""Idempotent submissions: `Idempotency-Key` on a POST (IETF draft-ietf-httpapi-idempotency-key-
header), so that a client may retry a request whose answer it did not get.

A POST under `/v1` with `Idempotency-Key: "<key>"` (a structured-field string, or the bare text;
1-255 printable characters) runs once per key and API key within `TTL_SECONDS` (24 h):

- the first request reserves the key in Redis (`SET NX`) and runs; its answer (status, headers,
  body) is kept with the request's fingerprint: a SHA-256 of the method, path, query, media type
  and body, the random boundary of a multipart body left out, so that a retry of the same fields
  and files matches whatever boundary the client drew;
- the same key with the same request later gets that answer again (the same job id: nothing is
  queued twice), marked `Idempotent-Replayed: true`;
- a request racing the first one waits for its answer (at most `RACE_WAIT_SECONDS`, then 409
  `idempotency_key_in_use`), and then gets it as a replay;
- the same key with a different request is a 422 `idempotency_key_reused`;
- keys are per API key: another key's identical string is unrelated;
- an answer that asks to try again later (429, or any 5xx) is not kept: the key is released, and
  the retry runs the request again (a request that raced it is told 409 with `Retry-After`). So
  is a request that raised.

Bodies are hashed as they stream (into the route, or drained for a replay), never held whole.
The middleware sits inside the API-key check and the body limit (they apply first) and outside
the synchronous mode (`service.prefer_wait`): a replay is the answer the first caller got.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import REDIS_DOWN_MESSAGE, RETRY_AFTER_SECONDS, ApiError, error_response
from service.security import authenticate

log = logging.getLogger(__name__)

HEADER = "idempotency-key"
TTL_SECONDS = 24 * 3600
RUNNING_TTL_SECONDS = 15 * 60  # a reservation whose request vanished (a killed gateway) ends
RACE_WAIT_SECONDS = 90.0
RACE_POLL_SECONDS = 0.05
MAX_KEY_LENGTH = 255
MAX_KEPT_BODY = 1024 * 1024


def idempotency_key(headers: Headers) -> str | None:
    """The request's idempotency key, or None without one; 400 `invalid_idempotency_key` when
    it is empty, too long or not printable ASCII."""
    value = headers.get(HEADER)
    if value is None:
        return None
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 0 < len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"The Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable ASCII characters.",
        )
    return key


class Fingerprint:
    """SHA-256 of a request as it streams: method, path, query, media type and body, with a
    multipart body's boundary replaced by a fixed token wherever it occurs."""

    def __init__(self, scope: Scope) -> None:
        content_type = Headers(scope=scope).get("content-type", "")
        media_type, _, parameters = content_type.partition(";")
        self.boundary = b""
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.lower() == "boundary":
                self.boundary = value.strip('"').encode()
        self.hash = hashlib.sha256()
        query = scope.get("query_string", b"").decode("latin-1")
        self.hash.update(
            f"{scope['method']} {scope['path']}?{query}\n{media_type.strip()}\n".encode()
        )
        self.pending = b""

    def update(self, chunk: bytes) -> None:
        if not self.boundary:
            self.hash.update(chunk)
            return
        data = (self.pending + chunk).replace(self.boundary, b"\0boundary\0")
        cut = max(0, len(data) - len(self.boundary) + 1)  # a boundary cut off completes later
        self.hash.update(data[:cut])
        self.pending = data[cut:]

    def hexdigest(self) -> str:
        self.hash.update(
            self.pending.replace(self.boundary, b"\0boundary\0") if self.boundary else self.pending
        )
        self.pending = b""
        return self.hash.hexdigest()


@dataclass
class KeptAnswer:
    """An answer as it is sent, kept to be replayed."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    whole: bool = True  # False: too large to keep

    def record(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status, self.headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
            if len(self.body) > MAX_KEPT_BODY:
                self.whole, self.body = False, bytearray()

    def to_json(self, fingerprint: str) -> str:
        return json.dumps(
            {
                "state": "done",
                "fingerprint": fingerprint,
                "status": self.status,
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in self.headers],
                "body": base64.b64encode(bytes(self.body)).decode(),
            }
        )


def _keepable(status: int) -> bool:
    """Whether an answer is the request's outcome (else the client is to try again)."""
    return status != 429 and status < 500


async def _replay(record: dict[str, Any], send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in record["headers"]]
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": record["status"], "headers": headers})
    await send({"type": "http.response.body", "body": base64.b64decode(record["body"])})


class Idempotency:
    """Run a POST with an `Idempotency-Key` once per key and API key (see the module doc)."""

    def __init__(self, app: ASGIApp, client: redis.asyncio.Redis, keys: list[str]) -> None:
        self.app = app
        self.client = client
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            key = idempotency_key(headers)
        except ApiError as exc:
            await _refuse(scope, receive, send, exc.status_code, exc.code, exc.message)
            return
        if key is None:
            await self.app(scope, receive, send)
            return
        owner = authenticate(headers.get("authorization"), self.keys)  # checked by the gate
        name = f"ganserve:idempotency:{owner}:{hashlib.sha256(key.encode()).hexdigest()}"
        fingerprint = Fingerprint(scope)
        try:
            reserved = await self.client.set(
                name, '{"state": "running"}', nx=True, ex=RUNNING_TTL_SECONDS
            )
            if reserved:
                await self._run_first(name, fingerprint, scope, receive, send)
                return
            await _drain(receive, fingerprint)
            await self._answer_again(name, fingerprint.hexdigest(), scope, receive, send)
        except redis.RedisError as exc:  # before anything was created or answered
            log.warning("idempotency keys unavailable on %s: %s", scope["path"], exc)
            retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            await _refuse(
                scope, receive, send, 503, "broker_unavailable", REDIS_DOWN_MESSAGE, retry
            )

    async def _run_first(
        self, name: str, fingerprint: Fingerprint, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run the request, keep its answer under `name` (or release the key)."""
        answer = KeptAnswer()

        async def hashing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                fingerprint.update(message.get("body", b""))
            return message

        async def keeping_send(message: Message) -> None:
            answer.record(message)
            await send(message)

        try:
            await self.app(scope, hashing_receive, keeping_send)
        except BaseException:
            with contextlib.suppress(redis.RedisError):
                await self.client.delete(name)
            raise
        try:
            if _keepable(answer.status) and answer.whole:
                kept = answer.to_json(fingerprint.hexdigest())
                await self.client.set(name, kept, ex=TTL_SECONDS)
            else:
                await self.client.delete(name)
        except redis.RedisError as exc:  # answered already; the reservation expires by itself
            log.warning("could not keep the answer for an idempotency key: %s", exc)

    async def _answer_again(
        self, name: str, fingerprint: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """A request whose key is taken: the kept answer, once the first request has one."""
        deadline = time.monotonic() + RACE_WAIT_SECONDS
        while (raw := await self.client.get(name)) is not None:
            record = json.loads(raw)
            if record["state"] == "done":
                if record["fingerprint"] != fingerprint:
                    await _refuse(scope, receive, send, 422, "idempotency_key_reused", REUSED)
                else:
                    await _replay(record, send)
                return
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(RACE_POLL_SECONDS)
        # still running after the wait, or released (the first one is to be tried again)
        await _refuse(
            scope, receive, send, 409, "idempotency_key_in_use", IN_USE, {"Retry-After": "1"}
        )


REUSED = "This Idempotency-Key was used for a different request; use a new key for a new request."
IN_USE = (
    "The request first sent with this Idempotency-Key has no answer to repeat yet (it is still "
    "running, or it is to be tried again); retry in a moment."
)


async def _refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    await error_response(status, code, message, headers, instance=scope["path"])(
        scope, receive, send
    )


async def _drain(receive: Receive, fingerprint: Fingerprint) -> None:
    """Read the rest of the request body into the fingerprint."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        fingerprint.update(message.get("body", b""))
        if not message.get("more_body", False):
            return
