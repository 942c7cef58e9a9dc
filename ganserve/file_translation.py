"""Translating files and folders through the API, for `ganserve translate`: which files, where
their outputs go, and running them with bounded concurrency (torch-free: only the client).

`plan()` turns the command's inputs into `Item`s: a file is translated into `<out>/<its name,
.png>`, a folder's images (recursively, by extension, hidden files and folders left out) into
`<out>/<their path inside the folder, .png>`, so sub-folders are mirrored (`.webp` or `.jpg`
instead when the results are asked for in that format: `OUTPUT_SUFFIXES`). An output that exists
already is skipped unless `overwrite`: running the same command again after an interruption
translates only what is missing. Outputs are written under a temporary name and renamed when
complete (`ganserve.client`'s downloads), so an interrupted run never leaves half an image.

`translate_all()` keeps at most `concurrency` translations in flight (uploaded, queued or
running, or their result downloading) so that the server's infer worker can batch them. A
failure of one file (a corrupt image, a job that failed) is recorded and the others go on; an
error that every file would meet (a wrong key, an unknown model, a server that does not answer)
stops the run at once (`Aborted`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganserve.client import (
    AsyncClient,
    Client,
    ConnectionFailed,
    Forbidden,
    GanserveError,
    InvalidField,
    Job,
    NotFound,
    ServiceUnavailable,
    StorageFull,
    Unauthorized,
)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
OUTPUT_SUFFIXES = {"png": ".png", "webp": ".webp", "jpeg": ".jpg"}  # by result format
DEFAULT_CONCURRENCY = 16  # in flight: two CPU batches (GANSERVE_MAX_BATCH 8), see performance.md
STDIN = "-"


class PlanError(ValueError):
    """The inputs cannot be translated as given (a missing path, two inputs with one output,
    no image at all): a usage error."""


@dataclass(frozen=True)
class Item:
    """One file to translate: its path, where its output goes, and how to name it to a person
    (the path as given on the command line, or below the folder given)."""

    source: Path
    output: Path
    label: str


@dataclass
class Plan:
    """The files to translate, and those skipped because their output exists."""

    items: list[Item] = field(default_factory=list)
    skipped: list[Item] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.items) + len(self.skipped)


@dataclass(frozen=True)
class Failure:
    """A file that was not translated, and why (a sentence)."""

    item: Item
    reason: str


def is_image_name(path: Path) -> bool:
    """Whether a file name has one of the image extensions (case-insensitive)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def folder_images(folder: Path, skip: Path | None = None) -> Iterable[Path]:
    """The image files below `folder`, sorted, hidden files and folders left out, and nothing
    below `skip` (the output folder, when it lies inside the input folder)."""
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and (skip is None or not _inside((here / d).resolve(), skip))
        )
        for name in sorted(files):
            path = here / name
            if not name.startswith(".") and is_image_name(path) and path.is_file():
                yield path


def plan(
    inputs: Sequence[str], out: Path, *, overwrite: bool = False, suffix: str = ".png"
) -> Plan:
    """The files of the inputs (paths of files or folders) and their outputs under `out`, named
    with `suffix` (`PlanError` for a missing path, two inputs with one output, or no image
    found)."""
    resolved_out = out.resolve()
    found: list[Item] = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            for image in folder_images(path, skip=resolved_out):
                relative = image.relative_to(path)
                found.append(Item(image, out / relative.with_suffix(suffix), str(image)))
        elif path.is_file():
            found.append(Item(path, out / Path(path.name).with_suffix(suffix), given))
        else:
            raise PlanError(f"{given}: no such file or folder.")
    if not found:
        names = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise PlanError(f"No image files ({names}) in {', '.join(inputs)}.")
    by_output: dict[Path, Item] = {}
    for item in found:
        key = item.output.resolve()
        if key in by_output:
            if by_output[key].source.resolve() == item.source.resolve():
                continue  # the same file given twice
            raise PlanError(
                f"{by_output[key].label} and {item.label} would both be written to "
                f"{item.output}; translate them with different --out folders."
            )
        if key == item.source.resolve():
            raise PlanError(f"{item.label} would be overwritten by its own translation.")
        by_output[key] = item
    result = Plan()
    for item in by_output.values():
        (result.skipped if item.output.exists() and not overwrite else result.items).append(item)
    return result


