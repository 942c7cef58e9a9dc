"""Training jobs on two devices: torchrun with two gloo processes under a worker in this process.

The runs are real (torchrun, two training processes, the job store in a real Redis); the worker
is this test process, calling `run_training` as a pool process does.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import tempfile
import time
from pathlib import Path

import pytest
import torch

import models
from core.jobs import QUEUE_TRAIN, Job, JobKind, JobStatus, task_message
from core.model_registry import ModelRegistry
from core.settings import Settings
from core.storage import RUN_STATE_FILE
from tests.workers.processes import WorkerProcess, WorkerSetting, client, ended, wait_for
from tests.workers.test_training_jobs import TINY, digits  # noqa: F401 (a fixture)
from training.data import DatasetError
from training.demo import build_demo
from training.loop import RunResult
from training.state import StateError
from workers.distributed_training import (
    TrainingProcessFailed,
    check_devices,
    run_outcome,
    spec_of,
)
from workers.errors import JobFailure, describe
from workers.run_channel import RunChannel
from workers.training_jobs import build_run, run_training
from workers.training_rank import read_spec


def training_processes(job_id: str) -> list[int]:
    """The pids of torchrun and the training processes of job `job_id` (their channel folder
    names the job)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"ganserve-run-{job_id}-".encode() in cmdline:
            found.append(int(entry.name))
    return found


def wait_gone(job_id: str, timeout: float = 15.0) -> list[int]:
    """The job's training processes still alive after `timeout` s (none, as it should be)."""
    deadline = time.monotonic() + timeout
    while (left := training_processes(job_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.parametrize(
    ("devices", "needle"),
    [
        (0, "devices must be a whole number >= 1, not 0"),
        (-1, "not -1"),
        ("two", "not 'two'"),
        (2.0, "not 2.0"),
        (True, "not True"),
        (9, "asks for 9 devices and at most 8 are allowed (GANSERVE_MAX_TRAINING_DEVICES)"),
    ],
)
def test_devices_out_of_range_fail_the_job(devices, needle):
    with pytest.raises(JobFailure) as info:
        check_devices(devices, Settings(redis_url=None))
    assert info.value.code == "invalid_config" and needle in info.value.message


def test_a_gpu_host_with_fewer_gpus_than_asked_fails_the_job(monkeypatch):
    """A fake CUDA host with one GPU (the checks of a real one need one)."""
    import torch

    assert check_devices(2, Settings(redis_url=None)) == 2  # a CPU host: two gloo processes
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert check_devices(1, Settings(redis_url=None)) == 1
    with pytest.raises(JobFailure) as info:
        check_devices(2, Settings(redis_url=None))
    assert info.value.code == "not_enough_devices"
    assert "asks for 2 GPUs and the training worker's host has 1" in info.value.message


@pytest.mark.parametrize(
    ("family", "config", "kind"),
    [
        ("pix2pix", {"direction": "BtoA", "steps": 7}, "paired"),
        ("unetgan", {"width": 8, "cutmix": False}, "labeled"),
        ("pggan", {"image_size": 8, "batch_sizes": "4:4,8:2"}, "images"),
    ],
)
def test_the_ranks_train_exactly_what_the_worker_built(family, config, kind):
    options, family_config = build_run(
        family, config, data=Path("/d"), out=Path("/o"), kind=kind, name="run", device="auto"
    )
    spec = json.loads(
        json.dumps(spec_of("job", family, options, family_config, False), default=str)
    )
    assert read_spec(spec) == (family, options, family_config)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [  # run_training gives these their codes (bad_dataset, bad_checkpoint, invalid_config)
        (DatasetError("no usable image in the dataset"), DatasetError),
        (StateError("cannot resume"), StateError),
        (ValueError("p_mix_max must lie in [0, 1]"), ValueError),
    ],
)
def test_a_process_that_refused_its_input_fails_the_job_as_in_process(tmp_path, raised, expected):
    channel = RunChannel(tmp_path)
    channel.write_error(1, raised)
    with pytest.raises(expected) as info:
        run_outcome(1, channel, 2)
    assert type(info.value) is expected and str(info.value) == str(raised)


@pytest.mark.parametrize(
    ("raised", "code", "needle"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "storage_full", "volume is full"),
        (torch.OutOfMemoryError("CUDA out of memory"), "out_of_memory", "ran out of memory"),
        (ZeroDivisionError("division by zero"), "internal_error", "process 1 of 2 failed"),
    ],
)
def test_the_first_process_to_fail_gives_the_job_its_error(tmp_path, raised, code, needle):
    channel = RunChannel(tmp_path)
    channel.write_error(1, raised)
    time.sleep(0.01)
    channel.write_error(0, RuntimeError("Connection closed by peer"))  # after, because of it
    with pytest.raises(Exception) as info:
        run_outcome(1, channel, 2)
    error = describe(info.value)
    assert error.code == code and needle in error.message, error


