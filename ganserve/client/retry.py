"""When a request is tried again, and how long the client waits before it does (with tenacity).

Retried: connection failures, timeouts, 429 `queue_full` and 503 (`broker_unavailable`,
`queue_unavailable`, `unavailable`), at most `retries` times, after an exponential backoff with
jitter (`backoff` * 2^n plus up to `backoff` at random, at most `max_backoff` seconds), or after
the server's `Retry-After` when it sent one (at most `max_retry_after` seconds).

Every POST the client sends (translations, samples, training runs, model imports, exports,
dataset uploads, cancels) carries an `Idempotency-Key` drawn once per call (`Call`), so sending
it again cannot create a second job: the server answers a repeated key with the first answer.
GETs and POSTs are therefore retried on every transport error too (a read timeout, a broken
connection), and a POST also on 409 `idempotency_key_in_use` (its first attempt is still being
answered). A DELETE is retried only when it cannot have had an effect: a connect error or connect
timeout (the request never left), or a 429 or 503.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

import tenacity

from ganserve.client.errors import (
    Conflict,
    ConnectionFailed,
    QueueFull,
    ServiceUnavailable,
    Timeout,
)

log = logging.getLogger("ganserve.client")

_REPEATABLE = frozenset({"GET", "HEAD", "OPTIONS", "POST"})  # POST: with its Idempotency-Key


@dataclass(frozen=True)
class RetryPolicy:
    """How often and after how long a failed request is sent again (see the module doc)."""

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")

    def should_retry(self, method: str, error: BaseException) -> bool:
        """Whether `error`, raised by one attempt of a `method` request, may be retried."""
        if isinstance(error, QueueFull | ServiceUnavailable):
            return True  # refused before anything was created
        if isinstance(error, ConnectionFailed | Timeout):
            return method.upper() in _REPEATABLE or not error.sent
        if isinstance(error, Conflict) and error.code == "idempotency_key_in_use":
            return method.upper() == "POST"
        return False

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (from 1)."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.max_retry_after) + random.uniform(0, self.backoff)
        exponential = self.backoff * 2 ** max(0, attempt - 1)
        return min(self.max_backoff, exponential + random.uniform(0, self.backoff))

    def tenacity_options(self, method: str) -> dict[str, Any]:
        """The options of a `tenacity.Retrying` (or `AsyncRetrying`) for one `method` request:
        the last error is raised as it is once the retries are spent."""

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome is not None else None
            return self.delay(state.attempt_number, error)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            seconds = state.next_action.sleep if state.next_action is not None else 0.0
            log.info("%s failed (%s); retrying in %.1f s", method, error, seconds)

        return {
            "stop": tenacity.stop_after_attempt(self.retries + 1),
            "wait": wait,
            "retry": tenacity.retry_if_exception(lambda e: self.should_retry(method, e)),
            "before_sleep": before_sleep,
            "reraise": True,
        }


def policy_of(retries: int | RetryPolicy) -> RetryPolicy:
    """A policy from the `retries` argument of the clients (a count, or a whole policy)."""
    return retries if isinstance(retries, RetryPolicy) else RetryPolicy(retries=retries)
