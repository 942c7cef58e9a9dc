"""Request rates per API key and in all, counted in Redis with the `limits` library.

Each `/v1` request counts against its key's limit (`GANSERVE_KEY_REQUESTS_PER_SECOND`; operator
keys against `GANSERVE_OPERATOR_REQUESTS_PER_SECOND`, exempt when that is unset) and against the
gateway's limit for everyone (`GANSERVE_REQUESTS_PER_SECOND`). The counting is a moving window of
one second (`limits`' MovingWindowRateLimiter on the Redis every gateway process shares), so N per
second is at most N requests in any second, across gateway processes; a burst up to N is
allowed at once, like a token bucket of N tokens refilled over a second. A request past a limit
gets 429 `rate_limited` with `Retry-After` (seconds until the window lets one more in, at least
1) and a `detail` naming the limit (that key's, the operators', or everyone's). Unset limits cost
nothing; the web page, docs and health routes are never counted. While Redis does not answer,
requests are let through uncounted (the routes that need Redis answer 503 themselves).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import redis
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from core.owners import owner_of_key
from service.errors import error_response
from service.security import authenticate

PREFIX = "/v1"
log = logging.getLogger(__name__)


class RateLimits:
    """Refuse `/v1` requests past their key's or everyone's request rate (see the module doc)."""

    def __init__(
        self,
        app: ASGIApp,
        redis_url: str,
        keys: Sequence[str],
        operator_keys: Sequence[str],
        per_key: int | None,
        per_operator: int | None,
        overall: int | None,
    ) -> None:
        self.app = app
        self.keys = list(keys)
        self.operator_owners = {owner_of_key(k) for k in operator_keys}
        self.per_key = _item(per_key)
        self.per_operator = _item(per_operator)
        self.overall = _item(overall)
        self.enabled = any((self.per_key, self.per_operator, self.overall))
        self.limiter = None
        if self.enabled:
            storage = RedisStorage(redis_url, implementation="redispy", key_prefix="ganserve:rates")
            self.limiter = MovingWindowRateLimiter(storage)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        counted = path == PREFIX or path.startswith(PREFIX + "/")
        if not self.enabled or scope["type"] != "http" or not counted:
            await self.app(scope, receive, send)
            return
        owner = authenticate(Headers(scope=scope).get("authorization"), self.keys)
        operator = owner in self.operator_owners or not self.keys
        own = self.per_operator if operator else self.per_key
        checks = [
            (own, owner, "operators'" if operator else "this API key's"),
            (self.overall, "all", "the gateway's"),
        ]
        for item, who, whose in checks:
            if item is None or self.limiter is None:
                continue
            try:
                allowed = await self.limiter.hit(item, who)
                stats = None if allowed else await self.limiter.get_window_stats(item, who)
            except (redis.RedisError, StorageError) as exc:  # let it through: the route says 503
                log.warning("request rates not counted on %s: %s", path, exc)
                break
            if stats is not None:
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                await error_response(
                    429,
                    "rate_limited",
                    f"Too many requests: {whose} limit is {item.amount} per second; try again "
                    f"in {wait} s.",
                    {"Retry-After": str(wait)},
                    instance=path,
                )(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _item(per_second: int | None) -> RateLimitItemPerSecond | None:
    return None if per_second is None else RateLimitItemPerSecond(per_second)
