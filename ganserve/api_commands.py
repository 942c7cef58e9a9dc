"""The `ganserve` commands that use a running server through its API (`ganserve.client` only:
no torch, models or workers, so they work from the base install): `translate`, `sample`,
`train`, `jobs`, `cancel` and `models`. `register(app)` adds them to the command line.

Each takes `--url` (`GANSERVE_URL`, default http://127.0.0.1:8000) and `--api-key`
(`GANSERVE_API_KEY`). An error of the server or the connection is printed as one sentence on
stderr (the problem's `detail`) with exit code 1; a usage error exits 2; Ctrl-C exits 130
without a traceback. See docs/cli.md.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, ParamSpec, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from ganserve.client import (
    AsyncClient,
    Client,
    ConnectionFailed,
    GanserveError,
    Job,
    Timeout,
    Unauthorized,
)
from ganserve.client.config import DEFAULT_URL, KEY_VARIABLE, URL_VARIABLE
from ganserve.client.jobs import JobView
from ganserve.file_translation import (
    DEFAULT_CONCURRENCY,
    OUTPUT_SUFFIXES,
    STDIN,
    Aborted,
    Failure,
    Item,
    Plan,
    PlanError,
    Run,
    cancel_jobs,
    describe,
    plan,
    sentence,
    translate_all,
)

PANEL = "Commands over the API (--url, --api-key)"
INTERRUPTED = 130  # the shell's code for a command stopped by Ctrl-C (128 + SIGINT)
CANCEL_TIMEOUT_S = 5.0  # per request, when an interrupted `translate` cancels its jobs

P = ParamSpec("P")
R = TypeVar("R")

Url = Annotated[
    str,
    typer.Option(
        "--url",
        envvar=URL_VARIABLE,
        help="Base URL of the ganserve server.",
        rich_help_panel="Server",
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar=KEY_VARIABLE,
        help="API key, sent as 'Authorization: Bearer <key>' (when the server has "
        "GANSERVE_API_KEYS).",
        show_default=False,
        rich_help_panel="Server",
    ),
]
Model = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Model id (its newest version) or <id>@<version>; see 'ganserve models'.",
        show_default=False,
    ),
]

ResultFormat = Annotated[
    Literal["png", "webp", "jpeg"],
    typer.Option(
        "--format",
        help="Format of the result images: png (lossless), webp or jpeg (smaller, lossy: see "
        "--quality).",
    ),
]
Quality = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=100,
        help="Quality of webp or jpeg results, 1-100 (90 if omitted); not for png.",
        show_default=False,
    ),
]

stderr = Console(stderr=True, highlight=False)


def note(message: str) -> None:
    """A line for the person on stderr (stdout keeps what a script reads: ids, paths, tables)."""
    typer.echo(message, err=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `ganserve: <message>` on stderr and exit with `code`."""
    typer.echo(f"ganserve: {message}", err=True)
    raise typer.Exit(code)


def error_sentence(error: GanserveError, url: str) -> str:
    """One sentence for a person about an error of the API or of the connection."""
    if isinstance(error, ConnectionFailed) and not error.sent:
        reason = str(error.__cause__ or "") or error.detail
        return f"The server at {url} does not answer ({reason})."
    if isinstance(error, ConnectionFailed):
        return f"The connection to the server at {url} broke ({error.detail})."
    if isinstance(error, Timeout) and error.code == "timeout":
        return f"The server at {url} did not answer in time."
    sentence = describe(error)
    if isinstance(error, Unauthorized):
        sentence += f" Give a key with --api-key or {KEY_VARIABLE}."
    return sentence


def result_format(format: str, quality: int | None) -> dict[str, Any]:
    """The `format` and `quality` options of a translation or sample (a usage error for a
    quality with png, which is lossless)."""
    if quality is not None and format == "png":
        raise typer.BadParameter(
            "--quality is for webp and jpeg results; png is lossless.", param_hint="'--quality'"
        )
    return {"format": format, "quality": quality}


def api_command(function: Callable[P, R]) -> Callable[P, R]:
    """A command's body with the errors turned into one sentence and an exit code: an API,
    connection or local file error 1, Ctrl-C 130 (no traceback)."""

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        url = str(kwargs.get("url") or DEFAULT_URL)
        try:
            return function(*args, **kwargs)
        except GanserveError as exc:
            fail(error_sentence(exc, url))
        except OSError as exc:  # a local file: an output folder not writable, a full disk
            where = f"{exc.filename}: " if exc.filename else ""
            fail(sentence(f"{where}{exc.strerror or exc}"))
        except KeyboardInterrupt:
            fail("Interrupted.", INTERRUPTED)

    return run


