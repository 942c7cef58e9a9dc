"""The `ganserve` command line (also `python -m ganserve` and `python -m ganserve.cli`): the
supervised stack, its processes one by one, and what is installed and configured; and the
commands that use a running server through its API (`ganserve.api_commands`)."""

from __future__ import annotations

import logging
import os
from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer

from ganserve import api_commands

# The stack's commands import what they need (settings, Redis, torch) in their bodies: the
# commands over the API start without them.

app = typer.Typer(help="ganserve: a self-hosted GAN image service.", no_args_is_help=True)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ganserve {installed_version()}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="print the installed version and exit",
    ),
) -> None:
    """ganserve: pix2pix translation, U-Net GAN and Progressive GAN sampling, training jobs."""


@app.command()
def up(
    demo: bool = typer.Option(
        True, help="at a fresh start, install the pretrained demo models and their datasets"
    ),
    train_demos: bool | None = typer.Option(
        None,
        "--train-demos/--no-train-demos",
        help="at a fresh start, also train one demo model per family in the background "
        "(default: GANSERVE_TRAIN_DEMOS, off)",
    ),
    host: str | None = typer.Option(
        None, help="address the gateway binds to (default: GANSERVE_HOST, 127.0.0.1)"
    ),
    port: int | None = typer.Option(
        None, min=1, max=65535, help="port of the gateway (default: GANSERVE_PORT, 8000)"
    ),
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="storage root: models, datasets, results, embedded Redis "
            "(default: GANSERVE_DATA_DIR, ./var)",
        ),
    ] = None,
) -> None:
    """Start the whole stack: embedded Redis (unless GANSERVE_REDIS_URL), gateway, workers;
    restart any that exits (backoff 1-30 s; stop after 5 exits of one within 60 s). The options
    take the place of the settings they name."""
    from pydantic import ValidationError

    from core.logs import configure_logging
    from core.settings import Settings, get_settings
    from ganserve.embedded_redis import EmbeddedRedisError
    from ganserve.launcher import StartupError
    from ganserve.launcher import up as run_stack

    configure_logging("launcher")
    launcher_log = logging.getLogger("ganserve.launcher")
    given = {"host": host, "port": port, "data_dir": data_dir}
    overrides = {k: v for k, v in given.items() if v is not None}
    try:
        settings = Settings(**overrides) if overrides else get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        typer.echo(f"ganserve: --{first['loc'][0]}: {first['msg']}".replace("_", "-"), err=True)
        raise typer.Exit(2) from None
    try:
        train = settings.train_demos if train_demos is None else train_demos
        code = run_stack(settings, demo=demo, train_demos=train, echo=launcher_log.info)
    except (EmbeddedRedisError, StartupError) as exc:
        typer.echo(f"ganserve: {exc}", err=True)
        code = 1
    raise typer.Exit(code)


@app.command()
def gateway() -> None:
    """Run the gateway alone (GANSERVE_HOST, GANSERVE_PORT; needs GANSERVE_REDIS_URL)."""
    from core.settings import get_settings
    from ganserve.processes import gateway_command

    _exec(gateway_command(get_settings()))


@app.command()
def worker(
    queue: str = typer.Option(..., help="the queue to serve: infer or train"),
    concurrency: int | None = typer.Option(
        None,
        min=1,
        help="pool processes (tasks run at once)",
        show_default="infer: GANSERVE_INFER_CONCURRENCY, else 2 with an NVIDIA GPU and 1 "
        "without; train: 1",
    ),
) -> None:
    """Run one Celery worker on a queue (needs GANSERVE_REDIS_URL)."""
    from ganserve.processes import worker_command

    try:
        command = worker_command(queue, concurrency)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    _exec(command)


def installed_version() -> str:
    """The installed distribution's version ("unknown" when run from an uninstalled tree)."""
    try:
        return metadata.version("ganserve")
    except metadata.PackageNotFoundError:
        return "unknown"


def _exec(command: list[str]) -> None:
    os.execv(command[0], command)


@app.command()
def sweep(
    grace: float | None = typer.Option(
        None,
        min=0,
        help="seconds an entry must be unchanged before it may be removed",
        show_default="GANSERVE_SWEEP_GRACE_SECONDS, 600",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="only list what would be removed"),
) -> None:
    """Remove the objects of expired jobs, orphans, stale exports and this host's staging
    leftovers now (what the workers' sweeper does every GANSERVE_SWEEP_SECONDS, in the store
    GANSERVE_STORAGE_URL names; needs GANSERVE_REDIS_URL)."""
    import redis
    from obstore.exceptions import BaseError as StoreError

    from core.jobs import JobStore
    from core.settings import get_settings
    from core.storage import Storage
    from workers.sweeper import sweep as sweep_storage

    settings = get_settings()
    if not settings.redis_url:
        typer.echo("ganserve: set GANSERVE_REDIS_URL: the sweeper needs the job records", err=True)
        raise typer.Exit(1)
    store = JobStore(redis.Redis.from_url(settings.redis_url), settings.result_ttl)
    grace = settings.sweep_grace_seconds if grace is None else grace
    try:
        report = sweep_storage(Storage.from_settings(settings), store, grace=grace, dry_run=dry_run)
    except redis.RedisError as exc:
        typer.echo(f"ganserve: Redis does not answer: {exc}", err=True)
        raise typer.Exit(1) from None
    except StoreError as exc:  # its text may name local paths: the kind of error only
        typer.echo(f"ganserve: the store does not answer ({type(exc).__name__})", err=True)
        raise typer.Exit(1) from None
    for path in report.removed:
        typer.echo(f"{'would remove' if dry_run else 'removed'} {path}")
    typer.echo(("dry run: would have " if dry_run else "") + report.summary())


@app.command()
def info() -> None:
    """Show the storage root, the registered architectures and the model folders found there."""
    import models  # torch is imported only by the commands that need it
    from core.model_registry import ModelRegistry
    from core.settings import get_settings
    from core.storage import Storage

    settings = get_settings()
    typer.echo(f"storage root (GANSERVE_DATA_DIR): {settings.data_dir.resolve()}")
    typer.echo("architectures:")
    for name in models.list_models():
        arch = models.get_architecture(name)
        typer.echo(f"  {name:24} family={arch.family:8} role={arch.role:13} task={arch.task}")
    registry = ModelRegistry.of(Storage.from_settings(settings))
    ids = registry.ids()
    typer.echo(f"models in {registry.objects.url} ({len(ids)}):")
    for model_id in ids:
        record, found = registry.record(model_id), registry.versions(model_id)
        if record is None:  # removed since it was listed
            continue
        if not found:
            typer.echo(f"  {model_id:24} {'deleted' if record.deleted else 'no version yet'}")
            continue
        newest = found[-1]
        label = f"{model_id}@{newest.version}"
        try:
            card = models.read_card(registry.local_folder(newest))
        except models.CheckpointError as exc:
            typer.echo(f"  {label:24} unusable: {exc}")
            continue
        typer.echo(
            f"  {label:24} {card.architecture} {card.image_size}px "
            f"channels={card.channels} classes={card.num_classes} versions={len(found)}"
        )


api_commands.register(app)  # translate, sample, train, jobs, cancel, models: over the API
for _command in app.registered_commands:  # docstrings' lines joined: the help wraps them
    if _command.help is None and _command.callback is not None:
        _command.help = api_commands.reflow(_command.callback.__doc__)

if __name__ == "__main__":  # python -m ganserve.cli
    app()
