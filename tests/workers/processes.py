"""Real Celery worker processes for the integration tests, and a client that sends tasks by name."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis
from celery import Celery

from core.jobs import QUEUE_INFER, Job, JobStore
from core.storage import Storage
from ganserve.processes import worker_command
from tests.conftest import redis_db

ROOT = Path(__file__).resolve().parents[2]


def client(redis_url: str) -> Celery:
    """A Celery client that only sends tasks by name, as the gateway does."""
    return Celery("ganserve-test-client", broker=redis_url, set_as_current=False)


class WorkerProcess:
    """`ganserve worker`'s Celery command, named `<name>@<host>`, in its own process group."""

    def __init__(
        self,
        queue: str,
        name: str,
        env: dict[str, str],
        log: Path,
        slow_first_attempt: float | None = None,
        include: tuple[str, ...] = (),
    ) -> None:
        """`slow_first_attempt`: seconds each job's first attempt sleeps once it is running
        (`tests/workers/slow_tasks.py`), so that a test can kill something mid-job; `include`:
        more test-only modules the worker imports (`--include`)."""
        self.queue, self.name, self.log = queue, name, log
        self._log_file = log.open("w")
        command = [*worker_command(queue, name=name), "--without-mingle", "--without-gossip"]
        extra = {}
        if slow_first_attempt is not None:
            command += ["--include", "tests.workers.slow_tasks"]
            extra = {"SLOW_FIRST_ATTEMPT_SECONDS": str(slow_first_attempt)}
        for module in include:
            command += ["--include", module]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "GANSERVE_TORCH_THREADS": "1", **env, **extra},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the pool's children die with it
        )

    def text(self) -> str:
        """What the worker logged so far."""
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> WorkerProcess:
        """Wait until the worker consumes its queue."""
        deadline = time.monotonic() + timeout
        while " ready." not in self.text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start:\n{self.text()[-3000:]}")
            time.sleep(0.1)
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group (the main process and its pool) and reap it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._log_file.close()


class WorkerSetting:
    """A storage root, a Redis database of its own (flushed), and the infer workers a test starts
    on them with `env` (a 4 s visibility timeout, so redelivery is quick); `kill_workers` at the
    end. `slow_first_attempt` as for `WorkerProcess`."""

    def __init__(
        self, redis_url: str, tmp_path: Path, db: int, slow_first_attempt: float | None = None
    ) -> None:
        self.url = redis_db(redis_url, db)
        redis.Redis.from_url(self.url).flushdb()
        self.tmp = tmp_path
        self.storage = Storage(tmp_path / "data")
        self.storage.ensure()
        self.store = JobStore(redis.Redis.from_url(self.url))
        self.env = {
            "GANSERVE_REDIS_URL": self.url,
            "GANSERVE_DATA_DIR": str(self.storage.root),
            "GANSERVE_VISIBILITY_TIMEOUT": "4",
        }
        self.slow_first_attempt = slow_first_attempt
        self.workers: list[WorkerProcess] = []

    def worker(self, name: str, **env: str) -> WorkerProcess:
        """A new infer worker `name` with the setting's environment and `env`, once ready."""
        worker = WorkerProcess(
            QUEUE_INFER,
            name,
            {**self.env, **env},
            self.tmp / f"{name}.log",
            self.slow_first_attempt,
        )
        self.workers.append(worker)
        return worker.wait_ready()

    def kill_workers(self) -> None:
        """SIGKILL every worker the test started."""
        for worker in self.workers:
            worker.kill()


def wait_for(
    store: JobStore,
    job_id: str,
    done: Callable[[Job], bool],
    timeout: float = 60.0,
    seen: list[Job] | None = None,
) -> Job:
    """Poll a job record until `done(job)`; `seen` collects every record read."""
    deadline = time.monotonic() + timeout
    while True:
        job = store.get(job_id)
        if seen is not None:
            seen.append(job)
        if done(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not get there in {timeout}s: {job}")
        time.sleep(0.05)


def logged(workers: list[WorkerProcess], text: str, timeout: float = 10.0) -> str:
    """The workers' logs once `text` is in them (a job's end is recorded in Redis just before its
    worker logs it, so a test that saw the record may read the log a moment too early)."""
    deadline = time.monotonic() + timeout
    while True:
        logs = "".join(worker.text() for worker in workers)
        if text in logs or time.monotonic() > deadline:
            return logs
        time.sleep(0.05)


def ended(job: Job) -> bool:
    """Whether the job succeeded, failed or was cancelled."""
    return job.status.ended