@contextmanager
def connect(url: str, api_key: str | None) -> Iterator[Client]:
    """A client of the server (a usage error for a URL that is not http(s))."""
    try:
        client = Client(url, api_key=api_key)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--url'") from None
    with client:
        yield client


def table_console() -> Console:
    """The console tables are printed on: as wide as they need when stdout is not a
    terminal (a pipe or a file gets whole ids, never cut to 80 columns)."""
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=10_000)


def progress_bar(console: Console, *, enabled: bool) -> Progress:
    """The bar of a batch of files: done/total, percent, elapsed, time left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
    )


# -- translate ---------------------------------------------------------------------------------


def translate(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT...",
            help="Image files, folders (their .png .jpg .jpeg .webp .bmp files, recursively) "
            "or '-' (one image on stdin, the result on stdout).",
            show_default=False,
        ),
    ],
    model: Model,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder of the outputs: <out>/<input's name>.png for a file, "
            "<out>/<path inside the folder>.png for a folder's images (.webp, .jpg with "
            "--format).  \\[default: translated]",
            show_default=False,
        ),
    ] = None,
    mode: Annotated[
        Literal["native", "resize"],
        typer.Option(
            help="native: at the image's own resolution (tiled when large); resize: squeezed to "
            "the model's size and stretched back."
        ),
    ] = "native",
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Seed of the dropout noise (random per image if omitted).",
            show_default=False,
        ),
    ] = None,
    format: ResultFormat = "png",
    quality: Quality = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "-j",
            min=1,
            max=256,
            help="Translations in flight at once: enough for the server to batch them, "
            "fewer than its queue limit (GANSERVE_MAX_QUEUED_JOBS).",
        ),
    ] = DEFAULT_CONCURRENCY,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Translate again the inputs whose output exists (else skipped)."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress bar or summary; failures are still listed."
        ),
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Translate image files and folders with a pix2pix model, several at a time.

    Outputs are PNGs (or WebP, JPEG with --format) named after their inputs, the input's size;
    an output that exists already is skipped, so running the same command again after an
    interruption translates only the rest. Files that fail are listed with the reason at the
    end (exit code 1).

    \b
      ganserve translate photos/ --model facades --out facades-out
      ganserve translate a.jpg b.png -m edges2shoes@2 --seed 3
      ganserve translate photos/ -m facades --format jpeg --quality 85
      ganserve translate - -m edges2shoes < edges.png > shoe.png
    """
    options = {"seed": seed, "mode": mode, **result_format(format, quality)}
    if STDIN in inputs:
        if len(inputs) > 1 or out is not None:
            raise typer.BadParameter(
                "'-' reads one image from stdin and writes its result to stdout: give it "
                "alone, without --out.",
                param_hint="'INPUT...'",
            )
        _translate_stdin(model, options, url, api_key)
        return
    folder = out if out is not None else Path("translated")
    try:
        todo = plan(inputs, folder, overwrite=overwrite, suffix=OUTPUT_SUFFIXES[format])
    except PlanError as exc:
        raise typer.BadParameter(str(exc), param_hint="'INPUT...'") from None
    started = time.perf_counter()
    failures = _translate_files(todo.items, model, options, concurrency, quiet, url, api_key)
    if not quiet:
        note(summary(len(todo.items) - len(failures), todo, failures, started))
    if failures:
        note(f"Failed ({len(failures)}):")
        for failure in failures:
            note(f"  {failure.item.label}: {failure.reason}")
        raise typer.Exit(1)


def summary(written: int, todo: Plan, failures: list[Failure], started: float) -> str:
    """`N written in T s (R images/s), M skipped (output already there), F failed.`"""
    seconds = time.perf_counter() - started
    parts = [f"{written} written"]
    if written:
        parts[0] += f" in {seconds:.1f} s ({written / seconds:.1f} images/s)"
    if todo.skipped:
        parts.append(f"{len(todo.skipped)} skipped (output already there)")
    if failures:
        parts.append(f"{len(failures)} failed")
    return ", ".join(parts) + "."


