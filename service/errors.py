"""One error shape for every failure: RFC 9457 problem details.

Every error answers `application/problem+json` with `{"type": "urn:ganserve:problem:<code>",
"title", "status", "detail": "<human sentence>", "code": "<snake_case>", "instance": "<path>"}`,
and a 422 `invalid_field` adds `errors`: one `{"field", "message"}` per invalid field. `code`
is the stable thing to branch on; `type` is the same code as a URI, as RFC 9457 asks.
(The format is six fields; the problem-details packages on PyPI would replace the handlers
below rather than spare them, so the body is built here.)

`ApiError` is what the gateway's own code raises. It subclasses Starlette's `HTTPException` so
that it passes through FastAPI's body parsing unchanged (a size limit hit while the multipart body
streams in is raised from inside that parsing). The handlers installed by `install_error_handlers`
give the same shape to FastAPI's validation errors (422 `invalid_field`, naming the fields), to
routing errors (404 for an unknown route, 405), to an unreachable Redis or broker (503
`broker_unavailable`) and to anything unexpected (500 `internal_error`).

Messages name what the caller sent, never a path on the server; as a last line of defence the
handlers replace the storage root in every message with a placeholder (`core.server_paths`).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.jobs import JobNotFound
from core.server_paths import hide_storage_root
from core.settings import get_settings

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
_LOCATIONS = {"body", "query", "path", "header", "cookie", "form"}
_CODE_OF_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_type",
    422: "invalid_field",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:ganserve:problem:"


class FieldError(BaseModel):
    """One invalid field of a request."""

    field: str = Field(examples=["count"], description="The field, dotted for nested ones.")
    message: str = Field(examples=["Input should be less than or equal to 64."])


class Problem(BaseModel):
    """An error (RFC 9457 problem details, `application/problem+json`)."""

    type: str = Field(
        examples=["urn:ganserve:problem:job_not_found"],
        description="The error's code as a URI: `urn:ganserve:problem:<code>`.",
    )
    title: str = Field(examples=["Not Found"], description="The HTTP status phrase.")
    status: int = Field(examples=[404], description="The HTTP status code.")
    detail: str = Field(examples=["There is no such job."], description="What went wrong.")
    code: str = Field(examples=["job_not_found"], description="A stable snake_case code.")
    instance: str | None = Field(
        default=None, examples=["/v1/jobs/0c9f"], description="The request path."
    )
    errors: list[FieldError] | None = Field(
        default=None, description="422 `invalid_field`: every invalid field of the request."
    )


class ApiError(StarletteHTTPException):
    """An error answered as a problem with `status`, `code` and `message` as its detail."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=dict(headers or {}))
        self.code = code
        self.message = message


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    errors: list[FieldError] | None = None,
) -> dict[str, Any]:
    """The JSON body of an error."""
    problem = Problem(
        type=PROBLEM_TYPE_PREFIX + code,
        title=_title(status),
        status=status,
        detail=detail,
        code=code,
        instance=instance,
        errors=errors,
    )
    return problem.model_dump(exclude_none=True)


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    instance: str | None = None,
    errors: list[FieldError] | None = None,
) -> JSONResponse:
    """A problem-details response."""
    return JSONResponse(
        problem_body(status, code, message, instance, errors),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _code_of_status(status: int) -> str:
    if status in _CODE_OF_STATUS:
        return _CODE_OF_STATUS[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _path_free(request: Request, message: str) -> str:
    """`message` without the storage root of the app that answers `request`."""
    settings = getattr(request.app.state, "settings", None) or get_settings()
    return hide_storage_root(message, settings.data_dir)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if isinstance(exc, ApiError):
        message = _path_free(request, exc.message)
        return error_response(
            exc.status_code, exc.code, message, headers, instance=request.url.path
        )
    status = exc.status_code
    try:
        default_phrase = HTTPStatus(status).phrase
    except ValueError:
        default_phrase = ""
    detail = str(exc.detail) if exc.detail and exc.detail != default_phrase else ""
    if status == 404 and not detail:
        message = f"There is no route {request.method} {request.url.path}."
    elif status == 405:
        allowed = headers.get("Allow") or headers.get("allow")
        message = f"{request.method} is not allowed on {request.url.path}"
        message += f"; allowed: {allowed}." if allowed else "."
    elif status == 413 and not detail:
        message = "The request body is too large."
    else:
        message = _sentence(detail or default_phrase or "The request failed")
    return error_response(
        status,
        _code_of_status(status),
        _path_free(request, message),
        headers,
        instance=request.url.path,
    )


_UNION_TAGS = frozenset({"list", "job", "top", "drs"})  # tagged unions' branches (core.params)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if str(p) not in _LOCATIONS and str(p) not in _UNION_TAGS]
    if not parts:
        return str(loc[0]) if loc else "request"
    return ".".join(parts)


def _field_errors(request: Request, errors: list[dict[str, Any]]) -> list[FieldError]:
    """One entry per invalid field (the first error of each), in the request's order."""
    found: dict[str, str] = {}
    for error in errors:
        field = _field_name(tuple(error.get("loc", ())))
        if error.get("type") == "missing":
            text = "Field required."
        else:
            text = _sentence(str(error.get("msg", "")))
        found.setdefault(field, _path_free(request, text))
    return [FieldError(field=f, message=m) for f, m in found.items()]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    instance = request.url.path
    if not errors:
        return error_response(422, "invalid_field", "The request is invalid.", instance=instance)
    first, listed = errors[0], _field_errors(request, errors)
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "it does not parse")
        message = f"The request body is not valid JSON: {reason}."
    else:
        field = listed[0].field
        if first.get("type") == "missing":
            message = f"The field '{field}' is required."
        else:
            message = f"The field '{field}' is invalid: {_sentence(str(first.get('msg', '')))}"
        others = sorted(e.field for e in listed[1:])  # each field once, the first one apart
        if others:
            message += f" Also invalid: {', '.join(others)}."
    return error_response(
        422, "invalid_field", _path_free(request, message), instance=instance, errors=listed
    )


REDIS_DOWN_MESSAGE = "The job store and queue (Redis) do not answer; try again later."
REDIS_FULL_MESSAGE = (
    "The queue (Redis) is full (out of memory) and takes no new jobs; try again later."
)


async def _redis_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("broker unavailable on %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503,
        "broker_unavailable",
        REDIS_DOWN_MESSAGE,
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
        instance=request.url.path,
    )


async def _redis_full(request: Request, exc: Exception) -> JSONResponse:
    log.warning("Redis out of memory on %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503,
        "queue_unavailable",
        REDIS_FULL_MESSAGE,
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
        instance=request.url.path,
    )


async def _os_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        log.error("storage full on %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            507,
            "storage_full",
            "The server's storage is full; the upload was not kept. Try again later.",
            instance=request.url.path,
        )
    return await _unexpected(request, exc)


async def _job_not_found(request: Request, exc: Exception) -> JSONResponse:
    return error_response(404, "job_not_found", "There is no such job.", instance=request.url.path)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500, "internal_error", "The server failed to handle the request.", instance=request.url.path
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of `app` answer in the error shape."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(redis.ConnectionError, _redis_down)
    app.add_exception_handler(redis.TimeoutError, _redis_down)
    app.add_exception_handler(redis.exceptions.OutOfMemoryError, _redis_full)
    app.add_exception_handler(BrokerError, _redis_down)
    app.add_exception_handler(JobNotFound, _job_not_found)
    app.add_exception_handler(OSError, _os_error)
    app.add_exception_handler(Exception, _unexpected)
