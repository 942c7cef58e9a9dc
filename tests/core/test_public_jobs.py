"""The typed job bodies (`core.public_jobs`) describe what the server sends: every kind has
its model; records shaped as the workers write them validate once made public (`public_job`);
and, above all, jobs of every kind run in process by the workers' own work functions on tiny
real models validate, as queued, finished and cancelled."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from PIL import Image
from pydantic import BaseModel, TypeAdapter, ValidationError

from core import public_jobs
from core.jobs import BATCHED_KINDS, Job, JobKind, JobStatus, JobStore, image_url
from core.params import (
    InspectionParams,
    ProjectionParams,
)
from core.public_jobs import (
    JOB_MODELS,
    AnyJob,
    CancelledResult,
    DrsFilterReport,
    JobBase,
    ModelExportResult,
    NoProgressDetail,
    ProjectionProgress,
    SampleResult,
    TopFilterReport,
    TrainingCancelledResult,
    TrainingProgress,
    TrainingResult,
    public_job,
)
from core.settings import Settings
from core.storage import Storage

ANY_JOB = TypeAdapter(AnyJob)


def public(job: Job) -> Any:
    """The job as the API sends it (its JSON), read back as the typed union, which keeps every
    key it was sent (the models ignore unknown keys: a key they did not describe would vanish)."""
    sent = public_job(job).model_dump_json()
    typed = ANY_JOB.validate_json(sent)
    assert typed.model_dump(mode="json", exclude_unset=True) == json.loads(sent)
    return typed


# ---------------------------------------------------------------------------------------------
# The models themselves


def test_every_job_kind_has_one_model_in_the_union():
    members = typing.get_args(typing.get_args(AnyJob)[0])
    kinds = [typing.get_args(m.model_fields["kind"].annotation)[0] for m in members]
    assert sorted(kinds) == sorted(JobKind)
    assert {JobKind(k): m for k, m in zip(kinds, members, strict=True)} == JOB_MODELS
    schema = ANY_JOB.json_schema(mode="serialization")
    assert schema["discriminator"]["propertyName"] == "kind"
    assert set(schema["discriminator"]["mapping"]) == {k.value for k in JobKind}


def test_the_common_fields_are_those_of_the_api_job():
    job = Job(kind=JobKind.translation, model="m@1", params={"seed": 1})
    assert set(public_job(job).model_dump()) == set(JobBase.model_fields)
    for model in JOB_MODELS.values():
        assert set(model.model_fields) == set(JobBase.model_fields)


def _described_models() -> list[type[BaseModel]]:
    found = [
        value
        for value in vars(public_jobs).values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == public_jobs.__name__
    ]
    assert len(found) > 20
    return found


@pytest.mark.parametrize("model", _described_models(), ids=lambda m: m.__name__)
def test_every_field_says_what_it_is(model):
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no description"


def _bare(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("description", "title")}


@pytest.mark.parametrize(
    ("public_params", "stored_params"),
    [
        (public_jobs.TranslationJobParams, None),
        (public_jobs.InterpolationJobParams, None),
        (public_jobs.TrainingJobParams, None),
        (public_jobs.ImportJobParams, None),
        (public_jobs.ExportJobParams, None),
        (public_jobs.InspectionJobParams, InspectionParams),
        (public_jobs.ProjectionJobParams, ProjectionParams),
    ],
    ids=lambda m: getattr(m, "__name__", "subclass"),
)
def test_public_params_keep_the_types_of_the_core_params(public_params, stored_params):
    """Params models that only add descriptions (subclasses of `core.params`) or leave storage
    paths out (inspection, projection) keep every other field's type, bounds and default."""
    core = stored_params or public_params.__mro__[1]
    ours = public_params.model_json_schema()["properties"]
    theirs = core.model_json_schema()["properties"]
    hidden = {"image", "input"}  # core.public_jobs.INTERNAL_PARAMS
    assert set(ours) == set(theirs) - hidden
    for name in ours:
        assert _bare(ours[name]) == _bare(theirs[name]), name


# ---------------------------------------------------------------------------------------------
# Records shaped as the workers write them (each dict mirrors the worker code it names)

LATENTS_2x8 = {
    "latent_count": 2,
    "latent_dim": 8,
    "class_labels": [1, 1],
    "latents": [[0.5] * 8, [-0.25] * 8],
}