def _translate_files(
    items: list[Item],
    model: str,
    options: dict[str, Any],
    concurrency: int,
    quiet: bool,
    url: str,
    api_key: str | None,
) -> list[Failure]:
    """Translate the files with the translation `options` (`seed`, `mode`, `format`,
    `quality`) and a progress bar; the failures (exit on an error that stops the run, or on
    Ctrl-C after cancelling the jobs in flight)."""
    if not items:
        return []
    try:
        client = AsyncClient(url, api_key=api_key)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--url'") from None
    run = Run()
    bar = progress_bar(stderr, enabled=stderr.is_terminal and not quiet)

    async def main() -> None:
        async with client:
            task = bar.add_task("translating", total=len(items))

            def done(item: Item, failure: Failure | None) -> None:
                failed = f" ({len(run.failures)} failed)" if run.failures else ""
                bar.update(task, advance=1, description=f"translating{failed}")

            await translate_all(
                client,
                items,
                model,
                **options,
                concurrency=concurrency,
                run=run,
                on_done=done,
            )

    try:
        with bar:
            asyncio.run(main())
    except Aborted as exc:
        _cancel_in_flight(url, api_key, run)
        fail(f"{error_sentence(exc.error, url)} ({run.written} of {len(items)} written.)")
    except KeyboardInterrupt:
        _cancel_in_flight(url, api_key, run)
        fail(
            f"Interrupted: {run.written} of {len(items)} written; run the same command again "
            "to translate the rest.",
            INTERRUPTED,
        )
    return run.failures


def _cancel_in_flight(url: str, api_key: str | None, run: Run) -> None:
    """Cancel the jobs this run submitted and left (best effort; a second Ctrl-C skips it)."""
    with suppress(KeyboardInterrupt):
        cancel_jobs(url, api_key, sorted(run.in_flight), CANCEL_TIMEOUT_S)


def _translate_stdin(model: str, options: dict[str, Any], url: str, api_key: str | None) -> None:
    """Translate the image on stdin with the translation `options` and write the result image
    to stdout."""
    if sys.stdout.isatty():
        suffix = OUTPUT_SUFFIXES[options["format"]]
        raise typer.BadParameter(
            f"'-' writes an image to stdout, which is a terminal: redirect it (> out{suffix}).",
            param_hint="'INPUT...'",
        )
    content = sys.stdin.buffer.read()
    if not content:
        raise typer.BadParameter("Nothing came on stdin.", param_hint="'INPUT...'")
    with connect(url, api_key) as client:
        job = client.submit_translation(content, model, **options)
        result = job.result()
        picture = client.download(result["images"][0])
    sys.stdout.buffer.write(picture)
    sys.stdout.buffer.flush()


# -- sample ------------------------------------------------------------------------------------


