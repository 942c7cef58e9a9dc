"""The OpenAPI document as the server really behaves (OpenAPI 3.1, served at `/openapi.json`).

FastAPI's generated document describes a 422 body the gateway never sends (`{"detail": [...]}`)
and names operations after paths (`get_models_v1_models_get`). Here:

- operation ids are the route functions' names in camelCase (`createTranslation`, `getJob`), so
  that generated clients read well; the names are part of the API and tested;
- every error response (each status a route declares, FastAPI's automatic 422, and a `default`
  for anything else: 401 with keys, 413, 500, 503) is `application/problem+json` with the
  `Problem` schema of `service.errors`, the body the handlers send;
- FastAPI's own validation-error schemas are dropped;
- an uploaded file (`contentMediaType`, FastAPI's OpenAPI 3.1 way) is also `format: binary`, the
  way generators (openapi-python-client) recognise a file to send as one;
- an optional form field is its type alone, not "that or null": a form cannot send null, a field
  left out is how it says none (and validators read a form field by its type);
- a file response (PNG, WebP, GIF, zip, ONNX, npy) has the schema of bytes, and the events
  stream that of text, so that validators and generators know its body;
- every POST takes the `Idempotency-Key` header (`service.idempotency`);
- the headers the answers carry are declared: `Location` (201, 202), `Idempotent-Replayed`
  (a POST's success), `Retry-After` (409, 429, 503 and the `default` error), `Deprecation` and
  `Link` (a deprecated route);
- every job-creating operation (a 202 whose body is the job) takes the `Prefer` header and may
  answer 201 with the ended job (`service.prefer_wait`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from service.errors import PROBLEM_MEDIA_TYPE, Problem
from service.prefer_wait import MAX_PREFER_WAIT_S

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
_FORM = "multipart/form-data"
_BYTES = {"type": "string", "format": "binary"}
_EVENTS = {
    "type": "string",
    "description": "Server-sent events (`text/event-stream`): `retry:` once, then per event "
    "`id:`, `event:` (status or progress) and `data:` (the job's JSON, as `GET /v1/jobs/{id}`).",
}


def operation_id(route: APIRoute) -> str:
    """A route's operation id: its function's name in camelCase (`create_translation` ->
    `createTranslation`)."""
    first, *rest = route.name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


_RETRY_AFTER = _header("Seconds to wait before trying again (429, 503, 409 when asked).")
_LOCATION = _header("The URL of the job (`/v1/jobs/{id}`), or of a ready export.")
_REPLAYED = _header("`true` on an answer repeated for an `Idempotency-Key` seen before.")
_DEPRECATION = _header("RFC 9745: when this route was deprecated (`@<unix time>`).")
_LINK = _header('The route that replaces this one (`rel="successor-version"`).')


def _problem_response(description: str, retry: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}},
    }
    if retry:
        response["headers"] = {"Retry-After": dict(_RETRY_AFTER)}
    return response


def _is_error(status: str) -> bool:
    return status == "default" or (status.isdigit() and int(status) >= 400)


def _document_errors(operation: dict[str, Any]) -> None:
    """Every error response of `operation` as a problem, plus a `default` one."""
    responses = operation.setdefault("responses", {})
    for status, response in responses.items():
        if _is_error(status):
            description = response.get("description") or "Error"
            if status == "422" and description == "Validation Error":
                description = "Invalid field (see `errors`)"
            responses[status] = _problem_response(description, status in ("409", "429", "503"))
    responses.setdefault(
        "default",
        _problem_response("Any other error (401, 413, 500, 503, ...) as a problem", retry=True),
    )


def _document_headers(operation: dict[str, Any], method: str) -> None:
    """The headers of success answers: a job's `Location`, a replay's `Idempotent-Replayed`,
    a deprecated route's `Deprecation` and `Link`."""
    for status, response in operation.get("responses", {}).items():
        if _is_error(status):
            continue
        headers = response.setdefault("headers", {})
        if status in ("201", "202"):
            headers.setdefault("Location", dict(_LOCATION))
        if method == "post":
            headers["Idempotent-Replayed"] = dict(_REPLAYED)
        if operation.get("deprecated"):
            headers.update(Deprecation=dict(_DEPRECATION), Link=dict(_LINK))
        if not headers:
            del response["headers"]


