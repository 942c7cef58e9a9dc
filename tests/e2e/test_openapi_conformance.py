"""The OpenAPI document tells the truth: every operation of `/openapi.json`, exercised on a real
stack, answers only what the document describes.

One stack (embedded Redis, the gateway over HTTP, a Celery worker per queue) with three API keys
(the operator's first), tiny models, and one ended job of every kind (translation, sample,
inspection, interpolation, projection, a training run of a few steps, a model import, an ONNX
export). Each operation has an exercise below (`EXERCISES`, by operation id) that calls it at
least once successfully and provokes the errors that are practical (401 without a key, 404
unknown ids, 422 bad fields, 409 conflicts, 400/413/415 bad uploads). Every response is validated
with openapi-core against the live document, made strict: an object schema that does not say
otherwise allows no undocumented property, so a field the server adds without documenting it
fails too. Status, `Content-Type` (binary bodies: PNG, WebP, JPEG, GIF, zip, npy, SSE included) and
body are checked, and every request the tests send for a success is validated as well (the
document describes what a client must send; of a multipart request, its parameters and
credentials: see `Validators`). Server-sent events are parsed and each event's job
is validated as `GET /v1/jobs/{id}` describes it. An error status an exercise provokes must be
listed by its operation (not only covered by `default`). An operation of the document without an
exercise fails `test_every_operation_has_an_exercise`, so a new route cannot go untested.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.deserializing.media_types.util import json_loads, plain_loads
from openapi_core.validation.request.validators import (
    V31RequestParametersValidator,
    V31RequestSecurityValidator,
)
from PIL import Image
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.e2e.stack import png, running_stack, save_tiny_models, zip_folder
from tests.service.factories import truncated_png
from training.demo import build_demo

KEYS = {"operator": "conformance-op-key", "alice": "conformance-alice", "bob": "conformance-bob"}
TRANSLATOR = "tiny-p2p"
SAMPLER = "tiny-unet"
MAX_UPLOAD_BYTES = 100_000  # a 200 x 200 random PNG (120 kB) is too large: a cheap 413
NO_JOB = "0" * 32
ENDED = ("succeeded", "failed", "cancelled")
PROBLEM = "application/problem+json"
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


# ---------------------------------------------------------------------------------------------
# openapi-core on httpx: request and response wrappers (openapi-core ships none for httpx)


class OpenAPIRequest:
    """An httpx request as openapi-core reads one (`openapi_core.protocols.Request`)."""

    def __init__(self, request: httpx.Request) -> None:
        url = request.url
        self.host_url = f"{url.scheme}://{url.netloc.decode()}"
        self.path = url.path
        self.method = request.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(url.params.multi_items())),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )
        self.body = request.read() or None
        self.content_type = request.headers.get("content-type", "")


class OpenAPIResponse:
    """An httpx response as openapi-core reads one (`openapi_core.protocols.Response`)."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.headers = Headers(list(response.headers.items()))
        self.content_type = response.headers.get("content-type", "")
        self.data = response.content


def operation_table(spec: dict) -> list[tuple[str, str, re.Pattern, str]]:
    """(method, path template, its regex, operation id) of every operation of a document."""
    table = []
    for template, item in spec["paths"].items():
        pattern = re.compile(
            "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$",
        )
        for method, operation in item.items():
            if method in _METHODS:
                table.append((method, template, pattern, operation["operationId"]))
    return table


def _octets(value: bytes, **_parameters: str) -> str:
    """A binary body as the string of its octets (openapi-core's OpenAPI 3.1 validator holds
    `type: string, format: binary` to str, not bytes)."""
    return value.decode("latin-1")


# How openapi-core reads each body: problems are JSON; files and events are strings.
BODY_READERS = {
    PROBLEM: json_loads,
    "text/event-stream": plain_loads,
    **dict.fromkeys(
        [
            "image/png",
            "image/webp",
            "image/jpeg",
            "image/gif",
            "application/zip",
            "application/octet-stream",
        ],
        _octets,
    ),
}


def strict_openapi(spec: dict, **config: Any) -> OpenAPI:
    """openapi-core on `spec`, strict: no undocumented property in any object (an object schema
    that sets `additionalProperties` keeps its own rule)."""
    return OpenAPI.from_dict(
        spec,
        config=Config(
            additional_properties_default_policy="forbid",
            extra_media_type_deserializers=BODY_READERS,
            **config,
        ),
    )


@dataclass
class Validators:
    """openapi-core on the document: whole calls, and the parameters and credentials of a
    multipart request (whose body openapi-core 0.23 cannot read under OpenAPI 3.1: it keeps
    file parts as bytes and casts no number; the generated client's test sends forms)."""

    full: OpenAPI
    parameters: OpenAPI
    security: OpenAPI

    @classmethod
    def of(cls, spec: dict) -> Validators:
        return cls(
            strict_openapi(spec),
            strict_openapi(spec, request_validator_cls=V31RequestParametersValidator),
            strict_openapi(spec, request_validator_cls=V31RequestSecurityValidator),
        )


