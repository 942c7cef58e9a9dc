"""workers.liveness, the worker containers' health check, against a real worker and Redis."""

import os
import socket
import subprocess

from core.jobs import QUEUE_INFER, QUEUE_TRAIN
from ganserve.processes import worker_health_command
from tests.workers.processes import ROOT, WorkerSetting


def health(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_answers_while_the_worker_lives_and_not_after(redis_url, tmp_path):
    setting = WorkerSetting(redis_url, tmp_path, db=11)
    try:
        worker = setting.worker(QUEUE_INFER)  # named infer@<this host>, as in the containers
        alive = health(worker_health_command(QUEUE_INFER), setting.env)
        assert alive.returncode == 0, alive.stderr

        # No train worker runs on this host: unhealthy, and it says which node did not answer.
        absent = health(worker_health_command(QUEUE_TRAIN), setting.env)
        assert absent.returncode == 1
        assert f"worker train@{socket.gethostname()}: no answer within" in absent.stderr

        worker.kill()
        dead = health(worker_health_command(QUEUE_INFER), setting.env)
        assert dead.returncode == 1
        assert f"worker infer@{socket.gethostname()}" in dead.stderr
    finally:
        setting.kill_workers()


def test_unreachable_redis_is_unhealthy_in_one_line(tmp_path):
    env = {"GANSERVE_REDIS_URL": "redis://127.0.0.1:1/0", "GANSERVE_DATA_DIR": str(tmp_path)}
    result = health(worker_health_command(QUEUE_INFER), env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"worker infer@{socket.gethostname()}: cannot ask it:")
    assert len(result.stderr.strip().splitlines()) == 1