_PREFER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "examples": ["wait=30"]},
    "description": f"`wait=N` (RFC 7240; N whole seconds, at most {MAX_PREFER_WAIT_S}): hold "
    "the answer until the job ends, then answer 201 with the ended job; 202 as usual when it "
    "is still queued or running after N seconds.",
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 257},
    "description": "Any string of 1-255 printable characters (quoted or not), new for each "
    "request: the same key with the same request within 24 h is answered with the first "
    "answer (`Idempotent-Replayed: true`; nothing is created twice), with a different request "
    "422 `idempotency_key_reused`; 409 `idempotency_key_in_use` while the first is still "
    "being answered. Per API key.",
}
_PREFERENCE_APPLIED = {
    "description": "`wait=N`: the preference that was honoured.",
    "schema": {"type": "string"},
}


def _untitled(schema: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in schema.items() if key != "title"}


def _offer_synchronous_mode(operation: dict[str, Any], job: dict[str, Any]) -> None:
    """A job-creating operation's `Prefer` header and its 201 answer (the ended job), when
    its 202 answers the `job` schema."""
    responses = operation.get("responses", {})
    queued = responses.get("202", {}).get("content", {}).get("application/json")
    if queued is None or _untitled(queued.get("schema", {})) != _untitled(job):
        return
    operation.setdefault("parameters", []).append(dict(_PREFER))
    responses["201"] = {
        "description": "The job ended within the `Prefer: wait=N` seconds: the ended job "
        "(succeeded, failed or cancelled), as `GET /v1/jobs/{id}` returns it.",
        "headers": {"Preference-Applied": dict(_PREFERENCE_APPLIED)},
        "content": {"application/json": dict(queued)},
    }


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _describe_bodies(operation: dict[str, Any]) -> None:
    """A schema for each success body that has none: bytes for files, text for events."""
    for status, response in operation.get("responses", {}).items():
        if _is_error(status):
            continue
        for media_type, content in response.get("content", {}).items():
            if not _is_json(media_type) and not content.get("schema"):
                schema = _EVENTS if media_type == "text/event-stream" else _BYTES
                content["schema"] = dict(schema)


def _files_are_binary(schema: dict[str, Any]) -> None:
    """`format: binary` beside `contentMediaType` on the file properties of a body schema."""
    for prop in schema.get("properties", {}).values():
        for variant in [prop, *prop.get("anyOf", [])]:
            if variant.get("type") == "string" and "contentMediaType" in variant:
                variant.setdefault("format", "binary")


def _form_fields_not_null(schema: dict[str, Any]) -> None:
    """An optional form field as its type alone (`anyOf: [T, null]` becomes T)."""
    for name, prop in schema.get("properties", {}).items():
        variants = prop.get("anyOf")
        if variants is None:
            continue
        kept = [v for v in variants if v.get("type") != "null"]
        if len(kept) == 1 and len(kept) < len(variants):
            rest = {key: value for key, value in prop.items() if key != "anyOf"}
            schema["properties"][name] = {**kept[0], **rest}


def _form_schema(operation: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any] | None:
    """The component schema of the operation's multipart request body, if it has one."""
    content = operation.get("requestBody", {}).get("content", {})
    ref = content.get(_FORM, {}).get("schema", {}).get("$ref", "")
    return schemas.get(ref.rpartition("/")[2])


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of `app` with problem-details errors."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    job = schema["paths"]["/v1/jobs/{job_id}"]["get"]["responses"]["200"]["content"]
    job = job["application/json"]["schema"]
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            _document_errors(operation)
            _describe_bodies(operation)
            if method == "post":
                operation.setdefault("parameters", []).append(dict(_IDEMPOTENCY_KEY))
            if method == "post" and not path.startswith("/v1/jobs/"):  # not a cancellation
                _offer_synchronous_mode(operation, job)
            _document_headers(operation, method)
            if (form := _form_schema(operation, schemas)) is not None:
                _files_are_binary(form)
                _form_fields_not_null(form)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve `build_openapi(app)` (built once) as the app's OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
