"""`AsyncClient`: the asyncio twin of `Client`, for many requests at once.

    import asyncio
    from ganserve.client import AsyncClient

    async def main() -> None:
        async with AsyncClient() as client:
            pictures = await asyncio.gather(
                *(client.translate(path, "edges2shoes") for path in paths)
            )

Every method of `Client` is here with the same arguments, as a coroutine (`jobs()` and
`AsyncJob.events()` are async iterators); the requests, flows and retry rules are the same
objects (`ganserve.client.operations`), only the way they are sent differs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Mapping
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
from ganserve.client.jobs import AsyncJob, EventCursor, JobEvent
from ganserve.client.results import Inspection, Interpolation, Projection
from ganserve.client.uploads import DatasetArchive

T = TypeVar("T")


class AsyncClient(ClientBase):
    """The asyncio client: the arguments and methods of `Client`, awaited. Use it as an async
    context manager, or `await client.aclose()`."""

    _http: httpx.AsyncClient

    def _connect(
        self, options: dict[str, Any], transport: httpx.AsyncBaseTransport | None
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(**options, transport=transport)

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- running flows (ganserve.client.calls) ------------------------------------------------

    async def _run(self, flow: Flow[T]) -> T:
        stepper = Stepper(flow)
        step = stepper.start()
        while step is not None:
            step = stepper.resume(await self._perform(step))
        return stepper.value  # type: ignore[return-value]

    async def _perform(self, step: Step) -> Outcome:
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        retrying = tenacity.AsyncRetrying(**self._policy.tenacity_options(step.method))
        try:
            return await retrying(self._attempt, step)
        except GanserveError as exc:
            return exc

    async def _attempt(self, call: Call) -> httpx.Response:
        with ExitStack() as stack:
            request = call.build(self._http, stack, self._config.timeout)
            try:
                response = await self._http.send(request, stream=call.download is not None)
                try:
                    if call.download is None or response.is_error:
                        await response.aread()
                        return raise_for_status(response)
                    with Download(call.download) as sink:
                        async for chunk in response.aiter_bytes():
                            sink.write(chunk)
                    return response
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                raise error_from_transport(exc, call.method, call.path) from exc

    async def _event_stream(self, cursor: EventCursor) -> AsyncIterator[JobEvent]:
        options = {"headers": cursor.headers(), "timeout": self._config.stream_timeout}
        try:
            async with httpx_sse.aconnect_sse(self._http, "GET", cursor.path, **options) as source:
                if source.response.is_error:
                    await source.response.aread()
                    raise_for_status(source.response)
                async for sse in source.aiter_sse():
                    if (event := cursor.accept(sse)) is not None:
                        yield event
        except httpx.TransportError as exc:
            raise error_from_transport(exc, "GET", cursor.path) from exc

    async def _submit(self, call: Call, wait: float = 0) -> AsyncJob:
        return AsyncJob(self, await self._run(ops.submit(ops.held(call, wait) if wait else call)))

    # -- jobs (see Client for what each does) -------------------------------------------------

    async def submit_translation(
        self,
        image: ImageInput,
        model: str,
        *,
        wait: float = 0,
        **options: Unpack[ops.TranslationOptions],
    ) -> AsyncJob:
        return await self._submit(ops.translation_call(image, model, **options), wait)

    async def translate(
        self, image: ImageInput, model: str, **options: Unpack[ops.TranslationOptions]
    ) -> Image.Image:
        return await self._run(ops.translate(ops.translation_call(image, model, **options)))

    async def submit_sample(
        self, model: str, count: int = 1, *, wait: float = 0, **options: Unpack[ops.SampleOptions]
    ) -> AsyncJob:
        return await self._submit(ops.sample_call(model, count, **options), wait)

    async def sample(
        self, model: str, count: int = 1, **options: Unpack[ops.SampleOptions]
    ) -> list[Image.Image]:
        return await self._run(ops.sample(ops.sample_call(model, count, **options)))

    async def submit_inspection(
        self,
        image: ImageInput | None,
        model: str,
        *,
        wait: float = 0,
        **options: Unpack[ops.InspectionOptions],
    ) -> AsyncJob:
        return await self._submit(ops.inspection_call(image, model, **options), wait)

    async def inspect(
        self, image: ImageInput | None, model: str, **options: Unpack[ops.InspectionOptions]
    ) -> Inspection:
        return await self._run(ops.inspect(ops.inspection_call(image, model, **options)))

    async def submit_interpolation(
        self,
        model: str,
        start: ops.Endpoint,
        end: ops.Endpoint,
        *,
        wait: float = 0,
        **options: Unpack[ops.InterpolationOptions],
    ) -> AsyncJob:
        return await self._submit(ops.interpolation_call(model, start, end, **options), wait)

    async def interpolate(
        self,
        model: str,
        start: ops.Endpoint,
        end: ops.Endpoint,
        **options: Unpack[ops.InterpolationOptions],
    ) -> Interpolation:
        call = ops.interpolation_call(model, start, end, **options)
        return await self._run(ops.interpolate(call))

    async def submit_projection(
        self,
        image: ImageInput,
        model: str,
        *,
        wait: float = 0,
        **options: Unpack[ops.ProjectionOptions],
    ) -> AsyncJob:
        return await self._submit(ops.projection_call(image, model, **options), wait)

    async def project(
        self, image: ImageInput, model: str, **options: Unpack[ops.ProjectionOptions]
    ) -> Projection:
        return await self._run(ops.project(ops.projection_call(image, model, **options)))

    async def job(self, job_id: str) -> AsyncJob:
        return AsyncJob(self, await self._run(ops.get_job(job_id)))

    async def jobs(
        self,
        kind: str | None = None,
        status: str | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[AsyncJob]:
        pages = ops.JobPages(kind, status, model, limit)
        while (call := pages.next_call()) is not None:
            for data in pages.take(await self._run(ops.request(call))):
                yield AsyncJob(self, data)

    async def download(self, url: str, path: str | os.PathLike[str] | None = None) -> bytes:
        return await self._run(ops.download(url, None if path is None else Path(path)))

    # -- datasets and training ----------------------------------------------------------------

    async def upload_dataset(
        self, path: str | os.PathLike[str], name: str | None = None, *, kind: str
    ) -> dict[str, Any]:
        """As `Client.upload_dataset`; a folder is zipped in a worker thread."""
        archive = DatasetArchive(path)
        try:
            await asyncio.to_thread(archive.build)
            return await self._run(ops.upload_dataset(archive.upload(), kind, name))
        finally:
            archive.remove()

    async def datasets(self) -> list[dict[str, Any]]:
        return await self._run(ops.list_datasets())

    async def dataset(self, dataset_id: str) -> dict[str, Any]:
        return await self._run(ops.get_dataset(dataset_id))

    async def delete_dataset(self, dataset_id: str) -> None:
        await self._run(ops.delete_dataset(dataset_id))

    async def submit_training(
        self,
        dataset: str | Mapping[str, Any],
        family: str,
        config: Mapping[str, Any] | None = None,
        *,
        wait: float = 0,
        **options: Unpack[ops.TrainingOptions],
    ) -> AsyncJob:
        return await self._submit(ops.training_call(dataset, family, config, **options), wait)

    async def train(
        self,
        dataset: str | Mapping[str, Any],
        family: str,
        config: Mapping[str, Any] | None = None,
        *,
        on_progress: Callable[[AsyncJob], object] | None = None,
        **options: Unpack[ops.TrainingOptions],
    ) -> dict[str, Any]:
        """As `Client.train`; `on_progress` may be a plain function or a coroutine function."""
        job = await self.submit_training(dataset, family, config, **options)
        async for _ in job.events():
            if on_progress is not None and asyncio.iscoroutine(called := on_progress(job)):
                await called
        return await self._run(ops.model_of(job.data))

    # -- models -------------------------------------------------------------------------------

    async def models(self) -> list[dict[str, Any]]:
        return await self._run(ops.list_models())

    async def families(self) -> list[dict[str, Any]]:
        return await self._run(ops.list_families())

    async def model(self, ref: str) -> dict[str, Any]:
        return await self._run(ops.get_model(ref))

    async def import_model(
        self, path: str | os.PathLike[str], **options: Unpack[ops.ImportOptions]
    ) -> dict[str, Any]:
        return await self._run(ops.import_model(ops.model_import_call(path, **options)))

    async def export_model(
        self,
        ref: str,
        format: str = "safetensors",
        path: str | os.PathLike[str] | None = None,
    ) -> bytes | Path:
        return await self._run(ops.export_model(ref, format, None if path is None else Path(path)))

    async def delete_model(self, ref: str) -> None:
        await self._run(ops.delete_model(ref))