def test_a_run_that_ended_says_how_whatever_its_exit_code(tmp_path):
    channel = RunChannel(tmp_path)
    with pytest.raises(TrainingProcessFailed, match="exit code -9"):
        run_outcome(-9, channel, 2)
    channel.write_result(
        {"status": "completed", "step": 5, "total": 5, "model_dir": "/m", "stats": {"D": 1.0}}
    )
    assert run_outcome(1, channel, 2) == RunResult("completed", 5, 5, Path("/m"), {"D": 1.0})


def test_a_cancelled_two_process_run_stops_at_one_step_and_checkpoints_it(make_context, digits):  # noqa: F811
    params = {"family": "unetgan", "dataset": digits, "config": {**TINY, "steps": 1000}}
    first = make_context(JobKind.training, devices=2, **params)
    report = first.report
    details = []

    def report_then_cancel(progress, detail=None):
        report(progress, detail)
        details.append(detail)
        if detail["step"] >= 2:
            first.store.request_cancel(first.job_id)

    first.report = report_then_cancel
    outcome = run_training(first)
    assert outcome.status == JobStatus.cancelled
    stopped = outcome.result["step"]
    assert 2 <= stopped < 1000
    assert [d["step"] for d in details[:2]] == [1, 2]  # rank 0's progress, step by step
    assert details[0]["total"] == 1000 and "D_real" in details[0]["losses"]
    assert first.store.get(first.job_id).progress_detail["step"] == stopped
    run = first.storage.run_dir(first.job_id)
    state = torch.load(run / RUN_STATE_FILE, weights_only=True)
    assert state["step"] == stopped  # the checkpoint of the step every process stopped at
    assert json.loads((run / "options.json").read_text())["world_size"] == 2
    assert wait_gone(first.job_id) == []


def test_a_background_run_registers_each_checkpoint_while_rank_0_waits(make_context, digits):  # noqa: F811
    config = {**TINY, "steps": 100000, "checkpoint_every": 3}
    ctx = make_context(
        JobKind.training,
        family="unetgan",
        dataset=digits,
        config=config,
        background=True,
        devices=2,
    )
    registry = ModelRegistry.of(ctx.storage)
    model_id = f"unetgan-{ctx.job_id[:8]}"
    report = ctx.report

    def report_then_cancel(progress, detail=None):
        report(progress, detail)
        if len(registry.versions(model_id)) >= 2:
            ctx.store.request_cancel(ctx.job_id)

    ctx.report = report_then_cancel
    outcome = run_training(ctx)
    assert outcome.status == JobStatus.cancelled
    versions = registry.versions(model_id)
    steps = [version.source["step"] for version in versions]
    assert all(step % 3 == 0 for step in steps[:-1]) and steps[-1] == outcome.result["step"]
    for version in versions:  # each the checkpoint it was registered for: rank 0 waited
        card = models.read_card(registry.local_folder(version))
        assert card.provenance["step"] == version.source["step"]
    assert wait_gone(ctx.job_id) == []


def test_a_dataset_the_processes_cannot_train_on_fails_the_job_as_in_process(make_context, storage):
    folder = storage.datasets / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("no image here")
    (folder / "dataset.json").write_text(json.dumps({"id": "empty", "kind": "images"}))
    ctx = make_context(JobKind.training, family="unetgan", dataset="empty", devices=2, config={})
    with pytest.raises(JobFailure) as info:
        run_training(ctx)
    assert info.value.code == "bad_dataset"
    assert "no usable image" in info.value.message
    assert wait_gone(ctx.job_id) == []


