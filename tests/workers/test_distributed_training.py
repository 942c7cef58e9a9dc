"""Training jobs on two devices: torchrun with two gloo processes under a worker in this process.

The runs are real (torchrun, two training processes, the job store in a real Redis); the worker
is this test process, calling `run_training` as a pool process does.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import pytest

from core.jobs import JobKind, JobStatus
from core.model_registry import ModelRegistry
from core.settings import Settings
from tests.workers.test_training_jobs import TINY, digits  # noqa: F401 (a fixture)
from training.state import STATE_FILE
from workers.distributed_training import check_devices, spec_of
from workers.errors import JobFailure
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


def test_a_two_process_run_stops_when_cancelled_and_resumes_to_the_end(make_context, digits):  # noqa: F811
    params = {"family": "unetgan", "dataset": digits, "config": {**TINY, "steps": 30}}
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
    assert 2 <= stopped < 30
    assert [d["step"] for d in details[:3]] == [1, 2, 3]  # rank 0's progress, step by step
    assert details[0]["total"] == 30 and "D_real" in details[0]["losses"]
    assert first.store.get(first.job_id).progress_detail["step"] == stopped
    run = first.storage.run_dir(first.job_id)
    assert (run / STATE_FILE).is_file()
    assert json.loads((run / "options.json").read_text())["world_size"] == 2
    assert wait_gone(first.job_id) == []

    first.store.redis.delete(f"ganserve:cancel:{first.job_id}")  # delivered again
    first.store.release_lease(first.job_id, first.holder)
    again = type(first)(first.job, first.store, first.storage, first.settings, "second")
    outcome = run_training(again)
    assert outcome.status == JobStatus.succeeded and outcome.result["steps"] == 30
    steps = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and set(steps) == set(range(1, 31))  # resumed, not restarted
    (version,) = ModelRegistry(first.storage.models).versions(outcome.result["model"])
    assert version.source["job"] == first.job_id and version.source["step"] == 30
    assert again.store.get(again.job_id).progress == 1.0
    assert wait_gone(first.job_id) == []


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
    assert not (ctx.storage.run_dir(ctx.job_id) / STATE_FILE).exists()  # no checkpoint after
    leftovers = os.listdir(tempfile.gettempdir())
    assert not [p for p in leftovers if p.startswith(f"ganserve-run-{ctx.job_id}")]