def record(kind: JobKind, params: dict, result: dict | None = None, **fields: Any) -> Job:
    status = JobStatus.succeeded if result else fields.pop("status", JobStatus.queued)
    return Job(
        kind=kind,
        owner="someone",
        model=fields.pop("model", "m@1"),
        params=params,
        status=status,
        result=result,
        **fields,
    )


WORKER_SHAPED = {
    "translation": record(  # workers.inference.TranslationWork.finish
        JobKind.translation,
        {"seed": 5, "mode": "native", "width": 50, "height": 37, "input": "/data/x.png"},
        {
            "count": 1,
            "model": "m@1",
            "seed": 5,
            "mode": "native",
            "tiled": True,
            "precision": "bf16",
            "width": 50,
            "height": 37,
        },
    ),
    "sample from a job, filtered by top": record(  # SampleWork.finish, workers.filtering
        JobKind.sample,
        {"count": 2, "seed": 3, "filter": {"method": "top", "keep": 0.5, "pixel_weight": 0.0}},
        {
            "model": "m@1",
            "seed": 3,
            "count": 2,
            "class_label": None,
            "truncation": None,
            "precision": "fp32+compile",
            **LATENTS_2x8,
            "filter": {
                "method": "top",
                "keep": 0.5,
                "pixel_weight": 0.0,
                "candidates": 4,
                "accepted": 2,
                "scores": [0.1234, -2.5],
            },
        },
    ),
    "sample filtered by drs, latents too many to inline": record(
        JobKind.sample,
        {
            "count": 2,
            "seed": 3,
            "filter": {"method": "drs", "burn_in": 8, "percentile": 95.0, "max_candidates": 16},
        },
        {
            "model": "m@1",
            "seed": 3,
            "count": 2,
            "class_label": 1,
            "truncation": 0.5,
            "precision": "fp32",
            "latent_count": 2,
            "latent_dim": 4096,
            "class_labels": [1, 1],
            "filter": {
                "method": "drs",
                "burn_in": 8,
                "percentile": 95.0,
                "max_candidates": 16,
                "candidates": 24,
                "accepted": 1,
                "filled_up": True,
                "max_logit": 3.5,
                "gamma": -1.25,
                "scores": [3.5, 1.0],
            },
        },
    ),
    "sample of given latents": record(
        JobKind.sample,
        {"count": 2, "latents": {"job": "j0", "indices": [0, 1]}, "class_labels": [1, 1]},
        {
            "model": "m@1",
            "seed": None,
            "count": 2,
            "class_label": None,
            "truncation": None,
            "precision": "fp32",
            **LATENTS_2x8,
            "latents_from": {"job": "j0", "indices": [0, 1]},
        },
    ),
    "inspection of a pix2pix pair": record(  # workers.inspection.InspectionWork.finish
        JobKind.inspection,
        {"image": "/d/image.png", "input": "/d/input.png", "width": 50, "height": 37},
        {
            "count": 2,
            "global_score": None,
            "map_mean": 0.5,
            "map_min": 0.0,
            "least_real_box": [0, 0, 25, 18],
            "class_label": None,
            "model": "m@1",
        },
    ),
    "interpolation between two classes": record(  # InterpolationWork.finish
        JobKind.interpolation,
        {
            "start": {"seed": 1, "index": 0},
            "end": {"job": "j0", "index": 1, "class_label": 2},
            "frames": 2,
            "fps": 12,
        },
        {
            "model": "m@1",
            "count": 2,
            "frames": 2,
            "path": "slerp",
            "fps": 12,
            "truncation": None,
            "start_class": 0,
            "end_class": 2,
            "animation": ["webp", "gif"],
            "precision": "fp32",
            **LATENTS_2x8,
            "class_labels": None,
        },
    ),
    "projection with an infinite psnr": record(  # workers.projection.run_projection
        JobKind.projection,
        {"image": "/d/input.png", "width": 9, "height": 9, "steps": 3, "seed": 1},
        {
            "model": "m@1",
            "count": 2,
            "seed": 1,
            "steps": 3,
            "class_label": None,
            "discriminator_loss": False,
            "loss": 0.0,
            "start_loss": 1.5,
            "psnr": float("inf"),  # stored as null
            "ssim": 1.0,
            "precision": "fp32",
            "latent": [0.5] * 8,
            "latent_count": 1,
            "latent_dim": 8,
            "class_labels": None,
            "latents": [[0.5] * 8],
        },
        progress_detail={"step": 3, "total": 3, "loss": 0.0, "psnr": None, "class_label": None},
    ),
    "training": record(  # workers.training_jobs.run_training
        JobKind.training,
        {
            "family": "unetgan",
            "dataset": "d1",
            "dataset_kind": "labeled",
            "name": None,
            "config": {"steps": 2},
            "background": False,
        },
        {
            "model": "unetgan-abcdef01",
            "version": 1,
            "model_ref": "unetgan-abcdef01@1",
            "model_digest": "0" * 64,
            "run": "abcdef0123",
            "steps": 2,
            "metrics": {"swd_avg": 1.5, "fid": "unavailable: no weights", "step": 2},
        },
        model=None,
        progress_detail={
            "step": 2,
            "total": 2,
            "losses": {"D_enc": 0.5, "G_enc": float("nan")},
            "preview_step": None,
        },
    ),
    "a pggan export": record(  # workers.model_export.export_model, models.onnx_export
        JobKind.model_export,
        {"format": "onnx"},
        {
            "format": "onnx",
            "stamp": "v1_1-2-3",
            "bytes": 1000,
            "download": "/v1/models/m@1/exports/onnx",
            "architecture": "pggan-generator",
            "inputs": [{"name": "z", "shape": ["N", 8], "dtype": "float32"}],
            "outputs": [{"name": "images", "shape": ["N", 1, 8, 8], "dtype": "float32"}],
            "opset": 18,
            "runtime_state": {"stage": 1, "alpha": 1.0},
        },
    ),
    "an import": record(  # workers.model_import.import_model
        JobKind.model_import,
        {"source": "reference", "model_id": "p", "filename": "latest_net_G.pth"},
        {
            "model": "p",
            "version": 2,
            "model_ref": "p@2",
            "model_digest": "0" * 64,
            "family": "pix2pix",
            "architecture": "pix2pix-generator",
            "source": "reference",
            "discriminator": False,
        },
        model="p",
    ),
}


