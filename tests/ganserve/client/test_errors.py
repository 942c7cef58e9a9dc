"""Error responses become typed exceptions: problem details, the old shape, non-JSON bodies."""

import email.utils
import time

import httpx
import pytest

from ganserve.client import errors
from ganserve.client.errors import (
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    GanserveError,
    InvalidField,
    NotFound,
    PayloadTooLarge,
    QueueFull,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    StorageFull,
    Timeout,
    Unauthorized,
    UnsupportedType,
    error_from_response,
    error_from_transport,
    retry_after_seconds,
)
from tests.ganserve.client.fake_server import problem


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_image", BadRequest),
        (401, "unauthorized", Unauthorized),
        (403, "forbidden", Forbidden),
        (404, "model_not_found", NotFound),
        (409, "job_ended", Conflict),
        (413, "too_large", PayloadTooLarge),
        (415, "unsupported_type", UnsupportedType),
        (422, "invalid_field", InvalidField),
        (429, "queue_full", QueueFull),
        (429, "key_queue_full", QueueFull),
        (429, "rate_limited", RateLimited),
        (503, "broker_unavailable", ServiceUnavailable),
        (507, "storage_full", StorageFull),
        (500, "internal_error", ServerError),
        (502, "bad_gateway", ServerError),
        (405, "method_not_allowed", GanserveError),
    ],
)
def test_each_status_has_its_class(status, code, cls):
    error = error_from_response(problem(status, code, "What happened."))
    assert type(error) is cls
    assert (error.status, error.code, error.detail) == (status, code, "What happened.")
    assert error.body["type"] == f"urn:ganserve:problem:{code}"
    assert str(error) == f"{status} {code}: What happened."


def test_invalid_field_lists_every_field():
    response = problem(
        422,
        "invalid_field",
        "The field 'count' is invalid.",
        errors=[
            {"field": "count", "message": "must be at most 64"},
            {"field": "seed", "message": "must be 0 or more"},
        ],
    )
    error = error_from_response(response)
    assert isinstance(error, InvalidField)
    assert error.errors == [("count", "must be at most 64"), ("seed", "must be 0 or more")]
    assert (error.field, error.message) == ("count", "must be at most 64")


def test_a_422_without_a_list_keeps_its_detail():
    error = error_from_response(problem(422, "size_mismatch", "The sizes differ."))
    assert isinstance(error, InvalidField)
    assert error.errors == [] and error.field is None and error.message == "The sizes differ."


@pytest.mark.parametrize(
    "cls_status", [(QueueFull, 429), (ServiceUnavailable, 503), (Conflict, 409)]
)
def test_retry_after_is_read(cls_status):
    cls, status = cls_status
    error = error_from_response(problem(status, "x", headers={"Retry-After": "7"}))
    assert isinstance(error, cls) and error.retry_after == 7.0
    assert error_from_response(problem(status, "x")).retry_after is None


def test_retry_after_as_a_date():
    now = time.time()
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= retry_after_seconds(header, now=now) <= 31
    assert retry_after_seconds(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_a_non_json_body_still_maps():
    response = httpx.Response(502, text="<html><body>Bad Gateway</body></html>")
    error = error_from_response(response)
    assert isinstance(error, ServerError)
    assert error.code == "bad_gateway" and "Bad Gateway" in error.detail
    assert error.body.startswith("<html>")
    empty = error_from_response(httpx.Response(503))
    assert isinstance(empty, ServiceUnavailable) and empty.detail == "Service Unavailable"


def test_the_old_error_shape_is_read_too():
    response = httpx.Response(404, json={"error": {"code": "job_not_found", "message": "No."}})
    error = error_from_response(response)
    assert isinstance(error, NotFound) and (error.code, error.detail) == ("job_not_found", "No.")


def test_transport_errors_say_whether_the_request_left():
    refused = error_from_transport(httpx.ConnectError("refused"), "POST", "/v1/samples")
    assert isinstance(refused, ConnectionFailed) and isinstance(refused, ConnectionError)
    assert refused.sent is False
    read = error_from_transport(httpx.ReadTimeout("slow"), "POST", "/v1/samples")
    assert isinstance(read, Timeout) and isinstance(read, TimeoutError) and read.sent is True
    connect = error_from_transport(httpx.ConnectTimeout("slow"), "GET", "/v1/jobs")
    assert isinstance(connect, Timeout) and connect.sent is False
    broken = error_from_transport(httpx.RemoteProtocolError("gone"), "POST", "/v1/samples")
    assert isinstance(broken, ConnectionFailed) and broken.sent is True
    assert "POST /v1/samples" in str(broken)


def test_every_exception_is_exported():
    import ganserve.client as client

    for name in errors.__all__:
        if name[0].isupper():
            assert getattr(client, name) is getattr(errors, name)
