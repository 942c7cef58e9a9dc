"""The client when the stack fails under it: the gateway killed and started again (requests are
retried, an event stream resumes where it was), a full queue (429), Redis down (503), a full
storage volume (507) and a record the gateway cannot read (500). One real stack for the module
(embedded Redis, gateway, one worker per queue, tiny models); each test leaves it whole again."""

import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
import redis

from core.settings import Settings
from ganserve.client import (
    Client,
    QueueFull,
    RetryPolicy,
    ServerError,
    ServiceUnavailable,
    StorageFull,
)
from ganserve.embedded_redis import free_port
from ganserve.launcher import RunningStack, local_stack
from tests.e2e.stack import png, save_tiny_models, wait_ready

MAX_QUEUED = 2
PATIENT = RetryPolicy(retries=40, backoff=0.2, max_backoff=1.0, max_retry_after=1.0)


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[RunningStack]:
    data_dir = tmp_path_factory.mktemp("client-faults")
    save_tiny_models(data_dir / "models", translator="tiny-p2p", sampler="tiny-ugan")
    settings = Settings(data_dir=data_dir, port=free_port(), redis_url=None)
    env = {"GANSERVE_MAX_QUEUED_JOBS": str(MAX_QUEUED)}
    with local_stack(settings, env) as running, httpx.Client(base_url=running.url) as http:
        wait_ready(http, running.stack)
        yield running


@contextmanager
def later(action: Callable[[], None], seconds: float) -> Iterator[None]:
    """Run `action` in a thread after `seconds`, and wait for it before leaving."""
    timer = threading.Timer(seconds, action)
    timer.start()
    try:
        yield
    finally:
        timer.join()


def ready_again(running: RunningStack) -> None:
    with httpx.Client(base_url=running.url) as http:
        wait_ready(http, running.stack)


def test_a_submission_waits_out_a_gateway_restart(running):
    with Client(running.url, retries=PATIENT) as client:
        before = {j.id for j in client.jobs(kind="translation")}
        running.stack.reap("gateway")  # killed: connections are refused
        with later(lambda: running.stack.restart("gateway"), 2.0):
            picture = client.translate(png(30, 20), "tiny-p2p")
        after = {j.id for j in client.jobs(kind="translation")}
    assert picture.size == (30, 20)
    assert len(after - before) == 1  # retried until it got through, and only once


def test_events_resume_after_a_gateway_restart(running):
    with Client(running.url, retries=PATIENT) as client:
        job = client.submit_projection(png(32, 32), "tiny-ugan", steps=5000)
        events = job.events()
        before = next(e for e in events if e.type == "progress")
        running.stack.reap("gateway")
        with later(lambda: running.stack.restart("gateway"), 1.0):
            resumed = next(events)  # after reconnecting with Last-Event-ID
        job.cancel()
        rest = list(events)
    assert int(resumed.event_id) > int(before.event_id)
    ids = [int(e.event_id) for e in [before, resumed, *rest]]
    assert ids == sorted(set(ids))
    assert rest[-1].status == "cancelled" and job.status == "cancelled"


def test_a_full_queue_is_queue_full(running):
    running.stack.reap("worker-infer")  # nothing takes jobs off the queue
    briefly = RetryPolicy(retries=2, backoff=0.01, max_retry_after=0.1)
    try:
        with Client(running.url, retries=0) as client:
            queued = [client.submit_sample("tiny-ugan", seed=k) for k in range(MAX_QUEUED)]
            with pytest.raises(QueueFull) as full:
                client.submit_sample("tiny-ugan")
            assert full.value.status == 429 and full.value.retry_after is not None
            with Client(running.url, retries=briefly) as patient, pytest.raises(QueueFull):
                patient.submit_sample("tiny-ugan")  # retried, and still full
            waiting = {j.id for j in client.jobs(kind="sample", status="queued")}
            assert waiting == {j.id for j in queued}  # the refused submissions made no job
            for job in queued:
                assert job.cancel().status == "cancelled"
    finally:
        running.stack.restart("worker-infer")
        ready_again(running)


def test_redis_down_is_service_unavailable_and_retried(running):
    assert running.redis is not None
    running.redis.stop()
    try:
        with Client(running.url, retries=0) as client, pytest.raises(ServiceUnavailable) as down:
            client.submit_sample("tiny-ugan")
        assert down.value.status == 503 and down.value.retry_after is not None
        with Client(running.url, retries=PATIENT) as patient:
            with later(running.redis.start, 1.5):
                job = patient.submit_sample("tiny-ugan", seed=3)  # 503s, retried until it is up
            assert job.status == "queued"
    finally:
        if running.redis.process is None:
            running.redis.start()
        ready_again(running)
    with Client(running.url) as client:
        assert len(client.job(job.id).images()) == 1


@pytest.fixture
def full_uploads(running):
    """The stack's uploads folder on a 1 MiB tmpfs filled to the brim (root only, as on CI)."""
    uploads = running_data_dir(running) / "uploads"
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(uploads)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        with (uploads / "filler").open("wb") as filler:
            try:
                while True:
                    filler.write(b"\0" * 65536)
            except OSError:
                pass
        yield uploads
    finally:
        subprocess.run(["umount", str(uploads)], check=True)


def running_data_dir(running: RunningStack):
    assert running.redis is not None
    return running.redis.folder.parent  # the embedded Redis lies under the storage root


def test_a_full_storage_volume_is_storage_full(running, full_uploads):
    with Client(running.url, retries=0) as client, pytest.raises(StorageFull) as full:
        client.translate(png(64, 64), "tiny-p2p")
    assert full.value.status == 507 and full.value.code == "storage_full"
    assert list(full_uploads.iterdir()) == [full_uploads / "filler"]  # nothing half-written


def test_a_record_the_gateway_cannot_read_is_server_error(running):
    broken = redis.Redis.from_url(running.redis_url)
    broken.set("ganserve:job:broken-record", b'{"kind": "no-such-kind"}')  # as a bug would
    try:
        with Client(running.url, retries=0) as client, pytest.raises(ServerError) as failed:
            client.job("broken-record")
        assert failed.value.status == 500 and failed.value.code == "internal_error"
    finally:
        broken.delete("ganserve:job:broken-record")
        broken.close()