@dataclass
class Api:
    """The tests' HTTP client: every response validated against the document, every call
    recorded by operation id and status."""

    http: httpx.Client
    spec: dict
    openapi: Validators
    operations: list[tuple[str, str, re.Pattern, str]]
    seen: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))

    def operation(self, method: str, path: str) -> tuple[str, dict]:
        """The operation id and object that `method path` calls."""
        matches = [
            (template, op_id)
            for m, template, pattern, op_id in self.operations
            if m == method.lower() and pattern.match(path)
        ]
        assert matches, f"{method} {path} is not an operation of the document"
        # a literal segment beats a parameter: the template with the fewest parameters
        template, op_id = min(matches, key=lambda match: match[0].count("{"))
        return op_id, self.spec["paths"][template][method.lower()]

    def call(
        self, method: str, url: str, expect: int, *, who: str | None = "alice", **kwargs: Any
    ) -> httpx.Response:
        """Send a request (with `who`'s key; None: without one), check its status is `expect`,
        validate the request (for a success) and the response against the document."""
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers["Authorization"] = f"Bearer {KEYS[who]}"
        response = self.http.request(method, url, headers=headers, **kwargs)
        assert response.status_code == expect, (
            f"{method} {url}: {response.status_code}, not {expect}: {response.text[:500]}"
        )
        self.check(response)
        if expect < 400:
            self.check_request(response.request)
        return response

    def check(self, response: httpx.Response) -> None:
        """Validate a response (and record it), and an error's problem body."""
        request = response.request
        op_id, operation = self.operation(request.method, request.url.path)
        self.seen[op_id].add(response.status_code)
        try:
            self.openapi.full.validate_response(OpenAPIRequest(request), OpenAPIResponse(response))
        except Exception as exc:
            raise AssertionError(
                f"{request.method} {request.url.path} ({op_id}) -> {response.status_code} "
                f"{response.headers.get('content-type')}: the document does not describe it: "
                f"{_reasons(exc)}\nbody: {response.text[:1000]}"
            ) from None
        status = response.status_code
        if status >= 400:
            assert response.headers["content-type"] == PROBLEM, response.headers
            body = response.json()
            assert (
                body["status"] == status and body["type"] == f"urn:ganserve:problem:{body['code']}"
            )
            assert body["instance"] == request.url.path
            assert str(status) in operation["responses"], (
                f"{op_id} answered {status} ({body['code']}), which it does not list (only "
                f"`default` covers it): add it to the route's `responses=`"
            )
        if status in (429, 503):
            assert int(response.headers["Retry-After"]) >= 0

    def check_request(self, request: httpx.Request) -> None:
        """Validate a request the tests sent against what the document says a client sends."""
        wrapped = OpenAPIRequest(request)
        try:
            if wrapped.content_type.startswith("multipart/form-data"):
                self.openapi.parameters.validate_request(wrapped)
                self.openapi.security.validate_request(wrapped)
            else:
                self.openapi.full.validate_request(wrapped)
        except Exception as exc:
            raise AssertionError(
                f"{request.method} {request.url.path}: the request does not match the "
                f"document: {_reasons(exc)}"
            ) from None

    def check_as(self, method: str, path: str, body: Any) -> None:
        """Validate `body` as the JSON answer (200) of `method path`."""
        request = self.http.build_request(method, path)
        self.check(httpx.Response(200, json=body, request=request))


def _reasons(exc: BaseException) -> str:
    """An openapi-core error with its causes and schema errors, for a person."""
    parts = [f"{type(exc).__name__}: {str(exc)[:300]}"]
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        parts.append(f"{type(cause).__name__}: {str(cause)[:300]}")
        for error in getattr(cause, "schema_errors", ()) or ():
            where = "/".join(str(p) for p in error.absolute_path)
            parts.append(f"  at {where or '(root)'}: {error.message}")
        cause = cause.__cause__ or cause.__context__
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# The stack and one ended job of every kind


@dataclass
class World:
    """What the exercises share: the client, the jobs that ended, the models and dataset."""

    api: Api
    data_dir: Path
    jobs: dict[str, dict]
    dataset: str
    trained: str  # the model the training run registered
    imported: str  # alice's imported model
    tmp: Path  # a folder for the exercises' files


