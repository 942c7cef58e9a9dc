"""`Client`: the blocking client of a ganserve server.

    from ganserve.client import Client

    with Client("http://127.0.0.1:8000") as client:
        picture = client.translate("edges.png", "edges2shoes")   # a PIL image
        picture.save("shoe.png")

Each job kind has a method that blocks until the result and returns it ready to use
(`translate`, `sample`, `inspect`, `interpolate`, `project`, `train`) and a `submit_*` twin that
returns a `Job` at once. Failed requests are retried as `ganserve.client.retry` says: never a
job-creating POST that may have reached the server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx
import httpx_sse
import tenacity
from PIL import Image

from ganserve.client import operations as ops
from ganserve.client.calls import Call, Download, Flow, Outcome, Sleep, Step, Stepper
from ganserve.client.config import ClientBase
from ganserve.client.errors import GanserveError, error_from_transport, raise_for_status
from ganserve.client.images import ImageInput
from ganserve.client.jobs import EventCursor, Job, JobEvent
from ganserve.client.results import Inspection, Interpolation, Projection
from ganserve.client.uploads import DatasetArchive

T = TypeVar("T")


class Client(ClientBase):
    """A blocking client. `url` and `api_key` default to the `GANSERVE_URL` and
    `GANSERVE_API_KEY` environment variables (then `http://127.0.0.1:8000`, no key); `timeout`
    is the limit of one request in seconds (a long poll or an event stream gets more); `retries`
    is how often a failed request is retried, or a whole `RetryPolicy`. Use it as a context
    manager, or call `close()`.

    Retries (`ganserve.client.retry`) back off exponentially with jitter and honour
    `Retry-After`. A GET is retried on any connection error or timeout, 429 and 503. A POST
    that creates a job is retried only when it cannot have created one: a connect error (it
    never left), 429 or 503 (refused before anything was made); never after a read timeout, a
    broken connection or another 5xx, since the job may exist already (see `jobs()`)."""

    _http: httpx.Client

    def _connect(
        self, options: dict[str, Any], transport: httpx.BaseTransport | None
    ) -> httpx.Client:
        return httpx.Client(**options, transport=transport)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- running flows (ganserve.client.calls) ------------------------------------------------

    def _run(self, flow: Flow[T]) -> T:
        stepper = Stepper(flow)
        step = stepper.start()
        while step is not None:
            step = stepper.resume(self._perform(step))
        return stepper.value  # type: ignore[return-value]

    def _perform(self, step: Step) -> Outcome:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        retrying = tenacity.Retrying(**self._policy.tenacity_options(step.method))
        try:
            return retrying(self._attempt, step)
        except GanserveError as exc:
            return exc

    def _attempt(self, call: Call) -> httpx.Response:
        with ExitStack() as stack:
            request = call.build(self._http, stack, self._config.timeout)
            try:
                response = self._http.send(request, stream=call.download is not None)
                stack.callback(response.close)
                if call.download is None or response.is_error:
                    response.read()
                    return raise_for_status(response)
                with Download(call.download) as sink:
                    for chunk in response.iter_bytes():
                        sink.write(chunk)
                return response
            except httpx.TransportError as exc:
                raise error_from_transport(exc, call.method, call.path) from exc

    def _event_stream(self, cursor: EventCursor) -> Iterator[JobEvent]:
        options = {"headers": cursor.headers(), "timeout": self._config.stream_timeout}
        try:
            with httpx_sse.connect_sse(self._http, "GET", cursor.path, **options) as source:
                if source.response.is_error:
                    source.response.read()
                    raise_for_status(source.response)
                for sse in source.iter_sse():
                    if (event := cursor.accept(sse)) is not None:
                        yield event
        except httpx.TransportError as exc:
            raise error_from_transport(exc, "GET", cursor.path) from exc

    def _submit(self, call: Call, wait: float = 0) -> Job:
        return Job(self, self._run(ops.submit(ops.held(call, wait) if wait else call)))

    # -- jobs ---------------------------------------------------------------------------------

    def submit_translation(
        self,
        image: ImageInput,
        model: str,
        *,
        wait: float = 0,
        **options: Unpack[ops.TranslationOptions],
    ) -> Job:
        """Queue a translation of `image` (a path, bytes, a binary file or a PIL image) by the
        pix2pix model `model` (`<id>` or `<id>@<version>`); options: `seed`, `mode`, `format`
        (`png`, `webp`, `jpeg`) and `quality`. With `wait` (seconds, at most 60; every
        `submit_*` takes it) the server answers once the job has ended, if it ends within that
        time (`Prefer: wait`): the job comes back ended."""
        return self._submit(ops.translation_call(image, model, **options), wait)

    def translate(
        self, image: ImageInput, model: str, **options: Unpack[ops.TranslationOptions]
    ) -> Image.Image:
        """Translate `image` and return the result (the input's size); as `submit_translation`."""
        return self._run(ops.translate(ops.translation_call(image, model, **options)))

    def submit_sample(
        self, model: str, count: int = 1, *, wait: float = 0, **options: Unpack[ops.SampleOptions]
    ) -> Job:
        """Queue `count` new images of a sampling model; options: `seed`, `class_label`,
        `truncation`, `filter`, `format` (`png`, `webp`, `jpeg`) and `quality`."""
        return self._submit(ops.sample_call(model, count, **options), wait)

    def sample(
        self, model: str, count: int = 1, **options: Unpack[ops.SampleOptions]
    ) -> list[Image.Image]:
        """Draw `count` new images and return them; the same seed gives the same pixels."""
        return self._run(ops.sample(ops.sample_call(model, count, **options)))

    def submit_inspection(
        self,
        image: ImageInput | None,
        model: str,
        *,
        wait: float = 0,
        **options: Unpack[ops.InspectionOptions],
    ) -> Job:
        """Queue a realness map of `image` by the model's discriminator (or of an earlier
        job's result image: `image=None, source_job=...`); options: `input`, `class_label`,
        `source_job`, `source_image`."""
        return self._submit(ops.inspection_call(image, model, **options), wait)

    def inspect(
        self, image: ImageInput | None, model: str, **options: Unpack[ops.InspectionOptions]
    ) -> Inspection:
        """Draw a realness map and return it with its scores (see `Inspection`)."""
        return self._run(ops.inspect(ops.inspection_call(image, model, **options)))

    def submit_interpolation(
        self,
        model: str,
        start: ops.Endpoint,
        end: ops.Endpoint,
        *,
        wait: float = 0,
        **options: Unpack[ops.InterpolationOptions],
    ) -> Job:
        """Queue the frames between two latents (each a seed, a vector or an endpoint
        mapping); options: `frames`, `path`, `truncation`, `fps`."""
        return self._submit(ops.interpolation_call(model, start, end, **options), wait)

    def interpolate(
        self,
        model: str,
        start: ops.Endpoint,
        end: ops.Endpoint,
        **options: Unpack[ops.InterpolationOptions],
    ) -> Interpolation:
        """Draw the frames between two latents and return them (see `Interpolation`)."""
        return self._run(ops.interpolate(ops.interpolation_call(model, start, end, **options)))

    def submit_projection(
        self,
        image: ImageInput,
        model: str,
        *,
        wait: float = 0,
        **options: Unpack[ops.ProjectionOptions],
    ) -> Job:
        """Queue the search of the latent from which `model` redraws `image`; options:
        `steps`, `seed`, `class_label`, `discriminator_loss`."""
        return self._submit(ops.projection_call(image, model, **options), wait)

    def project(
        self, image: ImageInput, model: str, **options: Unpack[ops.ProjectionOptions]
    ) -> Projection:
        """Project `image` into the model's latent space and return it (see `Projection`)."""
        return self._run(ops.project(ops.projection_call(image, model, **options)))

    def job(self, job_id: str) -> Job:
        """One job by its id."""
        return Job(self, self._run(ops.get_job(job_id)))

    def jobs(
        self,
        kind: str | None = None,
        status: str | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> Iterator[Job]:
        """The caller's jobs, newest first, page after page (at most `limit`; None: all),
        filtered by kind, status and model (`<id>` for any version, or `<id>@<n>`)."""
        pages = ops.JobPages(kind, status, model, limit)
        while (call := pages.next_call()) is not None:
            for data in pages.take(self._run(ops.request(call))):
                yield Job(self, data)

    def download(self, url: str, path: str | os.PathLike[str] | None = None) -> bytes:
        """The file at a URL the server gave (an animation, latents): its bytes, or b"" once
        written to `path`."""
        return self._run(ops.download(url, None if path is None else Path(path)))

    # -- datasets and training ----------------------------------------------------------------

    def upload_dataset(
        self, path: str | os.PathLike[str], name: str | None = None, *, kind: str
    ) -> dict[str, Any]:
        """Upload a dataset: a folder (zipped here into a temporary file) or a `.zip`; `kind`
        is `paired` (pix2pix), `images` or `labeled` (a folder per class). Its JSON."""
        with DatasetArchive(path) as archive:
            return self._run(ops.upload_dataset(archive.upload(), kind, name))

    def datasets(self) -> list[dict[str, Any]]:
        """The caller's datasets, newest first."""
        return self._run(ops.list_datasets())

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        return self._run(ops.get_dataset(dataset_id))

    def delete_dataset(self, dataset_id: str) -> None:
        self._run(ops.delete_dataset(dataset_id))

    def submit_training(
        self,
        dataset: str | Mapping[str, Any],
        family: str,
        config: Mapping[str, Any] | None = None,
        *,
        wait: float = 0,
        **options: Unpack[ops.TrainingOptions],
    ) -> Job:
        """Queue a training run of `family` (`pix2pix`, `unetgan`, `pggan`) on a dataset (its
        id or JSON) with `config` overrides; options: `name`, `init_from`, `background`,
        `devices`."""
        return self._submit(ops.training_call(dataset, family, config, **options), wait)

    def train(
        self,
        dataset: str | Mapping[str, Any],
        family: str,
        config: Mapping[str, Any] | None = None,
        *,
        on_progress: Callable[[Job], object] | None = None,
        **options: Unpack[ops.TrainingOptions],
    ) -> dict[str, Any]:
        """Train, calling `on_progress(job)` at each event of the run (progress and status),
        and return the JSON of the model version it registered."""
        job = self.submit_training(dataset, family, config, **options)
        for _ in job.events():
            if on_progress is not None:
                on_progress(job)
        return self._run(ops.model_of(job.data))

    # -- models -------------------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        """The models the caller may use."""
        return self._run(ops.list_models())

    def families(self) -> list[dict[str, Any]]:
        """The model families the server trains (`GET /v1/families`): name, task, the dataset
        kinds each trains on, its options' schema."""
        return self._run(ops.list_families())

    def model(self, ref: str) -> dict[str, Any]:
        """One model at its newest version (`<id>`) or at a version (`<id>@<n>`)."""
        return self._run(ops.get_model(ref))

    def import_model(
        self, path: str | os.PathLike[str], **options: Unpack[ops.ImportOptions]
    ) -> dict[str, Any]:
        """Import a model zip (or a reference `*_net_G.pth`), wait for the import job, and
        return the JSON of the model version it registered; options: `id`, `name`,
        `description`."""
        return self._run(ops.import_model(ops.model_import_call(path, **options)))

    def export_model(
        self,
        ref: str,
        format: str = "safetensors",
        path: str | os.PathLike[str] | None = None,
    ) -> bytes | Path:
        """Export a model (`safetensors`: its folder as a zip; `onnx`: its generator), waiting
        while an ONNX export runs: the file's bytes, or its path once written to `path`."""
        return self._run(ops.export_model(ref, format, None if path is None else Path(path)))

    def delete_model(self, ref: str) -> None:
        """Delete a model (`<id>`) or one version (`<id>@<n>`)."""
        self._run(ops.delete_model(ref))
