"""The request id and the access log of the gateway (ASGI middleware, outermost).

Every request gets an id: the client's `X-Request-ID` when it sends a plausible one (1-128
letters, digits, `.`, `_`, `:` or `-`), else a new random one; the response carries it back in
`X-Request-ID`, and every log line written while the request is handled names it
(`core.logs`). When the response starts, one access line is logged (`service.access`): method,
path, status and the milliseconds it took to answer (a streamed response, SSE, counts until its
headers went out). Query strings are left out of the log: they may carry what a user typed.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logs import request_id

HEADER = "X-Request-ID"
_PLAUSIBLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access = logging.getLogger("service.access")


class RequestLog:
    """Give each HTTP request an id (`X-Request-ID`), and log one access line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(HEADER, "")
        rid = given if _PLAUSIBLE.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = rid
                access.info(
                    "%s %s %d %.1f ms",
                    scope["method"],
                    scope["path"],
                    message["status"],
                    1000 * (time.perf_counter() - started),
                )
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
