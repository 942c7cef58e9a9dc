"""ASGI middleware that refuses requests before their body is read.

`ApiKeyGate` checks the API key of `/v1` requests first, so an unauthenticated client cannot make
the gateway receive a large upload. `BodyLimit` caps the request body per path while it streams in:
a `Content-Length` over the limit is refused at once, and a body without one (chunked) is counted
as it arrives and refused as soon as it passes the limit, never after reading it all. Both answer
as problem details (413 `too_large`, 401 `missing_api_key` / `invalid_api_key`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ApiError, error_response
from service.security import authenticate


class BodyLimit:
    """Refuse request bodies larger than a path's limit with 413 and that path's message.

    `limits` maps a path to (bytes, message); other paths get `default` bytes.
    """

    def __init__(self, app: ASGIApp, default: int, limits: Mapping[str, tuple[int, str]]) -> None:
        self.app = app
        self.default = default
        self.limits = {path.rstrip("/"): rule for path, rule in limits.items()}

    def rule_for(self, path: str) -> tuple[int, str]:
        """The body limit of a path and the message that explains it."""
        default = (self.default, f"The request body is larger than {self.default} bytes.")
        return self.limits.get(path.rstrip("/"), default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, message = self.rule_for(scope["path"])
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = error_response(413, "too_large", message, instance=scope["path"])
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > limit:
                    # Raised inside the route's body parsing; FastAPI lets HTTP exceptions
                    # through, and the exception handlers answer it in the error shape.
                    raise ApiError(413, "too_large", message)
            return event

        await self.app(scope, limited_receive, send)


class ApiKeyGate:
    """Refuse `/v1` requests without a valid API key (when `keys` is not empty) with 401."""

    def __init__(self, app: ASGIApp, keys: Sequence[str], prefix: str = "/v1") -> None:
        self.app = app
        self.keys = list(keys)
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        guarded = path == self.prefix or path.startswith(self.prefix + "/")
        if scope["type"] == "http" and guarded and self.keys:
            try:
                authenticate(Headers(scope=scope).get("authorization"), self.keys)
            except ApiError as exc:
                response = error_response(
                    exc.status_code, exc.code, exc.message, exc.headers, instance=path
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
