"""Training jobs in process: config validation, model ids, cancel and resume, registration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import models
from core.jobs import JobKind, JobStatus
from core.model_registry import ModelRegistry, content_digest
from core.object_store import ObjectStore
from core.storage import RUN_STATE_FILE
from training.demo import build_demo
from workers.errors import JobFailure
from workers.training_jobs import build_run, model_id_for, register_model, run_training

TINY = {"width": 4, "latent_dim": 8, "batch_size": 4, "log_every": 1, "metrics_images": 16}


def build(family, config, kind="labeled"):
    return build_run(family, config, data=Path("d"), out=Path("o"), kind=kind, name="run")


def test_defaults_fill_a_short_cpu_run_and_config_overrides_them():
    options, config = build("unetgan", {"steps": 40, "width": 8})
    assert (options.steps, options.image_size, options.batch_size) == (40, 32, 16)
    assert options.checkpoint_every == 8 and options.metrics_every == 40
    assert options.progress_bar is False and options.name == "run"
    assert config.width == 8 and config.unconditional is False
    _, flat = build("unetgan", {}, kind="images")
    assert flat.unconditional is True  # a flat image set stays unconditional
    options, config = build("pix2pix", {"direction": "BtoA"}, kind="paired")
    assert options.image_size == 64 and config.direction == "BtoA"


@pytest.mark.parametrize(
    ("family", "config", "kind", "needle"),
    [
        ("stylegan", {}, "images", "unknown family 'stylegan'; choose one of pix2pix"),
        ("unetgan", {"stepz": 3}, "images", "stepz: unknown field for unetgan; valid fields"),
        ("unetgan", {"steps": "many"}, "images", "steps: Input should be a valid integer"),
        ("pix2pix", {"direction": "up"}, "paired", "direction: Input should be 'AtoB' or"),
        ("unetgan", {"p_mix_max": 2}, "images", "p_mix_max must lie in [0, 1]"),
        ("unetgan", {"steps": 0}, "images", "steps: Input should be greater than or equal to 1"),
        ("unetgan", [1, 2], "images", "config must be a JSON object"),
        ("pix2pix", {}, "labeled", "pix2pix trains on paired datasets, and this dataset is"),
    ],
)
def test_bad_configs_fail_with_a_message_that_says_why(family, config, kind, needle):
    with pytest.raises(JobFailure) as info:
        build(family, config, kind)
    assert needle in info.value.message
    if "unknown config field" in needle:
        assert "valid fields: adam_eps, amp, batch_size" in info.value.message


def test_model_ids_come_from_the_name_or_the_family_and_job(tmp_path):
    registry = ModelRegistry(ObjectStore.local(tmp_path))
    assert model_id_for(registry, "abcdef0123", "alice", "pggan", None) == "pggan-abcdef01"
    assert model_id_for(registry, "abcdef0123", "alice", "pggan", "  Faces, v2! ") == "faces-v2"
    assert model_id_for(registry, "abcdef0123", "alice", "pggan", "***") == "pggan-abcdef01"
    assert registry.record("faces-v2").owner == "alice"  # claimed when the run starts
    assert registry.record("faces-v2").training_job == "abcdef0123"
    # a redelivered run finds its own claim; another run of the same owner gets its own id
    assert model_id_for(registry, "abcdef0123", "alice", "pggan", "Faces v2") == "faces-v2"
    assert model_id_for(registry, "99990000", "alice", "pggan", "faces v2") == "faces-v2-99990000"
    # another owner's id is never taken over, whatever the run's name
    registry.claim("faces", "bob")
    assert model_id_for(registry, "abcdef0123", "alice", "pggan", "faces") == "faces-abcdef01"
    assert registry.record("faces").owner == "bob"


@pytest.fixture
def digits(storage) -> str:
    root = build_demo("digits", storage.datasets / "d1", size=16, count=16)
    meta = {"id": "d1", "name": "digits", "kind": "labeled", "image_count": 16}
    (root / "dataset.json").write_text(json.dumps(meta))
    return "d1"


def test_a_cancelled_run_resumes_from_its_checkpoint_and_registers_its_model(make_context, digits):
    params = {"family": "unetgan", "dataset": digits, "config": {**TINY, "steps": 6}}
    first = make_context(JobKind.training, **params)
    report = first.report

    def report_then_cancel(progress, detail=None):
        report(progress, detail)
        if detail and detail["step"] >= 2:
            first.store.request_cancel(first.job_id)

    first.report = report_then_cancel
    outcome = run_training(first)
    assert outcome.status == JobStatus.cancelled
    stopped = outcome.result["step"]
    assert 2 <= stopped < 6 and outcome.result["run"] == first.job_id
    run = first.storage.run_dir(first.job_id)
    registry = ModelRegistry.of(first.storage)
    assert (run / RUN_STATE_FILE).is_file()
    assert registry.versions(f"unetgan-{first.job_id[:8]}") == []  # claimed, nothing registered

    first.store.redis.delete(f"ganserve:cancel:{first.job_id}")  # delivered again, not cancelled
    first.store.release_lease(first.job_id, first.holder)  # the first worker let go of it
    again = type(first)(first.job, first.store, first.storage, first.settings, "second")
    outcome = run_training(again)
    assert outcome.status == JobStatus.succeeded and outcome.result["steps"] == 6
    steps = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and set(steps) == set(range(1, 7))  # resumed, not restarted
    model_id = outcome.result["model"]
    assert model_id == f"unetgan-{first.job_id[:8]}"
    assert outcome.result["version"] == 1 and outcome.result["model_ref"] == f"{model_id}@1"
    (version,) = registry.versions(model_id)
    folder = registry.local_folder(version)
    card = models.read_card(folder)
    assert version.source["job"] == first.job_id and version.source["dataset"] == digits
    assert card.provenance["dataset"] == digits and card.provenance["owner"] == first.job.owner
    assert card.provenance["run"] == first.job_id and "swd_avg" in card.metrics
    assert outcome.result["model_digest"] == version.digest == content_digest(folder)
    assert models.load(folder) is not None
    assert not [p for p in first.storage.models.iterdir() if p.name.startswith(".")]


def test_registering_again_adds_a_version_and_keeps_the_newest(make_context, storage):
    ctx = make_context(JobKind.training)
    ctx.settings = ctx.settings.model_copy(update={"model_versions_kept": 2})
    registry = ModelRegistry.of(storage)
    registry.claim("mine", ctx.job.owner, training_job=ctx.job_id)
    source = storage.models / "digits"
    for step in (1, 2, 3):
        card, version = register_model(ctx, source, "mine", {"run": ctx.job_id, "step": step})
        assert version.version == step and card["provenance"]["step"] == step
    assert [v.version for v in registry.versions("mine")] == [2, 3]  # the oldest removed
    pinned = make_context(JobKind.sample)
    ctx.store.update(pinned.job_id, model="mine@2")  # a queued job pinned version 2
    register_model(ctx, source, "mine", {"run": ctx.job_id, "step": 4})
    assert [v.version for v in registry.versions("mine")] == [2, 3, 4]  # 2 is kept for it
    ctx.store.update(pinned.job_id, status=JobStatus.succeeded)
    register_model(ctx, source, "mine", {"run": ctx.job_id, "step": 5})
    assert [v.version for v in registry.versions("mine")] == [4, 5]
    # the id is checked again at the moment of registration
    other = make_context(JobKind.training)
    other.job = other.job.model_copy(update={"owner": "someone-else"})
    with pytest.raises(JobFailure) as info:
        register_model(other, source, "mine", {"run": other.job_id})
    assert info.value.code == "model_exists"
    assert [v.version for v in registry.versions("mine")] == [4, 5]
    assert not [p for p in storage.models.iterdir() if p.name.startswith(".")]


def test_missing_dataset_fails_clearly(make_context):
    ctx = make_context(JobKind.training, family="unetgan", dataset="gone", config={})
    with pytest.raises(JobFailure) as info:
        run_training(ctx)
    assert info.value.code == "dataset_not_found" and "'gone'" in info.value.message


def test_a_pggan_runs_cadence_follows_its_growth_schedule_not_its_steps():
    options, _ = build("pggan", {}, kind="images")
    # 4 to 16 (five phases) at batch 32, 32 (two phases) at batch 16, 2000 images a phase
    assert options.metrics_every == 5 * 63 + 2 * 125 and options.checkpoint_every == 100
    options, _ = build("pggan", {"image_size": 8, "phase_images": 100}, kind="images")
    assert options.metrics_every == 3 * 4  # 8 px: 4x4, fade-in and stable 8x8, 100 images each
    with pytest.raises(JobFailure) as info:
        build("pggan", {"image_size": 48}, kind="images")
    assert info.value.code == "invalid_config"
    assert info.value.message.startswith("invalid training config: ")


def test_a_background_run_yields_to_a_waiting_foreground_run(make_context, redis_url):
    """Only a foreground run makes it yield at once; another background run, after its slice."""
    from celery import Celery

    from core.jobs import QUEUE_TRAIN
    from workers.training_jobs import other_work_waits

    app = Celery("probe", broker=redis_url, set_as_current=False)
    running = make_context(JobKind.training, background=True)
    assert not other_work_waits(running, 0.0)
    app.send_task(
        "ganserve.train", args=[running.job_id], queue=QUEUE_TRAIN, task_id=running.job_id
    )
    assert not other_work_waits(running, 1e9)  # its own (redelivered) message does not count
    other = make_context(JobKind.training, background=True)
    app.send_task("ganserve.train", args=[other.job_id], queue=QUEUE_TRAIN, task_id=other.job_id)
    slice_seconds = running.settings.background_slice_seconds
    assert not other_work_waits(running, slice_seconds - 1)
    assert other_work_waits(running, slice_seconds)
    user = make_context(JobKind.training)
    app.send_task("ganserve.train", args=[user.job_id], queue=QUEUE_TRAIN, task_id=user.job_id)
    assert other_work_waits(running, 0.0)
    user.store.update(user.job_id, status=JobStatus.cancelled)  # an ended job waits for nothing
    assert not other_work_waits(running, 0.0)


def test_a_background_run_does_not_start_while_a_user_run_waits(make_context, redis_url, digits):
    from celery import Celery

    from core.jobs import QUEUE_TRAIN
    from workers.jobs import Yielded

    params = {"family": "unetgan", "dataset": digits, "config": {**TINY, "steps": 6}}
    demo = make_context(JobKind.training, background=True, **params)
    user = make_context(JobKind.training, **params)
    app = Celery("probe", broker=redis_url, set_as_current=False)
    app.send_task("ganserve.train", args=[user.job_id], queue=QUEUE_TRAIN, task_id=user.job_id)
    with pytest.raises(Yielded):
        run_training(demo)
    assert not demo.storage.run_dir(demo.job_id).exists()  # nothing loaded, nothing trained