def test_a_worker_that_stops_supervising_ends_the_processes(make_context, digits):  # noqa: F811
    """As when the lease is lost or the time limit interrupts the worker: nothing keeps
    training, and nothing more is written."""
    params = {"family": "unetgan", "dataset": digits, "config": {**TINY, "steps": 100000}}
    ctx = make_context(JobKind.training, devices=2, **params)
    pids = []

    def interrupted(progress, detail=None):
        pids.extend(training_processes(ctx.job_id))
        raise KeyboardInterrupt("the worker stops supervising")

    ctx.report = interrupted
    with pytest.raises(KeyboardInterrupt):
        run_training(ctx)
    assert len(pids) == 3  # torchrun and its two processes were running
    assert wait_gone(ctx.job_id) == []
    assert not (ctx.storage.run_dir(ctx.job_id) / RUN_STATE_FILE).exists()  # no checkpoint after
    leftovers = os.listdir(tempfile.gettempdir())
    assert not [p for p in leftovers if p.startswith(f"ganserve-run-{ctx.job_id}")]


# ---------------------------------------------------------------------------------------------
# With a real training worker process


class TrainSetting(WorkerSetting):
    """A storage root with the digits dataset, a Redis database, training workers."""

    def __init__(self, redis_url: str, tmp_path: Path) -> None:
        super().__init__(redis_url, tmp_path, db=3)
        root = build_demo("digits", self.storage.datasets / "d1", size=16, count=16)
        (root / "dataset.json").write_text(json.dumps({"id": "d1", "kind": "labeled"}))

    def train_worker(self, name: str, **env: str) -> WorkerProcess:
        worker = WorkerProcess(QUEUE_TRAIN, name, {**self.env, **env}, self.tmp / f"{name}.log")
        self.workers.append(worker)
        return worker.wait_ready()

    def queue_run(self, steps: int) -> Job:
        params = {
            "family": "unetgan",
            "dataset": "d1",
            "devices": 2,
            "config": TINY | {"steps": steps},
        }
        job = self.store.create(Job(kind=JobKind.training, params=params, owner="t"))
        client(self.url).send_task(**task_message(job))
        return job


@pytest.fixture
def setting(redis_url, tmp_path):
    setting = TrainSetting(redis_url, tmp_path)
    yield setting
    setting.kill_workers()


def test_a_worker_stopped_by_sigterm_checkpoints_the_run_and_requeues_it(setting):
    worker = setting.train_worker("graceful")
    job = setting.queue_run(steps=100000)  # its first checkpoint would come at step 100
    wait_for(setting.store, job.id, lambda j: j.progress_detail.get("step", 0) >= 2, timeout=120)
    os.killpg(worker.process.pid, signal.SIGTERM)  # as `ganserve up` and Docker stop a worker
    assert worker.process.wait(timeout=60) == 0
    requeued = setting.store.get(job.id)
    assert requeued.status == JobStatus.queued
    assert "requeued to resume" in worker.text()
    state = torch.load(setting.storage.run_dir(job.id) / RUN_STATE_FILE, weights_only=True)
    assert 2 <= state["step"] < 100  # written by the stop, where the run stopped
    assert wait_gone(job.id) == []


def test_a_two_process_run_past_its_time_limit_fails_and_leaves_no_process(setting):
    setting.train_worker("limited", GANSERVE_TRAIN_TIME_LIMIT="30")
    job = setting.queue_run(steps=100000)
    seen: list[Job] = []
    failed = wait_for(setting.store, job.id, ended, timeout=120, seen=seen)
    assert failed.status == JobStatus.failed and failed.error.code == "time_limit", failed
    assert "limit of 30 s (GANSERVE_TRAIN_TIME_LIMIT)" in failed.error.message
    assert any(j.progress > 0 for j in seen)  # it was training when the limit came
    assert wait_gone(job.id) == []
