"""What each client method asks of the server: its requests (`Call`s) and its flows, shared by
`Client` and `AsyncClient` (see `ganserve.client.calls`).

The routes are those of the API reference (docs/api): jobs are created by a POST that answers
202 with the job, and followed with `GET /v1/jobs/{id}?wait=` (a long poll of at most 30 s) until
they end; their result images are at the URLs of `result.images` (PNG, or the WebP or JPEG a
translation or sample asked for with `format`). The blocking methods send their POST with
`Prefer: wait=30` (`held`): a job that ends within that time comes back in the POST's own answer
(201), with no long poll after it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypedDict
from urllib.parse import quote

import httpx
from PIL import Image

from ganserve.client.calls import Call, Flow, Sleep
from ganserve.client.errors import (
    Conflict,
    JobCancelled,
    JobFailed,
    ServerError,
    Timeout,
)
from ganserve.client.images import ImageInput, decode_image, image_upload
from ganserve.client.results import Inspection, Interpolation, Projection
from ganserve.client.uploads import Upload, file_upload

ENDED = frozenset({"succeeded", "failed", "cancelled"})
MAX_WAIT_S = 30.0  # the server's longest long poll
MAX_PREFER_WAIT_S = 60  # the longest `Prefer: wait` the server honours
PAGE_SIZE = 100
_EXPORT_POLLS = 120  # `export_pending` answers followed before giving up

Endpoint = int | Sequence[float] | Mapping[str, Any]
"""An end of an interpolation: a seed (int), a latent vector, or the endpoint object itself
(`{"seed"|"latent"|"job": ..., "index": ..., "class_label": ...}`)."""


ResultFormat = Literal["png", "webp", "jpeg"]


class TranslationOptions(TypedDict, total=False):
    """Options of a translation: `seed` of the dropout noise (random if omitted); `mode`
    `native` (the image's own resolution, tiled when large; the default) or `resize`;
    `format` of the result (`png`, the default, `webp` or `jpeg`) and the `quality` (1-100,
    90 if omitted) of a webp or jpeg one."""

    seed: int | None
    mode: Literal["native", "resize"]
    format: ResultFormat | None
    quality: int | None


class SampleOptions(TypedDict, total=False):
    """Options of a sample: `seed` (random if omitted; the same seed gives the same images),
    `class_label` (class-conditional models), `truncation` of the latents, `filter`
    (discriminator-guided: `{"method": "top", "keep": 0.5}` or `{"method": "drs"}`), and the
    images' `format` and `quality` (as a translation's)."""

    seed: int | None
    class_label: int | None
    truncation: float | None
    filter: Mapping[str, Any] | None
    format: ResultFormat | None
    quality: int | None


class InspectionOptions(TypedDict, total=False):
    """Options of an inspection: `input`, the A image a pix2pix model's B image translates;
    `class_label` to judge as; or `source_job` (a job or its id) and `source_image` to inspect
    an earlier translation's or sample's result image instead of uploading one."""

    input: ImageInput | None
    class_label: int | None
    source_job: Any
    source_image: int


class InterpolationOptions(TypedDict, total=False):
    """Options of an interpolation: `frames` (2-120, default 16), `path` (`slerp` or
    `linear`), `truncation` of seed endpoints, `fps` of the animation (default 12)."""

    frames: int
    path: Literal["slerp", "linear"]
    truncation: float | None
    fps: int


class ProjectionOptions(TypedDict, total=False):
    """Options of a projection: optimisation `steps` (default 300), `seed` of the starting
    latent, `class_label`, `discriminator_loss` (`auto`, `on` or `off`)."""

    steps: int
    seed: int | None
    class_label: int | None
    discriminator_loss: Literal["auto", "on", "off"]


class TrainingOptions(TypedDict, total=False):
    """Options of a training run: `name` of the run and its model, `init_from` (a model id to
    fine-tune from), `background` (publish at checkpoints, step aside for other runs), `devices`
    (GPUs of the training worker's host, or CPU processes, trained on at once)."""

    name: str | None
    init_from: str | None
    background: bool
    devices: int | None


class ImportOptions(TypedDict, total=False):
    """Options of a model import: the model's `id` (an id of one of your models imports a new
    version of it), its `name` and `description`."""

    id: str | None
    name: str | None
    description: str | None


def segment(value: str) -> str:
    """A path segment (a job id, a model reference `<id>@<n>`) quoted for a URL."""
    return quote(str(value), safe="@")


def job_path(job_id: str) -> str:
    """The path of a job."""
    return f"/v1/jobs/{segment(job_id)}"


def _id_of(job: Any) -> str:
    """The id of a job given as a Job, its JSON or its id."""
    if isinstance(job, Mapping):
        return str(job["id"])
    return str(getattr(job, "id", job))


def _json(**fields: Any) -> dict[str, Any]:
    """A JSON body without the fields left at None."""
    return {k: v for k, v in fields.items() if v is not None}


# -- job-creating requests --------------------------------------------------------------------


def translation_call(
    image: ImageInput,
    model: str,
    *,
    seed: int | None = None,
    mode: str = "native",
    format: str | None = None,
    quality: int | None = None,
) -> Call:
    """`POST /v1/translations` (multipart: the image and the form fields)."""
    return Call(
        "POST",
        "/v1/translations",
        data={"model": model, "seed": seed, "mode": mode, "format": format, "quality": quality},
        files={"image": image_upload(image)},
    )


def sample_call(
    model: str,
    count: int = 1,
    *,
    seed: int | None = None,
    class_label: int | None = None,
    truncation: float | None = None,
    filter: Mapping[str, Any] | None = None,
    format: str | None = None,
    quality: int | None = None,
) -> Call:
    """`POST /v1/samples` (JSON)."""
    body = _json(
        seed=seed, class_label=class_label, truncation=truncation, format=format, quality=quality
    )
    if filter is not None:
        body["filter"] = dict(filter)
    return Call("POST", "/v1/samples", json={"model": model, "count": count, **body})


def inspection_call(
    image: ImageInput | None,
    model: str,
    *,
    input: ImageInput | None = None,
    class_label: int | None = None,
    source_job: Any = None,
    source_image: int = 0,
) -> Call:
    """`POST /v1/inspections` (multipart: an image, or a source job)."""
    files: dict[str, Upload] = {}
    if image is not None:
        files["image"] = image_upload(image)
    if input is not None:
        files["input"] = image_upload(input, "input")
    data = {"model": model, "class_label": class_label}
    if source_job is not None:
        data |= {"source_job": _id_of(source_job), "source_image": source_image}
    return Call("POST", "/v1/inspections", data=data, files=files or None)


def _endpoint(end: Endpoint) -> dict[str, Any]:
    if isinstance(end, bool):
        raise TypeError("An interpolation endpoint is a seed, a latent vector or a mapping.")
    if isinstance(end, int):
        return {"seed": end}
    if isinstance(end, Mapping):
        return dict(end)
    return {"latent": [float(x) for x in end]}


def interpolation_call(
    model: str,
    start: Endpoint,
    end: Endpoint,
    *,
    frames: int = 16,
    path: str = "slerp",
    truncation: float | None = None,
    fps: int = 12,
) -> Call:
    """`POST /v1/interpolations` (JSON)."""
    body = _json(truncation=truncation)
    return Call(
        "POST",
        "/v1/interpolations",
        json={
            "model": model,
            "start": _endpoint(start),
            "end": _endpoint(end),
            "frames": frames,
            "path": path,
            "fps": fps,
            **body,
        },
    )


def projection_call(
    image: ImageInput,
    model: str,
    *,
    steps: int | None = None,
    seed: int | None = None,
    class_label: int | None = None,
    discriminator_loss: str = "auto",
) -> Call:
    """`POST /v1/projections` (multipart: the image and the form fields)."""
    data = {
        "model": model,
        "steps": steps,
        "seed": seed,
        "class_label": class_label,
        "discriminator_loss": discriminator_loss,
    }
    return Call("POST", "/v1/projections", data=data, files={"image": image_upload(image)})


def training_call(
    dataset: str | Mapping[str, Any],
    family: str,
    config: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    init_from: str | None = None,
    background: bool = False,
    devices: int | None = None,
) -> Call:
    """`POST /v1/training-runs` (JSON)."""
    body = _json(name=name, init_from=init_from, devices=devices)
    return Call(
        "POST",
        "/v1/training-runs",
        json={
            "family": family,
            "dataset": _id_of(dataset),
            "config": dict(config or {}),
            "background": background,
            **body,
        },
    )


def model_import_call(
    path: str | os.PathLike[str],
    *,
    id: str | None = None,
    name: str | None = None,
    description: str | None = None,
) -> Call:
    """`POST /v1/models` (multipart: the model file, streamed from disk)."""
    data = {"id": id, "name": name, "description": description}
    upload = file_upload(path, "application/octet-stream")
    return Call("POST", "/v1/models", data=data, files={"file": upload})


# -- flows ------------------------------------------------------------------------------------


def json_of(response: httpx.Response | None) -> Any:
    """The JSON of a successful answer (None for 204 No Content)."""
    if response is None or response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise ServerError(
            response.status_code,
            "invalid_response",
            f"The answer to {response.request.method} {response.request.url.path} is not JSON.",
            response.text[:500],
        ) from None


def request(call: Call) -> Flow[Any]:
    """One request; its JSON."""
    return json_of((yield call))


def get_job(job_id: str) -> Flow[dict[str, Any]]:
    """A job's JSON."""
    return (yield from request(Call("GET", job_path(job_id))))


def wait_job(job_id: str, timeout: float | None = None) -> Flow[dict[str, Any]]:
    """Long-poll a job until it has ended (its JSON); `Timeout` after `timeout` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = MAX_WAIT_S if deadline is None else min(MAX_WAIT_S, deadline - time.monotonic())
        params = {"wait": round(left, 3)} if left >= 0.001 else None
        call = Call("GET", job_path(job_id), params=params, hold=max(0.0, left))
        job = yield from request(call)
        if job["status"] in ENDED:
            return job
        if deadline is not None and time.monotonic() >= deadline:
            raise Timeout(
                f"The job {job_id} is still {job['status']} after {timeout:g} s.",
                code="job_not_ended",
            )


def outcome(job: Mapping[str, Any]) -> dict[str, Any]:
    """The result of an ended job; `JobFailed` or `JobCancelled` when it has none."""
    if job["status"] == "failed":
        error = job.get("error") or {}
        raise JobFailed(
            str(error.get("code", "failed")), str(error.get("message", "The job failed.")), job
        )
    if job["status"] == "cancelled":
        raise JobCancelled(job)
    return dict(job.get("result") or {})


def finished(job_id: str, timeout: float | None = None) -> Flow[dict[str, Any]]:
    """Wait for a job and return its JSON if it succeeded (else `JobFailed`/`JobCancelled`)."""
    job = yield from wait_job(job_id, timeout)
    outcome(job)
    return job


def download(url: str, path: Path | None = None) -> Flow[bytes]:
    """The body of a GET (into `path` when given, then b"")."""
    response = yield Call("GET", url, download=path)
    return b"" if path is not None or response is None else response.content


def result_images(job: Mapping[str, Any]) -> Flow[list[Image.Image]]:
    """A succeeded job's result images, downloaded and decoded."""
    urls = (job.get("result") or {}).get("images") or []
    pictures = []
    for url in urls:
        pictures.append(decode_image((yield from download(url))))
    return pictures


def held(call: Call, seconds: float = MAX_WAIT_S) -> Call:
    """A job-creating `call` whose answer the server may hold until the job ends, at most
    `seconds` (whole, 1-60): `Prefer: wait=N`, answered 201 with the ended job, else 202."""
    whole = max(1, min(MAX_PREFER_WAIT_S, round(seconds)))
    headers = {**(call.headers or {}), "Prefer": f"wait={whole}"}
    return dataclasses.replace(call, headers=headers, hold=call.hold + whole)


def submit(call: Call) -> Flow[dict[str, Any]]:
    """A job-creating request; the job's JSON."""
    return (yield from request(call))


def run_job(call: Call) -> Flow[tuple[dict[str, Any], list[Image.Image]]]:
    """Submit a job (held by the server until it ends, when that is quick), wait for its
    result if it had not ended, download its images."""
    job = yield from submit(held(call))
    done = job if job["status"] in ENDED else (yield from wait_job(job["id"]))
    outcome(done)
    return done, (yield from result_images(done))


def translate(call: Call) -> Flow[Image.Image]:
    """A translation's result image."""
    _, pictures = yield from run_job(call)
    return pictures[0]


def sample(call: Call) -> Flow[list[Image.Image]]:
    """A sample's result images."""
    _, pictures = yield from run_job(call)
    return pictures


def inspect(call: Call) -> Flow[Inspection]:
    """An inspection's realness map, overlay and scores."""
    return Inspection.of(*(yield from run_job(call)))


def interpolate(call: Call) -> Flow[Interpolation]:
    """An interpolation's frames and animation URLs."""
    return Interpolation.of(*(yield from run_job(call)))


def project(call: Call) -> Flow[Projection]:
    """A projection's latent, reconstruction and scores."""
    return Projection.of(*(yield from run_job(call)))


def model_of(job: Mapping[str, Any]) -> Flow[dict[str, Any]]:
    """The model version an ended training run or import registered (`JobFailed` or
    `JobCancelled` when it registered none)."""
    result = outcome(job)
    ref = str(result["model"])
    if result.get("version") is not None:
        ref = f"{ref}@{result['version']}"
    return (yield from get_model(ref))


def import_model(call: Call) -> Flow[dict[str, Any]]:
    """Submit an import, wait for it, and return the model version it registered."""
    job = yield from submit(call)
    return (yield from model_of((yield from wait_job(job["id"]))))


def export_model(ref: str, fmt: str, path: Path | None) -> Flow[bytes | Path]:
    """Create an export (`POST .../exports`), wait while its job runs, download the file."""
    created = yield Call("POST", f"{model_path(ref)}/exports", json={"format": fmt})
    export = json_of(created)
    job = export.get("job")
    if export.get("status") == "failed" and job:
        outcome(job)
    if export.get("status") == "pending" and job:
        yield from finished(job["id"])
    url = export.get("url") or f"{model_path(ref)}/exports/{segment(fmt)}"
    for _ in range(_EXPORT_POLLS):
        try:
            content = yield from download(url, path)
        except Conflict as exc:
            if exc.code != "export_pending":
                raise
            yield Sleep(exc.retry_after or 1.0)
        else:
            return content if path is None else path
    content = yield from download(url, path)
    return content if path is None else path


class JobPages:
    """The state of a walk through `GET /v1/jobs`: the filters, the cursor of the next page
    and how many jobs are still wanted (`limit`, None for all)."""

    def __init__(
        self,
        kind: str | None = None,
        status: str | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> None:
        self.filters = _json(kind=kind, status=status, model=model)
        self.left = limit
        self.cursor: str | None = None
        self.done = limit is not None and limit <= 0

    def next_call(self) -> Call | None:
        """The request of the next page (None when the walk is over)."""
        if self.done:
            return None
        size = PAGE_SIZE if self.left is None else min(PAGE_SIZE, self.left)
        params = {**self.filters, "limit": size, **_json(cursor=self.cursor)}
        return Call("GET", "/v1/jobs", params=params)

    def take(self, page: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The jobs of a page still wanted; the walk ends without a `next` cursor."""
        jobs = list(page.get("jobs") or [])
        if self.left is not None:
            jobs = jobs[: self.left]
            self.left -= len(jobs)
        self.cursor = page.get("next")
        self.done = not self.cursor or not jobs or self.left == 0
        return jobs


# -- models and datasets ----------------------------------------------------------------------


def model_path(ref: str) -> str:
    """The path of a model or model version."""
    return f"/v1/models/{segment(ref)}"


def list_models() -> Flow[list[dict[str, Any]]]:
    """The models the caller may use."""
    return list((yield from request(Call("GET", "/v1/models")))["models"])


def list_families() -> Flow[list[dict[str, Any]]]:
    """The model families the server trains: name, task, dataset kinds, config schema."""
    return list((yield from request(Call("GET", "/v1/families")))["families"])


def get_model(ref: str) -> Flow[dict[str, Any]]:
    """A model (`<id>`: its newest version) or a version (`<id>@<n>`)."""
    return (yield from request(Call("GET", model_path(ref))))


def delete_model(ref: str) -> Flow[None]:
    """Delete a model or one version."""
    yield from request(Call("DELETE", model_path(ref)))


def upload_dataset(upload: Upload, kind: str, name: str | None) -> Flow[dict[str, Any]]:
    """`POST /v1/datasets` (multipart: the zip, streamed from disk); the dataset's JSON."""
    data = {"kind": kind, "name": name}
    call = Call("POST", "/v1/datasets", data=data, files={"archive": upload})
    return (yield from request(call))


def list_datasets() -> Flow[list[dict[str, Any]]]:
    """The caller's datasets."""
    return list((yield from request(Call("GET", "/v1/datasets")))["datasets"])


def get_dataset(dataset_id: str) -> Flow[dict[str, Any]]:
    """One of the caller's datasets."""
    return (yield from request(Call("GET", f"/v1/datasets/{segment(dataset_id)}")))


def delete_dataset(dataset_id: str) -> Flow[None]:
    """Delete one of the caller's datasets."""
    yield from request(Call("DELETE", f"/v1/datasets/{segment(dataset_id)}"))
