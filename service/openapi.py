"""The OpenAPI document as the server really behaves (OpenAPI 3.1, served at `/openapi.json`).

FastAPI's generated document describes a 422 body the gateway never sends (`{"detail": [...]}`)
and names operations after paths (`get_models_v1_models_get`). Here:

- operation ids are the route functions' names in camelCase (`createTranslation`, `getJob`), so
  that generated clients read well; the names are part of the API and tested;
- every error response (each status a route declares, FastAPI's automatic 422, and a `default`
  for anything else: 401 with keys, 413, 500, 503) is `application/problem+json` with the
  `Problem` schema of `service.errors`, the body the handlers send;
- FastAPI's own validation-error schemas are dropped.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from service.errors import PROBLEM_MEDIA_TYPE, Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def operation_id(route: APIRoute) -> str:
    """A route's operation id: its function's name in camelCase (`create_translation` ->
    `createTranslation`)."""
    first, *rest = route.name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}}


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
            responses[status] = _problem_response(description)
    responses.setdefault(
        "default", _problem_response("Any other error (401, 413, 500, 503, ...) as a problem")
    )


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
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if method in _METHODS:
                _document_errors(operation)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve `build_openapi(app)` (built once) as the app's OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