def sample(
    model: Model,
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="Images to draw.")] = 1,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Seed of the latents: the same seed (and options) gives the same images "
            "(random if omitted).",
            show_default=False,
        ),
    ] = None,
    class_label: Annotated[
        int | None,
        typer.Option(
            "--class-label",
            min=0,
            help="Class to draw, for a class-conditional model (its class_count in "
            "'ganserve models').",
            show_default=False,
        ),
    ] = None,
    truncation: Annotated[
        float | None,
        typer.Option(
            help="Truncation of the latents (smaller: more typical, less varied images).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of the images.")] = Path(
        "samples"
    ),
    format: ResultFormat = "png",
    quality: Quality = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Draw new images from a sampling model (U-Net GAN, Progressive GAN) and write them as
    PNGs (or WebP, JPEG with --format):
    <out>/<model>-seed<seed>[-class<c>][-t<truncation>]-<k>.png (printed, one a line).

    \b
      ganserve sample --model digits --count 8 --seed 7 --class-label 3 --out threes
      ganserve sample --model faces --count 64 --format webp
    """
    encoding = result_format(format, quality)
    with connect(url, api_key) as client:
        job = client.submit_sample(
            model, count, seed=seed, class_label=class_label, truncation=truncation, **encoding
        )
        with stderr.status("sampling", spinner="dots"):
            result = job.result()
        stem = _sample_stem(model, result, class_label, truncation)
        for k, image_url in enumerate(result.get("images") or []):
            path = out / f"{stem}-{k:03d}{OUTPUT_SUFFIXES[format]}"
            client.download(image_url, path)
            typer.echo(str(path))


def _sample_stem(
    model: str, result: dict[str, Any], class_label: int | None, truncation: float | None
) -> str:
    parts = [model.replace("/", "_"), f"seed{result.get('seed')}"]
    if class_label is not None:
        parts.append(f"class{class_label}")
    if truncation is not None:
        parts.append(f"t{truncation:g}")
    return "-".join(parts)


# -- train -------------------------------------------------------------------------------------


def config_value(text: str) -> tuple[str, Any]:
    """A `--set key=value` as (key, value): the value read as JSON when it is JSON (numbers,
    true/false, lists), else as text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise typer.BadParameter(f"{text!r} is not key=value.", param_hint="'--set'")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def train(
    dataset: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            exists=True,
            help="The dataset: a folder (zipped and uploaded) or a .zip. paired: A/ and B/ "
            "(or train/A, train/B) with matching names, or side-by-side AB images; images: "
            "images anywhere; labeled: a folder per class.",
            show_default=False,
        ),
    ],
    family: Annotated[
        str,
        typer.Option(
            "--family",
            "-f",
            help="Model family to train (the server's: `ganserve models` shows those in use; "
            "GET /v1/families lists them all).",
            show_default=False,
        ),
    ],
    kind: Annotated[
        Literal["paired", "images", "labeled"] | None,
        typer.Option(
            help="Layout of the dataset.  \\[default: the first kind the family trains on: "
            "paired for a translation family, images for the others]",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="Id of the model it registers (default: one made from the run).",
            show_default=False,
        ),
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="A training option, repeatable: steps, image_size, batch_size, seed, the "
            "family's own (width, lr, ...); VALUE is read as JSON (10, 0.5, true) else as text.",
            show_default=False,
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="Show the run's progress (step, losses) until it ends and print the model "
            "it registered; without it, print the job id and return.",
        ),
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Upload a dataset and start a training run on it.

    \b
      ganserve train my-pairs/ --family pix2pix --set steps=2000 --set image_size=128 --follow
      ganserve train digits.zip -f unetgan --kind labeled --name digits
    """
    if dataset.is_file() and not zipfile.is_zipfile(dataset):
        raise typer.BadParameter(f"{dataset} is neither a folder nor a zip.", param_hint="'DIR'")
    config = dict(config_value(text) for text in settings or [])
    with connect(url, api_key) as client:
        layout = kind or default_kind(client, family)
        job = _start_run(client, dataset, layout, family, config, name)
        if not follow:
            note(
                f"training run queued; follow it: ganserve jobs; stop it: ganserve cancel {job.id}"
            )
            typer.echo(job.id)
            return
        note(f"training run {job.id}")
        try:
            _follow(job)
        except KeyboardInterrupt:
            fail(
                f"Stopped following; the run {job.id} goes on (ganserve cancel {job.id} stops it).",
                INTERRUPTED,
            )
        if job.status == "cancelled":
            fail(f"The training run {job.id} was cancelled.")
        if job.status != "succeeded":
            reason = (job.error or {}).get("message") or "no reason given"
            fail(f"The training run {job.id} failed: {sentence(reason)}")
        result = job.data.get("result") or {}
        ref = str(result.get("model"))
        if result.get("version") is not None:
            ref = f"{ref}@{result['version']}"
        model = client.model(ref)
        typer.echo(
            f"model {model['ref']} registered: {model['family']} {model['task']}, "
            f"{model['image_size']} px"
        )


def default_kind(client: Client, family: str) -> str:
    """The first dataset kind `family` trains on, as the server says (`GET /v1/families`)."""
    known = {f["name"]: f for f in client.families()}
    if family not in known:
        fail(f"There is no model family {family!r}; the server trains {', '.join(known)}.", 2)
    return str(known[family]["dataset_kinds"][0])


def _start_run(
    client: Client,
    dataset: Path,
    layout: str,
    family: str,
    config: dict[str, Any],
    name: str | None,
) -> Job:
    """Upload the dataset and queue the run; the dataset is deleted again when the server
    refuses the run (a bad --set), so a failed command leaves nothing behind."""
    with stderr.status(f"uploading {dataset}", spinner="dots"):
        uploaded = client.upload_dataset(dataset, name=dataset.stem or None, kind=layout)
    note(f"dataset {uploaded['id']} uploaded: {uploaded.get('image_count')} images ({layout})")
    try:
        return client.submit_training(uploaded, family, config, name=name)
    except GanserveError:
        with suppress(GanserveError):
            client.delete_dataset(uploaded["id"])
        raise


def losses_text(job: JobView) -> str:
    """A training run's latest losses (`progress_detail.losses`), as `name value` pairs."""
    losses = (job.data.get("progress_detail") or {}).get("losses") or {}
    return "  ".join(f"{k} {v:.4g}" for k, v in losses.items() if isinstance(v, int | float))


def progress_line(job: JobView) -> str:
    """A training run's state in a line: status, step/total, losses."""
    detail = job.data.get("progress_detail") or {}
    parts = [job.status]
    if detail.get("total"):
        parts.append(f"step {detail.get('step', 0)}/{detail['total']}")
    if losses := losses_text(job):
        parts.append(losses)
    return "  ".join(parts)


LINE_EVERY_S = 2.0  # without a terminal: at most one progress line this often


