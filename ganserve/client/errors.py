"""The exceptions of the client, and how an HTTP answer or a transport failure becomes one.

Every error response of the server is an RFC 9457 problem (`application/problem+json`) with
`status`, `code`, `detail` and, for 422 `invalid_field`, an `errors` list of `{field, message}`.
`error_from_response` turns it into one exception class per family of codes (the class is chosen
by the HTTP status; `code` says which error of the family it is). A body that is not JSON (a
proxy's HTML page) still gives the right class, its text as the detail.

`JobFailed` and `JobCancelled` are not HTTP errors: they are raised by `Job.result()` (and the
blocking methods) for a job that ended without a result. `Timeout` and `ConnectionFailed` wrap
httpx's transport errors, and say whether the request may have reached the server (`sent`),
which is what decides whether it may be retried (`ganserve.client.retry`).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

import httpx

__all__ = [
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "GanserveError",
    "InvalidField",
    "JobCancelled",
    "JobFailed",
    "NotFound",
    "PayloadTooLarge",
    "QueueFull",
    "ServerError",
    "ServiceUnavailable",
    "StorageFull",
    "Timeout",
    "Unauthorized",
    "UnsupportedType",
    "error_from_response",
    "error_from_transport",
]

_DETAIL_CHARS = 500  # of a non-JSON error body kept as the detail


class GanserveError(Exception):
    """An error of the ganserve API or of the client: `status` (the HTTP status, None when no
    answer came), `code` (snake_case, e.g. `model_not_found`), `detail` (a sentence for a
    person) and `body` (the parsed problem JSON, or the text of a non-JSON body)."""

    def __init__(
        self,
        status: int | None,
        code: str,
        detail: str,
        body: Any = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.body = body

    def __str__(self) -> str:
        where = f"{self.status} " if self.status is not None else ""
        return f"{where}{self.code}: {self.detail}"


class BadRequest(GanserveError):
    """400: a bad image, archive or request (`invalid_image`, `invalid_archive`, ...)."""


class Unauthorized(GanserveError):
    """401: the API key is missing or wrong."""


class Forbidden(GanserveError):
    """403: the key may use the resource but not change it (another key's or a shared model)."""


class NotFound(GanserveError):
    """404: no such job, model, dataset, image or export (for this key)."""


class _RetryAfter(GanserveError):
    """An error whose answer may say when to ask again: `retry_after`, in seconds, or None."""

    def __init__(self, *args: Any, retry_after: float | None = None) -> None:
        super().__init__(*args)
        self.retry_after = retry_after


class Conflict(_RetryAfter):
    """409: the resource's state forbids it (`job_ended`, `job_not_ended`, `model_exists`,
    `export_pending`, ...). `retry_after` is set when the server says when to ask again."""


class PayloadTooLarge(GanserveError):
    """413: the upload is larger than the server's limit (bytes or pixels)."""


class UnsupportedType(GanserveError):
    """415: the file is not of a type the route takes."""


class InvalidField(GanserveError):
    """422: a field of the request is invalid. `errors` lists every (field, message) the server
    named; `field` and `message` are the first (`field` is None when the server named none)."""

    def __init__(self, *args: Any, errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__(*args)
        self.errors: list[tuple[str, str]] = errors or []
        self.field: str | None = self.errors[0][0] if self.errors else None
        self.message: str = self.errors[0][1] if self.errors else self.detail


class QueueFull(_RetryAfter):
    """429: a queue is full (`queue_full`), or this API key's share of it (`key_queue_full`);
    `retry_after` is the server's advice in seconds (or None)."""


class RateLimited(QueueFull):
    """429 `rate_limited`: this API key (or everyone) sent more requests per second than the
    server takes; `retry_after` in seconds. (A `QueueFull` too: both ask to come back later.)"""


class ServiceUnavailable(_RetryAfter):
    """503: Redis, the broker or the workers are unavailable; `retry_after` in seconds."""


class StorageFull(GanserveError):
    """507: the server's storage is full; nothing was kept."""


class ServerError(GanserveError):
    """A 5xx other than 503 and 507 (500 `internal_error`, a proxy's 502 or 504)."""


class JobFailed(GanserveError):
    """A job ended `failed`: `code` and `message` are the job's error, `job` its JSON."""

    def __init__(self, code: str, message: str, job: Mapping[str, Any]) -> None:
        super().__init__(None, code, message, dict(job))
        self.message = message
        self.job = dict(job)


class JobCancelled(GanserveError):
    """A job ended `cancelled` (by a `cancel()`, another client or the operator)."""

    def __init__(self, job: Mapping[str, Any]) -> None:
        super().__init__(None, "cancelled", f"The job {job.get('id')} was cancelled.", dict(job))
        self.job = dict(job)


class Timeout(GanserveError, TimeoutError):
    """No answer in time: a request's read, write or connect timed out, or a job did not end
    within the time `wait()` was given. `sent` says whether the request may have reached the
    server (False for a connect or pool timeout)."""

    def __init__(self, detail: str, *, sent: bool = True, code: str = "timeout") -> None:
        super().__init__(None, code, detail)
        self.sent = sent


class ConnectionFailed(GanserveError, ConnectionError):
    """The connection failed: refused or unreachable (`sent` False: the request never left),
    or broken while the request or its answer was on the way (`sent` True)."""

    def __init__(self, detail: str, *, sent: bool) -> None:
        super().__init__(None, "connection_failed", detail)
        self.sent = sent


_CLASS_OF_STATUS: dict[int, type[GanserveError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedType,
    422: InvalidField,
    429: QueueFull,
    503: ServiceUnavailable,
    507: StorageFull,
}


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A `Retry-After` header in seconds: delay-seconds or an HTTP date (None if absent or
    unreadable; never negative)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _field_errors(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = []
    for item in body.get("errors") or []:
        if isinstance(item, Mapping):
            found.append((str(item.get("field", "")), str(item.get("message", ""))))
    return found


def _code_and_detail(status: int, body: Any, text: str) -> tuple[str, str]:
    """The error code and sentence of a body: a problem, the old `{"error": {...}}` shape, or
    anything else (then a code made from the status, and the text as the detail)."""
    if isinstance(body, Mapping):
        if isinstance(body.get("code"), str):
            detail = body.get("detail") or body.get("title") or ""
            return body["code"], str(detail)
        old = body.get("error")
        if isinstance(old, Mapping) and isinstance(old.get("code"), str):
            return old["code"], str(old.get("message", ""))
    try:
        phrase = httpx.codes.get_reason_phrase(status)
    except ValueError:
        phrase = ""
    code = phrase.lower().replace(" ", "_").replace("-", "_") or "error"
    return code, (text.strip()[:_DETAIL_CHARS] or phrase or f"HTTP {status}")


def error_from_response(response: httpx.Response) -> GanserveError:
    """The exception of an error response (status >= 400); its body must have been read."""
    status = response.status_code
    text = response.text
    try:
        body: Any = response.json()
    except ValueError:
        body = text
    code, detail = _code_and_detail(status, body, text)
    cls = _CLASS_OF_STATUS.get(status, ServerError if status >= 500 else GanserveError)
    if code == "rate_limited":
        cls = RateLimited
    args = (status, code, detail, body)
    if issubclass(cls, _RetryAfter):
        return cls(*args, retry_after=retry_after_seconds(response.headers.get("Retry-After")))
    if cls is InvalidField:
        return InvalidField(*args, errors=_field_errors(body) if isinstance(body, Mapping) else [])
    return cls(*args)


def raise_for_status(response: httpx.Response) -> httpx.Response:
    """`response` itself when it is not an error; else its exception (its body must be read)."""
    if response.is_error:
        raise error_from_response(response)
    return response


# Transport errors raised before a single byte of the request was sent: retrying them can
# never duplicate anything on the server.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def error_from_transport(exc: httpx.TransportError, method: str, url: str) -> GanserveError:
    """The exception of a transport failure of `method url`: `Timeout` or `ConnectionFailed`,
    with `sent` False only when the request certainly never left."""
    sent = not isinstance(exc, _NEVER_SENT)
    what = f"{method} {url}: {type(exc).__name__}"
    detail = f"{what}: {exc}" if str(exc) else what
    if isinstance(exc, httpx.TimeoutException):
        return Timeout(detail, sent=sent)
    return ConnectionFailed(detail, sent=sent)