@pytest.mark.parametrize("job", WORKER_SHAPED.values(), ids=list(WORKER_SHAPED))
def test_records_shaped_as_the_workers_write_them_validate(job):
    typed = public(job)
    assert type(typed) is JOB_MODELS[job.kind]
    assert "image" not in typed.params.model_dump() and "input" not in typed.params.model_dump()
    if "count" in job.result:
        assert typed.result.images == [image_url(job.id, k) for k in range(job.result["count"])]
    if "latent_count" in job.result:
        assert typed.result.latents_url == f"/v1/jobs/{job.id}/latents.npy"


def test_the_rewritten_fields_and_the_nulls_of_non_finite_numbers():
    interpolation = public(WORKER_SHAPED["interpolation between two classes"])
    assert interpolation.result.animation.gif.endswith("/animation.gif")
    projection = public(WORKER_SHAPED["projection with an infinite psnr"])
    assert projection.result.psnr is None
    assert isinstance(projection.progress_detail, ProjectionProgress)
    training = public(WORKER_SHAPED["training"])
    assert training.progress_detail.losses == {"D_enc": 0.5, "G_enc": None}
    assert training.result.metrics["step"] == 2 and training.params.family == "unetgan"


@pytest.mark.parametrize("kind", list(JobKind))
def test_a_queued_job_of_every_kind_validates(kind):
    params = {w.kind: w.params for w in WORKER_SHAPED.values()}
    typed = public(Job(kind=kind, params=params[kind]))
    assert typed.result is None and isinstance(typed.progress_detail, NoProgressDetail)


@pytest.mark.parametrize(
    "kind",
    [JobKind.translation, JobKind.sample, JobKind.inspection, JobKind.interpolation],
)
def test_a_job_cancelled_while_it_ran_has_an_empty_result(kind):
    params = {w.kind: w.params for w in WORKER_SHAPED.values()}
    typed = public(Job(kind=kind, params=params[kind], status=JobStatus.cancelled, result={}))
    assert isinstance(typed.result, CancelledResult)


def test_a_wrong_result_is_refused():
    sample = WORKER_SHAPED["sample of given latents"]
    missing = {k: v for k, v in sample.result.items() if k != "latent_dim"}
    with pytest.raises(ValidationError):
        public(sample.model_copy(update={"result": missing}))
    with pytest.raises(ValidationError):  # a translation's result is no sample's
        public(sample.model_copy(update={"result": WORKER_SHAPED["translation"].result}))
    with pytest.raises(ValidationError):
        NoProgressDetail.model_validate({"step": 1})


# ---------------------------------------------------------------------------------------------
# Jobs run by the workers' own work functions on tiny real models