def _follow(job: Job) -> None:
    """Show a run's events until it ends: a progress bar on a terminal, else lines."""
    if stderr.is_terminal:
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[losses]}"),
            console=stderr,
        )
        with bar:
            task = bar.add_task("queued", total=None, losses="")
            for event in job.events():
                detail = event.data.get("progress_detail") or {}
                bar.update(
                    task,
                    description=event.status,
                    total=detail.get("total") or None,
                    completed=detail.get("step") or 0,
                    losses=losses_text(event),
                )
        return
    last = 0.0
    for event in job.events():
        now = time.monotonic()
        if event.type == "status" or event.ended or now - last >= LINE_EVERY_S:
            note(progress_line(event))
            last = now


# -- jobs, cancel, models ----------------------------------------------------------------------


def jobs(
    kind: Annotated[
        str | None,
        typer.Option(
            help="Only this kind: translation, sample, inspection, interpolation, projection, "
            "training, model_import, model_export.",
            show_default=False,
        ),
    ] = None,
    status: Annotated[
        Literal["queued", "running", "succeeded", "failed", "cancelled"] | None,
        typer.Option(help="Only jobs in this status.", show_default=False),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Only jobs of this model (<id>: any version, or <id>@<n>).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most jobs shown (newest first).")] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the jobs' JSON (a list) instead of a table.")
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List your jobs, newest first."""
    with connect(url, api_key) as client:
        found = [
            job.data for job in client.jobs(kind=kind, status=status, model=model, limit=limit)
        ]
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    table = Table(box=box.SIMPLE)
    for column in ("ID", "KIND", "STATUS", "PROGRESS", "MODEL", "CREATED", "ERROR"):
        table.add_column(column, no_wrap=column != "ERROR")
    for data in found:
        error = data.get("error") or {}
        result = data.get("result") or {}
        made = result.get("model") if data.get("kind") == "training" else None
        if made and result.get("version") is not None:
            made = f"{made}@{result['version']}"
        table.add_row(
            *(
                Text(str(cell))
                for cell in (
                    data["id"],
                    data.get("kind", ""),
                    data.get("status", ""),
                    f"{float(data.get('progress') or 0):.0%}",
                    data.get("model") or made or "",
                    data.get("created_at") or "",
                    error.get("message", ""),
                )
            )
        )
    table_console().print(table)


def cancel(
    job_ids: Annotated[
        list[str],
        typer.Argument(metavar="ID...", help="Ids of jobs to cancel.", show_default=False),
    ],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Cancel jobs: a queued job at once, a running one at its next step (a training run keeps
    its last checkpoint). Exit code 1 when one could not be cancelled (it had ended)."""
    failed = 0
    with connect(url, api_key) as client:
        for job_id in job_ids:
            try:
                job = Job(client, {"id": job_id, "status": "running"}).cancel()
            except GanserveError as exc:
                if exc.status is None:
                    raise  # the server does not answer: the others would not do better
                note(f"{job_id}: {error_sentence(exc, url)}")
                failed += 1
                continue
            state = "cancelled" if job.status == "cancelled" else "cancelling (it stops soon)"
            typer.echo(f"{job_id}: {state}")
    if failed:
        raise typer.Exit(1)


def models(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the models' JSON (a list) instead of a table.")
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List the models you may use (their newest versions)."""
    with connect(url, api_key) as client:
        found = client.models()
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    table = Table(box=box.SIMPLE)
    for column in ("MODEL", "NAME", "FAMILY", "TASK", "SIZE", "CLASSES", "CREATED"):
        table.add_column(column, no_wrap=column != "NAME")
    for data in found:
        table.add_row(
            *(
                Text(str(cell))
                for cell in (
                    data.get("ref") or data["id"],
                    data.get("name", ""),
                    data.get("family", ""),
                    data.get("task", ""),
                    f"{data.get('image_size', '')} px",
                    data.get("class_count") or "",
                    data.get("created_at") or "",
                )
            )
        )
    table_console().print(table)


COMMANDS: tuple[Callable[..., None], ...] = (translate, sample, train, jobs, cancel, models)


def reflow(doc: str | None) -> str:
    """A docstring as help text: its paragraphs' lines joined (the help panels wrap them to the
    terminal), except those of a paragraph marked with \\b (examples)."""
    paragraphs = inspect.cleandoc(doc or "").split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else p.replace("\n", " ") for p in paragraphs)


def register(app: typer.Typer) -> None:
    """Add the API commands to the `ganserve` command line (in their own help panel)."""
    for command in COMMANDS:
        app.command(help=reflow(command.__doc__), rich_help_panel=PANEL)(api_command(command))