def wait_ended(api: Api, job_id: str, timeout: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.call("GET", f"/v1/jobs/{job_id}", 200, params={"wait": 10}).json()
        if job["status"] in ENDED:
            return job
    raise TimeoutError(f"job {job_id} did not end within {timeout} s")


def tiny_run(dataset: str, steps: int, name: str | None = None) -> dict:
    body: dict[str, Any] = {
        "family": "pix2pix",
        "dataset": dataset,
        "config": {
            "image_size": 32,
            "batch_size": 2,
            "steps": steps,
            "width": 4,
            "log_every": 1,
            "sample_every": 2,
            "sample_count": 2,
        },
    }
    if name is not None:
        body["name"] = name
    return body


def png_file(width: int = 32, height: int = 32, seed: int = 0) -> tuple[str, bytes, str]:
    return ("in.png", png(width, height, seed), "image/png")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("conformance")
    save_tiny_models(data_dir / "models", translator=TRANSLATOR, sampler=SAMPLER)
    pairs = build_demo("edges2photo", tmp_path_factory.mktemp("pairs"), size=32, count=4)
    env = {
        "GANSERVE_API_KEYS": ",".join(KEYS.values()),
        "GANSERVE_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
    }
    with running_stack(data_dir, **env) as (http, _stack):
        spec = http.get("/openapi.json").json()
        api = Api(http, spec, Validators.of(spec), operation_table(spec))
        dataset = api.call(
            "POST",
            "/v1/datasets",
            201,
            data={"kind": "paired", "name": "pairs"},
            files={"archive": ("pairs.zip", zip_folder(pairs), "application/zip")},
        ).json()["id"]
        submitted = {
            "training": api.call(
                "POST", "/v1/training-runs", 202, json=tiny_run(dataset, 4, "conf-p2p")
            ),
            "translation": api.call(
                "POST",
                "/v1/translations",
                202,
                files={"image": png_file(40, 24)},
                data={"model": TRANSLATOR, "seed": "3"},
            ),
            "sample": api.call(
                "POST", "/v1/samples", 202, json={"model": SAMPLER, "count": 2, "seed": 1}
            ),
            "interpolation": api.call(
                "POST",
                "/v1/interpolations",
                202,
                json={"model": SAMPLER, "start": {"seed": 1}, "end": {"seed": 2}, "frames": 3},
            ),
            "projection": api.call(
                "POST",
                "/v1/projections",
                202,
                files={"image": png_file()},
                data={"model": SAMPLER, "steps": "3", "seed": "0"},
            ),
            "inspection": api.call(
                "POST",
                "/v1/inspections",
                202,
                files={"image": png_file()},
                data={"model": SAMPLER},
            ),
        }
        folder_zip = api.call("GET", f"/v1/models/{TRANSLATOR}/exports/safetensors", 200)
        submitted["model_import"] = api.call(
            "POST",
            "/v1/models",
            202,
            files={"file": ("copy.zip", folder_zip.content, "application/zip")},
            data={"id": "alice-p2p", "name": "Alice's copy"},
        )
        export = api.call("POST", f"/v1/models/{TRANSLATOR}/exports", 202, json={"format": "onnx"})
        assert export.json()["status"] == "pending"
        submitted["model_export"] = export.json()["job"]["id"]
        jobs = {}
        for kind, answer in submitted.items():
            job_id = answer if isinstance(answer, str) else answer.json()["id"]
            jobs[kind] = wait_ended(api, job_id)
            assert jobs[kind]["kind"] == kind
            assert jobs[kind]["status"] == "succeeded", jobs[kind]
        yield World(
            api,
            data_dir,
            jobs,
            dataset,
            trained=jobs["training"]["result"]["model"],
            imported=jobs["model_import"]["result"]["model"],
            tmp=tmp_path_factory.mktemp("exercises"),
        )


# ---------------------------------------------------------------------------------------------
# The exercises, one per operation id


def _problem_code(response: httpx.Response) -> str:
    return response.json()["code"]


def health(w: World) -> None:
    assert w.api.call("GET", "/healthz", 200, who=None).json() == {"status": "ok"}


def readiness(w: World) -> None:
    ready = w.api.call("GET", "/readyz", 200, who=None).json()
    assert ready["queues"] and min(ready["queues"].values()) >= 1


def list_models(w: World) -> None:
    ids = {m["id"] for m in w.api.call("GET", "/v1/models", 200).json()["models"]}
    assert {TRANSLATOR, SAMPLER, w.trained, w.imported} <= ids
    w.api.call("GET", "/v1/models", 401, who=None)
    w.api.call("GET", "/v1/models", 401, headers={"Authorization": "Bearer wrong"}, who=None)


def import_model(w: World) -> None:
    # the success: the world's import (its job is checked with the other kinds')
    assert w.jobs["model_import"]["result"]["model_ref"] == f"{w.imported}@1"
    not_zip = {"file": ("m.zip", b"not a zip at all", "application/zip")}
    assert _problem_code(w.api.call("POST", "/v1/models", 422, files=not_zip)) == "not_a_model"
    broken = {"Content-Type": "multipart/form-data; boundary=x"}
    w.api.call("POST", "/v1/models", 400, content=b"--x\r\nnot a part", headers=broken)
    w.api.call("POST", "/v1/models", 401, who=None, files=not_zip)
    w.api.call("POST", "/v1/models", 422, data={"id": "no-file"})
    # another key's id is refused
    refused = w.api.call(
        "POST",
        "/v1/models",
        409,
        who="bob",
        files={"file": ("x.zip", zip_model_folder(w), "application/zip")},
        data={"id": w.imported},
    )
    assert _problem_code(refused) == "model_exists"


def zip_model_folder(w: World) -> bytes:
    return w.api.call("GET", f"/v1/models/{TRANSLATOR}/exports/safetensors", 200).content


def get_model(w: World) -> None:
    info = w.api.call("GET", f"/v1/models/{w.trained}", 200).json()
    assert info["family"] == "pix2pix"
    w.api.call("GET", f"/v1/models/{SAMPLER}@1", 200)
    w.api.call("GET", "/v1/models/no-such-model", 404)
    w.api.call("GET", f"/v1/models/{w.imported}", 404, who="bob")  # alice's
    w.api.call("GET", f"/v1/models/{TRANSLATOR}", 401, who=None)


def update_model(w: World) -> None:
    path = f"/v1/models/{w.imported}"
    renamed = w.api.call("PATCH", path, 200, json={"description": "A copy."}).json()
    assert renamed["description"] == "A copy."
    w.api.call("PATCH", f"/v1/models/{TRANSLATOR}", 403, json={"name": "mine"})  # shared
    w.api.call("PATCH", "/v1/models/no-such-model", 404, json={"name": "x"})
    w.api.call("PATCH", path, 422, json={"name": ""})
    w.api.call("PATCH", path, 401, who=None, json={"name": "x"})


def delete_model(w: World) -> None:
    job = w.api.call(
        "POST",
        "/v1/models",
        202,
        files={"file": ("doomed.zip", zip_model_folder(w), "application/zip")},
        data={"id": "doomed"},
    ).json()
    assert wait_ended(w.api, job["id"])["status"] == "succeeded"
    w.api.call("DELETE", "/v1/models/doomed", 404, who="bob")
    w.api.call("DELETE", f"/v1/models/{TRANSLATOR}", 403)  # shared: the operator's
    w.api.call("DELETE", "/v1/models/doomed", 401, who=None)
    w.api.call("DELETE", "/v1/models/doomed", 204)
    w.api.call("DELETE", "/v1/models/doomed", 404)


def list_model_examples(w: World) -> None:
    examples = w.api.call("GET", f"/v1/models/{w.trained}/examples", 200).json()["examples"]
    assert examples  # the dataset's held-out pair
    assert w.api.call("GET", f"/v1/models/{TRANSLATOR}/examples", 200).json()["examples"] == []
    w.api.call("GET", "/v1/models/no-such-model/examples", 404)


def get_model_example(w: World) -> None:
    example = w.api.call("GET", f"/v1/models/{w.trained}/examples/0", 200)
    assert Image.open(io.BytesIO(example.content)).format == "PNG"
    w.api.call("GET", f"/v1/models/{w.trained}/examples/99", 404)
    w.api.call("GET", f"/v1/models/{w.trained}/examples/first", 422)


def create_model_export(w: World) -> None:
    path = f"/v1/models/{SAMPLER}/exports"
    ready = w.api.call("POST", path, 201, json={"format": "safetensors"})
    assert ready.json()["status"] == "ready" and ready.json()["job"] is None
    assert ready.headers["Location"] == ready.json()["url"]
    # the ONNX export the world made: ready now, with its job
    onnx = w.api.call("POST", f"/v1/models/{TRANSLATOR}/exports", 201, json={"format": "onnx"})
    assert onnx.json()["job"] is None or onnx.json()["job"]["kind"] == "model_export"
    w.api.call("POST", path, 422, json={"format": "tar"})
    w.api.call("POST", path, 422, params={"wait": 99}, json={"format": "onnx"})
    w.api.call("POST", "/v1/models/no-such-model/exports", 404, json={})


def get_model_export(w: World) -> None:
    folder = w.api.call("GET", f"/v1/models/{SAMPLER}/exports/safetensors", 200)
    assert folder.headers["content-type"] == "application/zip"
    assert "tiny-unet/config.json" in zipfile.ZipFile(io.BytesIO(folder.content)).namelist()
    onnx = w.api.call("GET", f"/v1/models/{TRANSLATOR}/exports/onnx", 200)
    assert onnx.headers["content-type"] == "application/octet-stream" and onnx.content
    missing = w.api.call("GET", f"/v1/models/{SAMPLER}/exports/onnx", 404)
    assert _problem_code(missing) == "export_not_found"
    w.api.call("GET", f"/v1/models/{SAMPLER}/exports/tar", 422)
    w.api.call("GET", "/v1/models/no-such-model/exports/safetensors", 404)


def export_model_deprecated(w: World) -> None:
    old = w.api.call("GET", f"/v1/models/{SAMPLER}/export", 200)
    assert old.headers["content-type"] == "application/zip" and "Deprecation" in old.headers
    onnx = w.api.call("GET", f"/v1/models/{TRANSLATOR}/export", 200, params={"format": "onnx"})
    assert onnx.headers["content-type"] == "application/octet-stream"
    # an ONNX export not made yet: 202 and the job (JSON), which makes it
    queued = w.api.call("GET", f"/v1/models/{w.imported}/export", 202, params={"format": "onnx"})
    assert "Deprecation" in queued.headers and queued.headers["Location"] == queued.json()["url"]
    assert wait_ended(w.api, queued.json()["id"])["status"] == "succeeded"
    w.api.call("GET", f"/v1/models/{w.imported}/export", 200, params={"format": "onnx"})
    gone = w.api.call("GET", "/v1/models/no-such-model/export", 404)
    assert "Deprecation" in gone.headers
    w.api.call("GET", f"/v1/models/{SAMPLER}/export", 422, params={"format": "tar"})


def create_translation(w: World) -> None:
    path = "/v1/translations"
    form = {"model": TRANSLATOR}
    w.api.call("POST", path, 202, files={"image": png_file(seed=5)}, data=form)
    held = w.api.call(  # the synchronous mode: the ended job, as documented
        "POST",
        path,
        201,
        files={"image": png_file(seed=6)},
        data=form,
        headers={"Prefer": "wait=30"},
    )
    assert held.json()["status"] == "succeeded" and held.headers["Preference-Applied"] == "wait=30"
    w.api.call(
        "POST", path, 400, files={"image": ("t.png", truncated_png(), "image/png")}, data=form
    )
    w.api.call("POST", path, 401, who=None, files={"image": png_file()}, data=form)
    w.api.call("POST", path, 404, files={"image": png_file()}, data={"model": "no-such-model"})
    big = png(200, 200)
    assert len(big) > MAX_UPLOAD_BYTES
    w.api.call("POST", path, 413, files={"image": ("big.png", big, "image/png")}, data=form)
    w.api.call("POST", path, 415, files={"image": ("x.txt", b"hello", "text/plain")}, data=form)
    invalid = w.api.call(
        "POST", path, 422, files={"image": png_file()}, data={**form, "seed": "-1"}
    )
    assert [e["field"] for e in invalid.json()["errors"]] == ["seed"]
    w.api.call("POST", path, 422, data=form)  # no image
    webp = w.api.call(  # a result format: the image answers as the document says
        "POST",
        path,
        201,
        files={"image": png_file(seed=7)},
        data={**form, "format": "webp", "quality": "80"},
        headers={"Prefer": "wait=30"},
    ).json()
    assert (webp["result"]["format"], webp["result"]["quality"]) == ("webp", 80)
    image = w.api.call("GET", webp["result"]["images"][0], 200)
    assert Image.open(io.BytesIO(image.content)).format == "WEBP"
    lossless = w.api.call(
        "POST", path, 422, files={"image": png_file()}, data={**form, "quality": "80"}
    )
    assert [e["field"] for e in lossless.json()["errors"]] == ["quality"]


def create_sample(w: World) -> None:
    w.api.call("POST", "/v1/samples", 202, json={"model": SAMPLER, "count": 1, "class_label": 2})
    w.api.call("POST", "/v1/samples", 201, json={"model": SAMPLER}, headers={"Prefer": "wait=30"})
    w.api.call("POST", "/v1/samples", 404, json={"model": "no-such-model", "count": 1})
    invalid = w.api.call("POST", "/v1/samples", 422, json={"model": SAMPLER, "count": 0})
    assert invalid.json()["errors"][0]["field"] == "count"
    w.api.call("POST", "/v1/samples", 422, json={"model": TRANSLATOR, "count": 1})  # translates
    w.api.call("POST", "/v1/samples", 401, who=None, json={"model": SAMPLER, "count": 1})
    jpeg = w.api.call(
        "POST",
        "/v1/samples",
        201,
        json={"model": SAMPLER, "format": "jpeg", "quality": 70},
        headers={"Prefer": "wait=30"},
    ).json()
    image = w.api.call("GET", jpeg["result"]["images"][0], 200)
    assert Image.open(io.BytesIO(image.content)).format == "JPEG"
    invalid = w.api.call("POST", "/v1/samples", 422, json={"model": SAMPLER, "format": "gif"})
    assert [e["field"] for e in invalid.json()["errors"]] == ["format"]


def create_interpolation(w: World) -> None:
    sample = w.jobs["sample"]["id"]
    body = {"model": SAMPLER, "start": {"job": sample, "index": 0}, "end": {"seed": 4}}
    w.api.call("POST", "/v1/interpolations", 202, json={**body, "frames": 2})
    w.api.call("POST", "/v1/interpolations", 422, json={**body, "frames": 1})
    w.api.call("POST", "/v1/interpolations", 404, json={**body, "model": "no-such-model"})
    gone = {**body, "start": {"job": NO_JOB, "index": 0}}
    w.api.call("POST", "/v1/interpolations", 404, json=gone)


def create_projection(w: World) -> None:
    form = {"model": SAMPLER, "steps": "1"}
    w.api.call("POST", "/v1/projections", 202, files={"image": png_file(seed=2)}, data=form)
    w.api.call(
        "POST",
        "/v1/projections",
        400,
        files={"image": ("t.png", truncated_png(), "image/png")},
        data=form,
    )
    w.api.call(
        "POST", "/v1/projections", 415, files={"image": ("x", b"text", "text/plain")}, data=form
    )
    w.api.call(
        "POST", "/v1/projections", 422, files={"image": png_file()}, data={**form, "steps": "0"}
    )
    w.api.call(
        "POST", "/v1/projections", 404, files={"image": png_file()}, data={"model": "no-such-model"}
    )


def create_inspection(w: World) -> None:
    translation = w.jobs["translation"]["id"]
    # multipart, as the document says, with no file: each field a part without a file name
    of_job = {"model": (None, TRANSLATOR), "source_job": (None, translation)}
    w.api.call("POST", "/v1/inspections", 202, files=of_job)
    both = {"model": SAMPLER, "source_job": translation}
    w.api.call("POST", "/v1/inspections", 422, files={"image": png_file()}, data=both)
    w.api.call("POST", "/v1/inspections", 422, files={"model": (None, SAMPLER)})  # neither
    unknown = {"model": (None, SAMPLER), "source_job": (None, NO_JOB)}
    w.api.call("POST", "/v1/inspections", 404, files=unknown)
    w.api.call(
        "POST",
        "/v1/inspections",
        415,
        files={"image": ("x", b"text", "text/plain")},
        data={"model": SAMPLER},
    )


def list_datasets(w: World) -> None:
    listed = w.api.call("GET", "/v1/datasets", 200).json()["datasets"]
    assert [d["id"] for d in listed] == [w.dataset]
    assert w.api.call("GET", "/v1/datasets", 200, who="bob").json()["datasets"] == []
    w.api.call("GET", "/v1/datasets", 401, who=None)


def create_dataset(w: World) -> None:
    # the success: the world's dataset
    assert w.api.seen["createDataset"] >= {201}
    w.api.call(
        "POST",
        "/v1/datasets",
        400,
        data={"kind": "images"},
        files={"archive": ("x.zip", b"not a zip", "application/zip")},
    )
    w.api.call(
        "POST",
        "/v1/datasets",
        422,
        data={"kind": "videos"},
        files={"archive": ("x.zip", b"PK", "application/zip")},
    )


def get_dataset(w: World) -> None:
    dataset = w.api.call("GET", f"/v1/datasets/{w.dataset}", 200).json()
    assert dataset["kind"] == "paired" and dataset["image_count"] > 0
    w.api.call("GET", f"/v1/datasets/{w.dataset}", 404, who="bob")
    w.api.call("GET", "/v1/datasets/no-such-dataset", 404)


def delete_dataset(w: World) -> None:
    images = build_demo("faces", w.tmp / "faces", size=16, count=2)
    doomed = w.api.call(
        "POST",
        "/v1/datasets",
        201,
        who="bob",
        data={"kind": "images"},
        files={"archive": ("faces.zip", zip_folder(images), "application/zip")},
    ).json()["id"]
    w.api.call("DELETE", f"/v1/datasets/{doomed}", 404)  # bob's
    w.api.call("DELETE", f"/v1/datasets/{doomed}", 204, who="bob")
    w.api.call("DELETE", f"/v1/datasets/{doomed}", 404, who="bob")


def create_training_run(w: World) -> None:
    # the success: the world's run; errors here
    w.api.call("POST", "/v1/training-runs", 404, json=tiny_run("no-such-dataset", 4))
    bad = tiny_run(w.dataset, 4)
    bad["config"]["steps"] = 0
    invalid = w.api.call("POST", "/v1/training-runs", 422, json=bad)
    assert "steps" in invalid.json()["detail"]
    w.api.call("POST", "/v1/training-runs", 422, json={**tiny_run(w.dataset, 4), "family": "vae"})
    w.api.call("POST", "/v1/training-runs", 401, who=None, json=tiny_run(w.dataset, 4))


def list_families(w: World) -> None:
    families = w.api.call("GET", "/v1/families", 200).json()["families"]
    assert "pix2pix" in [f["name"] for f in families]
    w.api.call("GET", "/v1/families", 401, who=None)


def list_jobs(w: World) -> None:
    everything = w.api.call("GET", "/v1/jobs", 200).json()
    assert {j["kind"] for j in everything["jobs"]} >= set(w.jobs)
    page = {"limit": 1, "status": "succeeded"}
    first = w.api.call("GET", "/v1/jobs", 200, params=page).json()
    assert len(first["jobs"]) == 1 and first["next"]
    following = w.api.call("GET", "/v1/jobs", 200, params={**page, "cursor": first["next"]}).json()
    assert following["jobs"][0]["id"] != first["jobs"][0]["id"]
    on_model = w.api.call("GET", "/v1/jobs", 200, params={"model": TRANSLATOR}).json()
    assert on_model["jobs"] and on_model["next"] is None
    w.api.call("GET", "/v1/jobs", 422, params={"cursor": "not-a-cursor"})
    w.api.call("GET", "/v1/jobs", 422, params={"limit": 0, "status": "sleeping"})
    w.api.call("GET", "/v1/jobs", 401, who=None)


def get_job(w: World) -> None:
    for kind, job in w.jobs.items():  # every kind once it ended (fetched again here)
        again = w.api.call("GET", f"/v1/jobs/{job['id']}", 200).json()
        assert again == job, kind
    w.api.call("GET", f"/v1/jobs/{NO_JOB}", 404)
    w.api.call("GET", f"/v1/jobs/{w.jobs['translation']['id']}", 404, who="bob")
    w.api.call("GET", f"/v1/jobs/{NO_JOB}", 422, params={"wait": 99})
    w.api.call("GET", f"/v1/jobs/{NO_JOB}", 401, who=None)


def read_events(response: httpx.Response) -> list[dict[str, str]]:
    """The events of an SSE body (comments and the retry-only block left out)."""
    events = []
    for block in response.text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        if "data" in fields:
            events.append(fields)
    return events


def stream_job_events(w: World) -> None:
    for kind, job in w.jobs.items():
        stream = w.api.call("GET", f"/v1/jobs/{job['id']}/events", 200)
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.text.startswith("retry: ")
        events = read_events(stream)
        assert [e["event"] for e in events] == ["status"], kind
        for event in events:
            w.api.check_as("GET", f"/v1/jobs/{job['id']}", json.loads(event["data"]))
            assert json.loads(event["data"]) == job
        resumed = w.api.call(
            "GET",
            f"/v1/jobs/{job['id']}/events",
            200,
            headers={"Last-Event-ID": events[-1]["id"]},
        )
        assert read_events(resumed) == []
    w.api.call("GET", f"/v1/jobs/{NO_JOB}/events", 404)
    w.api.call("GET", f"/v1/jobs/{NO_JOB}/events", 401, who=None)


def get_job_image(w: World) -> None:
    for kind in ("translation", "sample", "inspection", "interpolation", "projection"):
        job = w.jobs[kind]
        assert job["result"]["images"], kind
        for url in job["result"]["images"]:
            image = w.api.call("GET", url, 200)
            assert Image.open(io.BytesIO(image.content)).format == "PNG"
    translation = w.jobs["translation"]["id"]
    w.api.call("GET", f"/v1/jobs/{translation}/images/1", 404)
    w.api.call("GET", f"/v1/jobs/{translation}/images/-1", 422)
    w.api.call("GET", f"/v1/jobs/{NO_JOB}/images/0", 404)


def cancel_job(w: World) -> None:
    long_run = tiny_run(w.dataset, 100_000)
    job = w.api.call("POST", "/v1/training-runs", 202, json=long_run).json()
    not_ended = w.api.call("DELETE", f"/v1/jobs/{job['id']}", 409)
    assert _problem_code(not_ended) == "job_not_ended"
    w.api.call("POST", f"/v1/jobs/{job['id']}/cancel", 401, who=None)
    w.api.call("POST", f"/v1/jobs/{job['id']}/cancel", 404, who="bob")
    w.api.call("POST", f"/v1/jobs/{job['id']}/cancel", 202)
    ended = wait_ended(w.api, job["id"])
    assert ended["status"] == "cancelled"
    stream = w.api.call("GET", f"/v1/jobs/{job['id']}/events", 200)
    for event in read_events(stream):
        w.api.check_as("GET", f"/v1/jobs/{job['id']}", json.loads(event["data"]))
    again = w.api.call("POST", f"/v1/jobs/{job['id']}/cancel", 409)
    assert _problem_code(again) == "job_ended"
    w.api.call("POST", f"/v1/jobs/{NO_JOB}/cancel", 404)


def delete_job(w: World) -> None:
    job = w.api.call(
        "POST", "/v1/samples", 202, json={"model": SAMPLER, "count": 1, "seed": 9}
    ).json()
    wait_ended(w.api, job["id"])
    w.api.call("DELETE", f"/v1/jobs/{job['id']}", 404, who="bob")
    w.api.call("DELETE", f"/v1/jobs/{job['id']}", 401, who=None)
    w.api.call("DELETE", f"/v1/jobs/{job['id']}", 204)
    w.api.call("GET", f"/v1/jobs/{job['id']}", 404)
    w.api.call("DELETE", f"/v1/jobs/{job['id']}", 404)
    # 409 job_not_ended: see cancel_job


def get_job_latents(w: World) -> None:
    for kind in ("sample", "interpolation", "projection"):
        job = w.jobs[kind]
        url = job["result"].get("latents_url") or f"/v1/jobs/{job['id']}/latents.npy"
        latents = w.api.call("GET", url, 200)
        assert latents.headers["content-type"] == "application/octet-stream"
        assert np.load(io.BytesIO(latents.content)).dtype == np.float32
    w.api.call("GET", f"/v1/jobs/{w.jobs['translation']['id']}/latents.npy", 404)
    w.api.call("GET", f"/v1/jobs/{NO_JOB}/latents.npy", 404)


def get_job_animation(w: World) -> None:
    job = w.jobs["interpolation"]
    for fmt, url in job["result"]["animation"].items():
        animation = w.api.call("GET", url, 200)
        assert animation.headers["content-type"] == f"image/{fmt}"
        assert Image.open(io.BytesIO(animation.content)).format == fmt.upper()
    w.api.call("GET", f"/v1/jobs/{w.jobs['sample']['id']}/animation.gif", 404)
    w.api.call("GET", f"/v1/jobs/{job['id']}/animation.bmp", 422)


def get_run_preview(w: World) -> None:
    run = w.jobs["training"]
    newest = w.api.call("GET", f"/v1/jobs/{run['id']}/preview", 200)
    assert int(newest.headers["X-Preview-Step"]) == run["progress_detail"]["preview_step"]
    assert Image.open(io.BytesIO(newest.content)).format == "PNG"
    step = run["progress_detail"]["preview_step"]
    w.api.call("GET", f"/v1/jobs/{run['id']}/preview", 200, params={"step": step})
    w.api.call("GET", f"/v1/jobs/{w.jobs['projection']['id']}/preview", 200)
    w.api.call("GET", f"/v1/jobs/{run['id']}/preview", 404, params={"step": step + 1})
    w.api.call("GET", f"/v1/jobs/{w.jobs['sample']['id']}/preview", 404)
    w.api.call("GET", f"/v1/jobs/{run['id']}/preview", 422, params={"step": -1})


def get_run_stats(w: World) -> None:
    run = w.jobs["training"]["id"]
    stats = w.api.call("GET", f"/v1/jobs/{run}/stats", 200).json()["stats"]
    assert [row["step"] for row in stats][:2] == [1, 2]
    later = w.api.call("GET", f"/v1/jobs/{run}/stats", 200, params={"after": 2}).json()
    assert all(row["step"] > 2 for row in later["stats"])
    w.api.call("GET", f"/v1/jobs/{w.jobs['sample']['id']}/stats", 404)
    w.api.call("GET", f"/v1/jobs/{run}/stats", 422, params={"after": -2})


def get_usage(w: World) -> None:
    mine = w.api.call("GET", "/v1/usage", 200).json()["owners"]
    assert len(mine) == 1
    assert len(w.api.call("GET", "/v1/usage", 200, who="operator").json()["owners"]) >= 2
    w.api.call("GET", "/v1/usage", 401, who=None)


def get_webhook_secret(w: World) -> None:
    secret = w.api.call("GET", "/v1/webhook-secret", 200).json()["secret"]
    assert secret.startswith("whsec_")
    assert w.api.call("GET", "/v1/webhook-secret", 200, who="bob").json()["secret"] != secret
    w.api.call("GET", "/v1/webhook-secret", 401, who=None)


def rotate_webhook_secret(w: World) -> None:
    before = w.api.call("GET", "/v1/webhook-secret", 200, who="bob").json()["secret"]
    after = w.api.call("POST", "/v1/webhook-secret/rotate", 200, who="bob").json()["secret"]
    assert after != before
    w.api.call("POST", "/v1/webhook-secret/rotate", 401, who=None)


def list_job_deliveries(w: World) -> None:
    job = w.jobs["translation"]["id"]
    assert w.api.call("GET", f"/v1/jobs/{job}/deliveries", 200).json() == {"deliveries": []}
    w.api.call("GET", f"/v1/jobs/{job}/deliveries", 404, who="bob")
    w.api.call("GET", f"/v1/jobs/{NO_JOB}/deliveries", 404)


EXERCISES: dict[str, Callable[[World], None]] = {
    "getHealth": health,
    "getWebhookSecret": get_webhook_secret,
    "rotateWebhookSecret": rotate_webhook_secret,
    "listJobDeliveries": list_job_deliveries,
    "getReadiness": readiness,
    "listModels": list_models,
    "importModel": import_model,
    "getModel": get_model,
    "updateModel": update_model,
    "deleteModel": delete_model,
    "listModelExamples": list_model_examples,
    "getModelExample": get_model_example,
    "createModelExport": create_model_export,
    "getModelExport": get_model_export,
    "exportModelDeprecated": export_model_deprecated,
    "createTranslation": create_translation,
    "createSample": create_sample,
    "createInterpolation": create_interpolation,
    "createProjection": create_projection,
    "createInspection": create_inspection,
    "listDatasets": list_datasets,
    "createDataset": create_dataset,
    "getDataset": get_dataset,
    "deleteDataset": delete_dataset,
    "createTrainingRun": create_training_run,
    "listFamilies": list_families,
    "listJobs": list_jobs,
    "getJob": get_job,
    "deleteJob": delete_job,
    "streamJobEvents": stream_job_events,
    "getJobImage": get_job_image,
    "cancelJob": cancel_job,
    "getJobLatents": get_job_latents,
    "getJobAnimation": get_job_animation,
    "getRunPreview": get_run_preview,
    "getRunStats": get_run_stats,
    "getUsage": get_usage,
}
# Operations whose errors cannot be provoked cheaply on a healthy stack (503 needs a dead worker).
NO_PRACTICAL_ERROR = {"getHealth", "getReadiness"}


def test_every_operation_has_an_exercise(world):
    in_document = {op_id for _, _, _, op_id in world.api.operations}
    assert in_document - set(EXERCISES) == set(), "operations of /openapi.json without exercise"
    assert set(EXERCISES) - in_document == set(), "exercises of operations that are gone"


def test_every_kind_of_job_ended_as_the_document_says(world):
    """The ended job of each kind, as `GET /v1/jobs/{id}` answered it (validated when fetched),
    has the typed result of its kind."""
    kinds = {
        "translation": "width",
        "sample": "latents_url",
        "inspection": "map_mean",
        "interpolation": "animation",
        "projection": "latent",
        "training": "model_digest",
        "model_import": "architecture",
        "model_export": "inputs",
    }
    assert set(world.jobs) == set(kinds)
    for kind, key in kinds.items():
        assert key in world.jobs[kind]["result"], kind
    assert world.jobs["training"]["progress_detail"]["step"] == 4


@pytest.mark.parametrize("operation", list(EXERCISES))
def test_operation_answers_as_documented(world, operation):
    EXERCISES[operation](world)
    statuses = world.api.seen[operation]
    assert any(200 <= s < 300 for s in statuses), f"{operation}: no success exercised"
    if operation not in NO_PRACTICAL_ERROR:
        assert any(s >= 400 for s in statuses), f"{operation}: no error exercised"


def test_the_validation_refuses_what_the_document_does_not_describe(world):
    """The checks above are not vacuous: bodies, fields and content types the document does not
    describe fail them."""
    job = world.jobs["translation"]
    path = f"/v1/jobs/{job['id']}"
    undescribed = [
        {**job, "undocumented": 1},
        {key: value for key, value in job.items() if key != "kind"},
        {**job, "kind": "sample"},  # a translation's body under another kind
        {**job, "result": {**job["result"], "width": "wide"}},
        {**job, "result": {**job["result"], "undocumented": 1}},
        {**job, "progress_detail": {"step": 1}},
    ]
    for body in undescribed:
        with pytest.raises(AssertionError, match="does not describe"):
            world.api.check_as("GET", path, body)
    image = world.api.http.build_request("GET", job["result"]["images"][0])
    with pytest.raises(AssertionError, match="does not describe"):
        world.api.check(
            httpx.Response(200, content=b"x", headers={"content-type": "image/bmp"}, request=image)
        )
    old_error = {"error": {"code": "job_not_found", "message": "There is no such job."}}
    with pytest.raises(AssertionError, match="does not describe"):
        world.api.check(httpx.Response(404, json=old_error, request=image))