class Aborted(Exception):
    """An error that every remaining file would meet: the run stops (`error` says why)."""

    def __init__(self, error: GanserveError) -> None:
        super().__init__(str(error))
        self.error = error


def stops_the_run(error: GanserveError) -> bool:
    """Whether an error is not the file's own but the run's: a wrong or missing key, a model
    that is not there or not a translator, a server that does not answer or cannot work."""
    if isinstance(error, Unauthorized | Forbidden | InvalidField | ServiceUnavailable):
        return True
    if isinstance(error, StorageFull):
        return True
    if isinstance(error, NotFound):
        return error.code == "model_not_found"
    return isinstance(error, ConnectionFailed) and not error.sent


@dataclass
class Run:
    """The state of a `translate_all`: failures so far, files written, and the ids of the jobs
    submitted and not yet ended here (cancelled on an interruption)."""

    failures: list[Failure] = field(default_factory=list)
    written: int = 0
    in_flight: set[str] = field(default_factory=set)


HOLD_S = 30  # how long the server may hold a submission's answer (`Prefer: wait`)


async def translate_one(
    client: AsyncClient, item: Item, model: str, options: dict[str, Any], run: Run
) -> None:
    """Translate one file with the translation `options` (`seed`, `mode`, `format`,
    `quality`) and write its output (temporary name, then renamed). The server holds the
    submission's answer until the job ends (`wait`): one request instead of two."""
    job = await client.submit_translation(item.source, model, **options, wait=HOLD_S)
    run.in_flight.add(job.id)
    try:
        result = await job.result()
    except Exception:
        run.in_flight.discard(job.id)
        raise
    # (cancelled here, by an interruption: the job stays in `in_flight`, to be cancelled)
    run.in_flight.discard(job.id)
    await client.download(result["images"][0], item.output)


async def translate_all(
    client: AsyncClient,
    items: Sequence[Item],
    model: str,
    *,
    seed: int | None = None,
    mode: str = "native",
    format: str | None = None,
    quality: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    run: Run,
    on_done: Callable[[Item, Failure | None], None] = lambda item, failure: None,
) -> Run:
    """Translate `items` with at most `concurrency` in flight, recording the failures in `run`
    (`Aborted` for an error that stops the run; the other tasks are cancelled)."""
    queue = list(reversed(items))
    options = {"seed": seed, "mode": mode, "format": format, "quality": quality}

    async def worker() -> None:
        while queue:
            item = queue.pop()
            failure = None
            try:
                await translate_one(client, item, model, options, run)
                run.written += 1
            except GanserveError as exc:
                if stops_the_run(exc):
                    raise Aborted(exc) from exc
                failure = Failure(item, describe(exc))
            except OSError as exc:  # the input could not be read, the output not written
                failure = Failure(item, f"{exc.strerror or exc}.")
            if failure is not None:
                run.failures.append(failure)
            on_done(item, failure)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(concurrency, len(items)))):
                group.create_task(worker())
    except BaseExceptionGroup as group:
        if (aborted := unwrap_aborted(group)) is not None:
            raise aborted from None
        raise
    return run


def unwrap_aborted(error: BaseException) -> Aborted | None:
    """The `Aborted` inside a TaskGroup's exception group (None if there is none)."""
    if isinstance(error, Aborted):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := unwrap_aborted(inner)) is not None:
                return found
    return None


def sentence(text: str) -> str:
    """`text` ending with a full stop (unless it ends with one, or ! or ?)."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def describe(error: GanserveError) -> str:
    """A sentence for a person: the problem's detail (or the failed job's message)."""
    return sentence(error.detail or str(error))


def cancel_jobs(url: str, api_key: str | None, job_ids: Iterable[str], timeout: float) -> int:
    """Ask the server to cancel jobs (best effort, a short timeout, no retries); how many it
    accepted."""
    cancelled = 0
    ids = list(job_ids)
    if not ids:
        return 0
    try:
        with Client(url, api_key=api_key, timeout=timeout, retries=0) as client:
            for job_id in ids:
                try:
                    Job(client, {"id": job_id, "status": "running"}).cancel()
                    cancelled += 1
                except GanserveError:
                    continue  # ended meanwhile, or the server is gone: nothing to do
    except GanserveError:
        pass
    return cancelled
