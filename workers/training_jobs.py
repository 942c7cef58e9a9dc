"""Training runs: the work of the `train` queue's jobs.

A training job's params (`core.params.TrainingParams`, parsed once: `training_params`):
`family` (pix2pix, unetgan, pggan), `dataset` (an uploaded dataset's id), optional `name` (the
id of the model it registers) and `config`: run options (`core.training_runs.RunConfig`:
`steps`, `image_size`, `batch_size`, ...) and the family's own hyperparameters (its
`core.training_config` dataclass), all in one flat object. An unknown key, or a value of the
wrong type, fails the job with a message listing the valid keys.

`run_training` in steps: `prepare_run` (dataset, run folder, options), `claim_model` (the
model id), `train_run` (in process or under torchrun, stopped by `StopCheck`) and `finish_run`
(how the job ends, the model registered).

Defaults (`service_defaults` in `core.families`) make a run that finishes in minutes on a CPU:
small images, a few hundred steps, small networks for U-Net GAN and Progressive GAN, metrics at
the end (SWD, and FID/KID/IS when `GANSERVE_INCEPTION_WEIGHTS` is set; L1/PSNR/SSIM for
pix2pix). A run on a GPU passes the paper's sizes in `config`.

The run folder is `runs/<job id>/` in the store (`training.run_files`: options.json,
stats.jsonl, tensorboard/, samples/, model/, training_state.pt), written through this host's
working copy (`workers.run_sync`). A run delivered again (its worker died) resumes from
`training_state.pt` and continues exactly, on this host or on another (which downloads the run
folder first). The dataset is read from a local folder: the stored one, or on S3 this host's
cached download (`Storage.folders`). The task's lease (`workers.jobs`) keeps
two copies of one run from training at the same time; it is renewed by a heartbeat and at every
progress report, and checked once a second: a copy that lost it (it stalled for longer than the
lease and another copy took over) stops before its next step without writing anything.

Progress goes to the job record (`progress` = step/total, `progress_detail` = step, total, the
latest losses, `preview_step`: the step of the newest sample grid, which the gateway serves at
`/v1/jobs/{id}/preview`). Cancellation is cooperative: the loop checks the job's cancellation
flag before every step, stops, writes its checkpoint and the job ends `cancelled` with its run
folder kept.
The run claims its model id for the job's owner when it starts (`model_id_for`,
`core.model_registry`). On completion (and, for a background run, at every checkpoint) the run's
model folder is copied into a staging folder and registered as the model's next immutable version
(`workers.registration`, which checks the owner again) with the run and dataset in its
provenance, so `GET /v1/models` lists it with its metrics and the inference workers serve it at
their next job. A fine-tune starts from the model version pinned at submission (`init_from`).

A run that asks for `devices: N` (N > 1) trains under torchrun on N GPUs of the worker's host
(N CPU processes where it has no CUDA): `workers.distributed_training`, with the same callbacks,
so progress, cancellation, yielding, checkpoints and registration work as described above.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import re
import shutil
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pydantic
from obstore.exceptions import BaseError as StoreError

from core.families import FAMILIES
from core.jobs import QUEUE_TRAIN, JobKind, JobNotFound, JobStatus
from core.model_folder import add_provenance
from core.model_registry import ModelMissing, ModelRegistry, ModelTaken, VersionRecord
from core.params import InvalidParams, TrainingParams, parse_params
from core.queues import waiting_job_ids
from core.storage import DATASET_FILE, RUN_STATE_FILE, SAFE_ID, dataset_key, run_key, staging_folder
from core.training_runs import InvalidConfig, check_config
from training.data import DatasetError, DatasetWarning
from training.families import training_family
from training.loop import Progress, RunOptions, RunResult, train
from training.state import StateError
from workers.distributed_training import check_devices, train_on_devices
from workers.errors import JobFailure, exception_text
from workers.jobs import JobContext, Outcome, Yielded
from workers.model_cache import configure_torch
from workers.registration import register_version
from workers.run_sync import RunSync, remove_stale_copies, store_unavailable
from workers.shutdown import WorkerShuttingDown, shutdown_requested, sigterm_requests_stop


def _cadence(steps: int) -> dict[str, int]:
    """Log, sample, checkpoint and evaluate cadences scaled to the run's length."""
    every = max(1, min(100, steps // 5))
    return {
        "log_every": max(1, min(10, steps // 20)),
        "sample_every": every,
        "checkpoint_every": every,
        "metrics_every": max(1, steps),  # at the end of the run
    }


def run_length(family_name: str, options: RunOptions, config: Any) -> int:
    """Steps the run will take: `steps`, or what the family's schedule sets (Progressive GAN)."""
    try:
        return training_family(family_name).planned_steps(config, options.image_size, options.steps)
    except ValueError as exc:
        raise JobFailure("invalid_config", f"invalid training config: {exc}") from None


def read_dataset(ctx: JobContext, dataset_id: Any) -> tuple[Path, dict[str, Any]]:
    """A local folder of the dataset (the stored one, or this host's cached download) and its
    `dataset.json` (JobFailure when missing or unreadable)."""
    if not isinstance(dataset_id, str) or not SAFE_ID.match(dataset_id):
        raise JobFailure("dataset_not_found", f"there is no dataset called {dataset_id!r}")
    try:
        record = ctx.storage.objects.read(dataset_key(dataset_id, DATASET_FILE))
    except StoreError as exc:
        raise store_unavailable("read from", exc) from None
    if record is None:
        raise JobFailure(
            "dataset_not_found",
            f"there is no dataset called {dataset_id!r} (it may have been deleted)",
        )
    try:
        meta = json.loads(record)
    except ValueError as exc:
        raise JobFailure(
            "bad_dataset",
            f"the description of dataset {dataset_id!r} is unreadable: {exception_text(exc)}",
        ) from None
    if not isinstance(meta, dict):
        raise JobFailure("bad_dataset", f"the description of dataset {dataset_id!r} is invalid")
    # a dataset never changes once stored; its id and time of creation name it for good
    identity = f"{dataset_id}-{meta.get('created_at', '')}"
    try:
        folder = ctx.storage.folders.folder(dataset_key(dataset_id), identity, kind="datasets")
    except FileNotFoundError:  # deleted meanwhile
        raise JobFailure(
            "dataset_not_found",
            f"there is no dataset called {dataset_id!r} (it may have been deleted)",
        ) from None
    except StoreError as exc:
        raise store_unavailable("read from", exc) from None
    return folder, meta


def build_run(
    family_name: str, config: Any, *, data: Path, out: Path, kind: str | None, name: str, **extra
) -> tuple[RunOptions, Any]:
    """RunOptions and the family config of a job, defaults filled in, validated.

    `extra` sets run options the worker owns (device, inception weights, resume...).
    """
    if family_name not in FAMILIES:
        raise JobFailure(
            "invalid_config",
            f"unknown family {family_name!r}; choose one of {', '.join(FAMILIES)}",
        )
    if kind is not None and kind not in FAMILIES[family_name].dataset_kinds:
        wanted = " or ".join(FAMILIES[family_name].dataset_kinds)
        raise JobFailure(
            "bad_dataset",
            f"{family_name} trains on {wanted} datasets, and this dataset is {kind}",
        )
    try:
        # lax: a record queued before the gateway applied these rules still runs as it did
        run_values, family_config = check_config(family_name, config, kind, strict=False)
        options = pydantic.TypeAdapter(RunOptions).validate_python(
            {**run_values, "data": data, "out": out, "name": name, "progress_bar": False, **extra}
        )
    except InvalidConfig as exc:
        raise JobFailure("invalid_config", f"invalid training config: {exc}") from None
    cadence = {
        k: v
        for k, v in _cadence(run_length(family_name, options, family_config)).items()
        if k not in run_values
    }
    return dataclasses.replace(options, **cadence), family_config


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-._").lower()
    return slug[:100]


def model_id_for(
    registry: ModelRegistry, job_id: str, owner: str, family: str, name: str | None
) -> str:
    """The id a run registers its model under, claimed for the job's owner when the run starts:
    the name's slug, else `<family>-<job[:8]>`. A slug that names another run's model, or
    another owner's, gets the job's short id appended (a redelivered run finds its own claim)."""
    base = _slug(name) if isinstance(name, str) else ""
    fallback = f"{family}-{job_id[:8]}"
    candidates = [base, f"{base}-{job_id[:8]}"] if base and SAFE_ID.match(base) else [fallback]
    for candidate in candidates:
        record = registry.record(candidate)
        if record is not None and not record.deleted and record.training_job != job_id:
            continue
        try:
            registry.claim(candidate, owner, training_job=job_id)
        except ModelTaken:
            continue
        return candidate
    raise JobFailure("model_exists", f"the model id {candidates[-1]!r} is taken")


def register_model(
    ctx: JobContext, run_model: Path, model_id: str, source: dict[str, Any]
) -> tuple[dict[str, Any], VersionRecord]:
    """Register a copy of a run's model folder as the next version of `model_id`, with
    `source` (job, run, dataset) in its card's provenance and its registration record.

    Returns the card (its `config.json`) as registered and the version."""
    with staging_folder(ctx.storage.models / model_id) as tmp:
        shutil.copytree(run_model, tmp, dirs_exist_ok=True)
        card = add_provenance(tmp, {**source, "job": ctx.job_id, "owner": ctx.job.owner})
        training = card["provenance"].get("training")
        direction = training.get("direction") if isinstance(training, dict) else None
        if direction is not None:  # which side of a pair is the input (the examples route)
            source = {**source, "training": {"direction": direction}}
        version = register_version(ctx, model_id, tmp, source)
    return card, version


def _release_gpu_memory() -> None:
    """Give the run's GPU memory back, so the worker idles without holding it: the networks,
    optimizers and batches the run left in reference cycles first, then the allocator's cache."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        gc.collect()
        torch.cuda.empty_cache()


def _losses(stats: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in stats.items() if k[:1] in "DG"}


def _progress_detail(
    ctx: JobContext, step: int, total: int, stats: dict[str, float]
) -> dict[str, Any]:
    """The job's `progress_detail`: step, total, the latest losses and the step of the newest
    grid in the store (the one the gateway serves; none while the store does not answer)."""
    try:
        preview_step = max(ctx.storage.sample_grids(ctx.job_id), default=None)
    except StoreError:
        preview_step = None
    return {"step": step, "total": total, "losses": _losses(stats), "preview_step": preview_step}


def other_work_waits(ctx: JobContext, slice_seconds: float) -> bool:
    """Whether a background run should yield now: a foreground training run waits, or another
    background run waits and this one has had its slice (`background_slice_seconds`)."""
    waiting = [i for i in waiting_job_ids(ctx.store.redis, QUEUE_TRAIN) if i != ctx.job_id]
    for job_id in waiting:
        try:
            job = ctx.store.get(job_id)
        except JobNotFound:
            continue
        if job.status != JobStatus.queued:
            continue
        if job.params.get("background") is not True:
            return True
        if slice_seconds >= ctx.settings.background_slice_seconds:
            return True
    return False


def source_model(ctx: JobContext, model_id: str | None) -> Path | None:
    """The folder of the model a fine-tune run starts from (None: a fresh run);
    `model_not_found` when it was deleted before the run started."""
    if model_id is None:
        return None
    try:
        registry = ModelRegistry.of(ctx.storage)
        return registry.local_folder(registry.pinned_version(model_id, ctx.job.model_digest))
    except (ModelMissing, FileNotFoundError):
        raise JobFailure(
            "model_not_found",
            f"the model version {model_id!r} this run was to start from no longer exists",
        ) from None


def training_params(ctx: JobContext) -> TrainingParams:
    """The job's typed params (`core.params.TrainingParams`); a record that does not fit fails
    `invalid_config` naming the field."""
    try:
        params = parse_params(JobKind.training, ctx.job.params)
    except InvalidParams as exc:
        raise JobFailure("invalid_config", f"invalid training params: {exc}") from None
    assert isinstance(params, TrainingParams)
    return params


def run_training(ctx: JobContext) -> Outcome:
    """Train the job's run (resuming its checkpoint if it has one) and register its model.

    The run trains in this host's working copy of its folder, kept in the store by
    `workers.run_sync`; the working copy goes once the job has ended for good (not when it
    yields or its worker stops: it resumes, here or on another host)."""
    folder = ctx.storage.run_working_copy(ctx.job_id)
    remove_stale_copies(folder.parent, lambda job_id: job_id == ctx.job_id or _live(ctx, job_id))
    sync = RunSync(ctx.storage.objects, run_key(ctx.job_id), folder, may_write=ctx.renew_lease)
    try:
        outcome = _train_and_register(ctx, training_params(ctx), sync)
    except JobFailure:
        sync.discard()
        raise
    sync.discard()
    return outcome


def _live(ctx: JobContext, job_id: str) -> bool:
    """Whether the job still has a record and has not ended (its run may resume)."""
    try:
        return not ctx.store.get(job_id).status.ended
    except JobNotFound:
        return False


@dataclasses.dataclass(frozen=True)
class PreparedRun:
    """What a job trains, and where from: its options and family config, and the provenance of
    the model versions it registers."""

    options: RunOptions
    config: Any
    provenance: dict[str, Any]


def prepare_run(ctx: JobContext, params: TrainingParams, sync: RunSync) -> PreparedRun:
    """The dataset's local folder, the run folder's working copy (pulled from the store), and
    the run's options: resuming when the folder holds a checkpoint, else starting from the
    `init_from` model if there is one."""
    data, meta = read_dataset(ctx, params.dataset)
    out = sync.folder
    sync.pull()  # the stored run folder, when this host's copy is missing or behind it
    out.mkdir(parents=True, exist_ok=True)
    resume = (out / RUN_STATE_FILE).is_file()
    options, family_config = build_run(
        params.family,
        params.config,
        data=data,
        out=out,
        kind=meta.get("kind"),
        name=ctx.job_id,
        device="auto",
        resume=resume,
        inception_weights=ctx.settings.inception_weights,
        init_from=None if resume else source_model(ctx, params.init_from),
    )
    provenance = {
        "kind": "training",
        "run": ctx.job_id,
        "dataset": params.dataset,
        "dataset_name": meta.get("name"),
    }
    if params.init_from:
        provenance["init_from"] = params.init_from
    return PreparedRun(options, family_config, provenance)


def claim_model(ctx: JobContext, params: TrainingParams) -> str:
    """The id the run registers its model under (`model_id_for`), listed under the run's name."""
    registry = ModelRegistry.of(ctx.storage)
    model_id = model_id_for(registry, ctx.job_id, ctx.job.owner, params.family, params.name)
    if params.name:
        registry.update_listing(model_id, {"name": params.name}, keep_listed=True)
    return model_id


class StopCheck:
    """The run's `should_stop`: cancelled? Once a second: is the lease still ours (else
    LeaseLost stops the run), and for a background run, does other work wait? `yielding` then
    says the run stopped to let that work go first."""

    def __init__(self, ctx: JobContext, background: bool) -> None:
        self.ctx = ctx
        self.background = background
        self.yielding = False
        self.last_check = self.slice_started = time.monotonic()

    def __call__(self) -> bool:
        if time.monotonic() - self.last_check >= 1.0:
            self.ctx.check_lease()
            self.last_check = time.monotonic()
            if self.background and not self.yielding:
                self.yielding = other_work_waits(self.ctx, time.monotonic() - self.slice_started)
        return self.yielding or self.ctx.cancel_requested() or shutdown_requested()


def train_run(
    ctx: JobContext,
    params: TrainingParams,
    devices: int,
    run: PreparedRun,
    sync: RunSync,
    should_stop: StopCheck,
    publish: Callable[[int, Path], Any],
) -> RunResult:
    """Train until the run ends or `should_stop` says stop: in this process, or under torchrun
    on `devices` devices, the run folder pushed to the store as it changes; progress goes to the
    job. An input the run refuses fails the job with its code (`bad_dataset`, `bad_checkpoint`,
    `invalid_config`)."""
    train_on = (
        train if devices == 1 else partial(train_on_devices, devices, ctx.job_id, ctx.settings)
    )

    def on_progress(p: Progress) -> None:
        ctx.report(p.step / max(1, p.total), _progress_detail(ctx, p.step, p.total, p.stats))

    try:
        with sigterm_requests_stop(), warnings.catch_warnings(), sync.pushing():
            # the dataset's own description is not a training image
            warnings.filterwarnings(
                "ignore", message=rf"skipped .*{DATASET_FILE}", category=DatasetWarning
            )
            return train_on(
                params.family,
                run.options,
                run.config,
                on_progress=on_progress,
                should_stop=should_stop,
                on_checkpoint=publish if params.background else None,
            )
    except DatasetError as exc:
        raise JobFailure("bad_dataset", f"the dataset cannot be trained on: {exc}") from None
    except StateError as exc:
        raise JobFailure("bad_checkpoint", f"the run could not resume: {exc}") from None
    except ValueError as exc:
        raise JobFailure("invalid_config", f"the training run could not go on: {exc}") from None
    finally:
        _release_gpu_memory()


def _train_and_register(ctx: JobContext, params: TrainingParams, sync: RunSync) -> Outcome:
    """A background run first lets a waiting foreground run go; then the run is prepared, its
    model id claimed, and it trains until it ends (`finish_run`)."""
    if params.background and other_work_waits(ctx, 0.0):  # a user's run waits: let it go first
        raise Yielded("a foreground training run waits; not starting before it")
    devices = check_devices(params.devices, ctx.settings)
    run = prepare_run(ctx, params, sync)
    configure_torch()
    model_id = claim_model(ctx, params)

    def publish(step: int, model_dir: Path) -> None:
        """A background run's model is served from its checkpoints on, while it improves."""
        register_model(ctx, model_dir, model_id, run.provenance | {"step": step})

    should_stop = StopCheck(ctx, params.background)
    result = train_run(ctx, params, devices, run, sync, should_stop, publish)
    return finish_run(ctx, params, result, should_stop, publish, model_id, run.provenance)


def finish_run(
    ctx: JobContext,
    params: TrainingParams,
    result: RunResult,
    should_stop: StopCheck,
    publish: Callable[[int, Path], Any],
    model_id: str,
    provenance: dict[str, Any],
) -> Outcome:
    """How the job ends once the run stopped. Cancelled: a background run's model is published
    first; a run that yielded to waiting work goes back to the queue (`Yielded`), one stopped by
    the worker's shutdown is delivered again (`WorkerShuttingDown`), one its user cancelled ends
    `cancelled` with its run folder kept. Completed: its model is registered (metrics included)."""
    detail = _progress_detail(ctx, result.step, result.total, result.stats)
    if result.status == "cancelled" and params.background:
        publish(result.step, result.model_dir)
    if result.status == "cancelled" and should_stop.yielding and not ctx.cancel_requested():
        ctx.report(result.step / max(1, result.total), detail)
        raise Yielded(f"yielded to waiting work at step {result.step} of {result.total}")
    if result.status == "cancelled" and not ctx.cancel_requested():
        raise WorkerShuttingDown(f"stopped at step {result.step} of {result.total}")
    if result.status == "cancelled":
        ctx.report(result.step / max(1, result.total), detail)
        return Outcome(
            JobStatus.cancelled,
            {"run": ctx.job_id, "step": result.step, "total": result.total},
        )
    card, version = register_model(
        ctx, result.model_dir, model_id, provenance | {"step": result.step}
    )
    ctx.report(1.0, detail)
    return Outcome(
        JobStatus.succeeded,
        {
            "model": model_id,
            "version": version.version,
            "model_ref": str(version.ref(model_id)),
            "model_digest": version.digest,
            "run": ctx.job_id,
            "steps": result.step,
            "metrics": card.get("metrics", {}),
        },
    )