@pytest.fixture
def storage(tmp_path) -> Storage:
    from tests.workers.tiny import TINY_MODELS, save_tiny_discriminator, save_tiny_model

    store = Storage(tmp_path / "data")
    store.ensure()
    for model_id in TINY_MODELS:
        save_tiny_model(store.models, model_id)
    for model_id in ("digits", "p2p"):
        save_tiny_discriminator(store.models, model_id)
    return store


@pytest.fixture
def worker(storage, redis_client, monkeypatch, one_torch_thread):
    """Run a job of (kind, model, params) in this process as a worker does: its upload stored
    (`files(job id)` gives the params naming it), recorded, taken, marked running, worked on and
    its outcome recorded; the record as the API sends it, typed, and the record itself."""
    from core.settings import get_settings
    from workers.jobs import JobContext, begin_attempt, record_outcome

    monkeypatch.setenv("GANSERVE_DATA_DIR", str(storage.root))
    monkeypatch.setenv("GANSERVE_PRECISION", "fp32")
    get_settings.cache_clear()
    monkeypatch.setattr("workers.model_cache._cache", None)
    monkeypatch.setattr("workers.model_cache._fast_paths", {})
    store = JobStore(redis_client)
    settings = Settings(data_dir=storage.root, redis_url=None)

    def run(kind, model, params, work, *, files=None, cancel=False) -> tuple[Any, Job]:
        job = Job(kind=kind, model=model, params=params, owner="t")
        if files is not None:
            job.params = {**params, **(files(job.id) or {})}
        store.create(job)
        if kind in BATCHED_KINDS:
            store.drop_batch_candidate(kind, model, job.id)  # run alone, as its own message
        assert public(store.get(job.id)).result is None  # queued
        ctx = JobContext(begin_attempt(store, job.id, 1), store, storage, settings, "test")
        if cancel:
            store.request_cancel(job.id)
        record_outcome(store, job.id, work(ctx))
        done = store.get(job.id)
        typed = public(done)
        assert type(typed) is JOB_MODELS[kind]
        assert done.status == (JobStatus.cancelled if cancel else JobStatus.succeeded)
        return typed, done

    yield run
    get_settings.cache_clear()


