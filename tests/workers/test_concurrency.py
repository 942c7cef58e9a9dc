"""How many pool processes a worker runs (`workers.concurrency`): decided in the torch-free
parent, from `GANSERVE_INFER_CONCURRENCY` or the GPUs that NVML counts; checked on real workers."""

from __future__ import annotations

import pytest

from core.jobs import QUEUE_INFER, QUEUE_TRAIN
from core.settings import Settings
from ganserve.processes import worker_command
from tests.workers.processes import WorkerProcess, WorkerSetting, client
from workers import concurrency
from workers.concurrency import CUDA_INFER_CONCURRENCY, cuda_host, pool_size


def test_infer_workers_run_two_processes_on_a_gpu_host_and_one_elsewhere(monkeypatch):
    settings = Settings()
    monkeypatch.setattr(concurrency, "cuda_host", lambda: True)
    assert pool_size([QUEUE_INFER], settings) == CUDA_INFER_CONCURRENCY == 2
    assert pool_size(None, settings) == 2  # Celery's default queue here is infer
    assert pool_size([QUEUE_TRAIN], settings) == 1
    assert pool_size([QUEUE_INFER, QUEUE_TRAIN], settings) == 1
    monkeypatch.setattr(concurrency, "cuda_host", lambda: False)
    assert pool_size([QUEUE_INFER], settings) == 1
    assert pool_size([QUEUE_INFER], Settings(infer_concurrency=3)) == 3
    assert pool_size([QUEUE_TRAIN], Settings(infer_concurrency=3)) == 1


def test_the_setting_is_checked(monkeypatch):
    monkeypatch.setenv("GANSERVE_INFER_CONCURRENCY", "")
    assert Settings().infer_concurrency is None
    with pytest.raises(ValueError, match="infer_concurrency"):
        Settings(infer_concurrency=0)


@pytest.mark.parametrize("visible", ["", "-1", " , "])
def test_hidden_gpus_count_as_none(monkeypatch, visible):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert concurrency.visible_nvidia_gpus() == 0
    assert not cuda_host()


def test_cuda_host_agrees_with_torch():
    """The parent's answer without torch is torch's own in a child (run by benchmarks/gpu.sh on
    a GPU host too)."""
    import torch

    assert concurrency.torch_has_cuda() == (torch.version.cuda is not None)
    assert cuda_host() == torch.cuda.is_available()


def test_worker_commands_leave_the_pool_size_to_the_worker_unless_given():
    assert "--concurrency" not in worker_command(QUEUE_INFER)
    command = worker_command(QUEUE_TRAIN, 3)
    assert command[command.index("--concurrency") + 1] == "3"
    with pytest.raises(ValueError, match="at least 1"):
        worker_command(QUEUE_INFER, 0)


def test_real_workers_run_the_pool_processes_decided(redis_url, tmp_path):
    """An infer worker takes GANSERVE_INFER_CONCURRENCY; a train worker ignores it; an infer
    worker without it runs 2 on a GPU host, 1 here (Celery's own default: one per CPU core)."""
    setting = WorkerSetting(redis_url, tmp_path, db=12)
    try:
        setting.worker("infer-three", GANSERVE_INFER_CONCURRENCY="3")
        setting.worker("infer-auto")
        train = WorkerProcess(
            QUEUE_TRAIN,
            "train-one",
            {**setting.env, "GANSERVE_INFER_CONCURRENCY": "2"},
            tmp_path / "train-one.log",
        )
        setting.workers.append(train)
        train.wait_ready()
        stats = client(setting.url).control.inspect(timeout=10).stats() or {}
        sizes = {
            node.split("@")[0]: info["pool"]["max-concurrency"] for node, info in stats.items()
        }
        auto = CUDA_INFER_CONCURRENCY if cuda_host() else 1
        assert sizes == {"infer-three": 3, "infer-auto": auto, "train-one": 1}
    finally:
        setting.kill_workers()