def _put(storage: Storage, job_id: str, name: str, size: tuple[int, int] = (50, 37)) -> str:
    """Store an upload of job `job_id` as the gateway does; its key in the store."""
    folder = storage.upload_dir(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    Image.effect_noise(size, 40).convert("RGB").save(folder / name)
    return (folder / name).relative_to(storage.root).as_posix()


def test_translations_samples_inspections_of_the_workers_validate(worker, storage):
    from workers import inference, inspection

    translation, _ = worker(
        JobKind.translation,
        "p2p",
        {"seed": 5, "mode": "native", "width": 50, "height": 37},
        inference.translate,
        files=lambda job_id: _put(storage, job_id, "input.png") and None,
    )
    assert translation.result.width == 50 and translation.result.images

    plain, done = worker(
        JobKind.sample, "digits", {"count": 2, "seed": 7, "class_label": 1}, inference.sample
    )
    assert isinstance(plain.result, SampleResult) and plain.result.class_labels == [1, 1]
    assert plain.result.latents is not None and plain.result.filter is None
    given, _ = worker(
        JobKind.sample,
        "digits",
        {"count": 2, "latents": {"job": done.id, "indices": [1, 0]}, "class_labels": [1, 1]},
        inference.sample,
    )
    assert given.result.seed is None and given.result.latents_from.indices == [1, 0]
    unconditional, _ = worker(JobKind.sample, "faces", {"count": 1, "seed": 2}, inference.sample)
    assert unconditional.result.class_labels is None
    top, _ = worker(
        JobKind.sample,
        "digits",
        {"count": 2, "seed": 3, "filter": {"method": "top", "keep": 0.5, "pixel_weight": 0.0}},
        inference.sample,
    )
    assert isinstance(top.result.filter, TopFilterReport) and top.result.filter.candidates == 4
    drs = {"method": "drs", "burn_in": 8, "percentile": 95.0, "max_candidates": 16}
    rejection, _ = worker(
        JobKind.sample, "digits", {"count": 2, "seed": 3, "filter": drs}, inference.sample
    )
    assert isinstance(rejection.result.filter, DrsFilterReport)
    cancelled, _ = worker(
        JobKind.sample, "digits", {"count": 1, "seed": 1}, inference.sample, cancel=True
    )
    assert cancelled.status == JobStatus.cancelled
    assert isinstance(cancelled.result, CancelledResult)

    judged, _ = worker(
        JobKind.inspection,
        "digits",
        {"width": 50, "height": 37},
        inspection.inspect,
        files=lambda job_id: {"image": _put(storage, job_id, "image.png")},
    )
    assert judged.result.global_score is not None and len(judged.result.least_real_box) == 4
    patches, _ = worker(
        JobKind.inspection,
        "p2p",
        {"width": 50, "height": 37},
        inspection.inspect,
        files=lambda job_id: {
            "image": _put(storage, job_id, "image.png"),
            "input": _put(storage, job_id, "input.png"),
        },
    )
    assert patches.result.global_score is None and patches.params.width == 50


def test_interpolations_and_projections_of_the_workers_validate(worker, storage):
    from workers.interpolation import interpolate_job
    from workers.projection import run_projection

    between, _ = worker(
        JobKind.interpolation,
        "digits",
        {
            "start": {"seed": 1, "class_label": 0},
            "end": {"seed": 2, "class_label": 2},
            "frames": 3,
        },
        interpolate_job,
    )
    assert between.result.frames == 3 and between.result.class_labels is None
    assert (between.result.start_class, between.result.end_class) == (0, 2)
    assert between.result.animation.webp.endswith("animation.webp")
    walk, _ = worker(
        JobKind.interpolation,
        "faces",
        {"start": {"seed": 1}, "end": {"latent": [0.5] * 8}, "frames": 2, "path": "linear"},
        interpolate_job,
    )
    assert walk.result.start_class is None and walk.result.latents is not None

    projection, _ = worker(
        JobKind.projection,
        "digits",
        {"width": 40, "height": 30, "steps": 3, "seed": 1, "discriminator_loss": "on"},
        run_projection,
        files=lambda job_id: {"image": _put(storage, job_id, "input.png", (40, 30))},
    )
    assert projection.result.discriminator_loss is True and len(projection.result.latent) == 8
    assert isinstance(projection.progress_detail, ProjectionProgress)
    assert projection.progress_detail.step == projection.progress_detail.total == 3


def test_training_runs_of_the_workers_validate(worker, storage):
    from training.demo import build_demo
    from workers.training_jobs import run_training

    root = build_demo("digits", storage.datasets / "d1", size=16, count=16)
    meta = {"id": "d1", "name": "digits", "kind": "labeled", "image_count": 16}
    (root / "dataset.json").write_text(json.dumps(meta))
    tiny = {"width": 4, "latent_dim": 8, "batch_size": 4, "log_every": 1, "metrics_images": 16}
    params = {
        "family": "unetgan",
        "dataset": "d1",
        "dataset_kind": "labeled",
        "name": "tiny digits",
        "config": {**tiny, "steps": 2},
        "background": False,
    }
    trained, _ = worker(JobKind.training, None, params, run_training)
    assert isinstance(trained.result, TrainingResult) and trained.result.model == "tiny-digits"
    assert "swd_avg" in trained.result.metrics
    assert isinstance(trained.progress_detail, TrainingProgress)
    assert trained.progress_detail.step == 2 and trained.progress_detail.losses

    stopped, _ = worker(JobKind.training, None, params, run_training, cancel=True)
    assert stopped.status == JobStatus.cancelled
    assert isinstance(stopped.result, TrainingCancelledResult) and stopped.result.step < 2


def test_imports_and_exports_of_the_workers_validate(worker, storage):
    from core.model_archive import UPLOADED_FOLDER, write_folder_zip
    from workers.model_export import export_model
    from workers.model_import import import_model

    def upload(job_id: str) -> None:
        folder = storage.upload_dir(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        write_folder_zip(storage.models / "p2p", folder / UPLOADED_FOLDER, "p2p")

    imported, _ = worker(
        JobKind.model_import,
        "copy",
        {
            "source": "folder",
            "model_id": "copy",
            "id_given": True,
            "filename": "p2p.zip",
            "discriminator": False,
            "name": "A copy",
        },
        import_model,
        files=upload,
    )
    assert imported.result.model_ref == "copy@1" and imported.result.discriminator is True
    assert imported.result.family == "pix2pix"

    exported, _ = worker(JobKind.model_export, "copy@1", {"format": "onnx"}, export_model)
    assert isinstance(exported.result, ModelExportResult)
    assert exported.result.stride and exported.result.dropout == "off"
    assert exported.result.inputs[0].name == "image" and exported.result.model_extra == {}
