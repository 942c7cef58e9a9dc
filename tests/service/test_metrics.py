"""The gateway's queue metrics: queue depths over every priority list and running jobs, read from
the real Redis at each scrape, by the collector and through a real gateway's /metrics."""

import time

import pytest
import redis
from celery import Celery

from core.jobs import QUEUE_INFER, QUEUE_TRAIN, Job, JobKind, JobStatus, JobStore
from core.queues import PRIORITY_SEPARATOR
from service.metrics import QueueCollector
from tests.prometheus import parse, scrape, value
from tests.service.conftest import start_gateway
from tests.service.factories import image_bytes


def collected(collector: QueueCollector) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels["queue"]): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_queue_depth_counts_every_priority_list(redis_url, redis_client):
    celery = Celery("probe", broker=redis_url, set_as_current=False)
    for index, priority in enumerate((None, 0, 3, 6, 9, 9)):
        celery.send_task(
            "ganserve.translate", args=[f"j{index}"], queue=QUEUE_INFER, priority=priority
        )
    celery.send_task("ganserve.train", args=["t"], queue=QUEUE_TRAIN)
    assert redis_client.llen(f"{QUEUE_INFER}{PRIORITY_SEPARATOR}9") == 2  # kombu's lists
    found = collected(QueueCollector(JobStore(redis_client)))
    assert found[("ganserve_queue_depth", QUEUE_INFER)] == 6
    assert found[("ganserve_queue_depth", QUEUE_TRAIN)] == 1
    assert found[("ganserve_jobs_running", QUEUE_INFER)] == 0


def test_running_jobs_follow_the_records(redis_client):
    store = JobStore(redis_client)
    collector = QueueCollector(store)
    jobs = [store.create(Job(kind=kind, owner="o")) for kind in (JobKind.sample,) * 3]
    training = store.create(Job(kind=JobKind.training, owner="o"))
    for job in [*jobs, training]:
        store.update(job.id, status=JobStatus.running, started_at=time.time())
    store.update(jobs[0].id, status=JobStatus.succeeded)
    store.update(jobs[1].id, status=JobStatus.queued)  # back to the queue (a yield)
    found = collected(collector)
    assert found[("ganserve_jobs_running", QUEUE_INFER)] == 1
    assert found[("ganserve_jobs_running", QUEUE_TRAIN)] == 1
    store.update(jobs[1].id, status=JobStatus.running)
    store.delete(training.id)
    redis_client.delete(f"ganserve:job:{jobs[2].id}")  # a record that expired under it
    assert store.running_counts() == {QUEUE_INFER: 1, QUEUE_TRAIN: 0}
    assert redis_client.zcard(f"ganserve:running:{QUEUE_INFER}") == 1  # the stale entry dropped


def test_without_redis_the_queue_metrics_are_left_out(caplog):
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    assert collected(QueueCollector(JobStore(client))) == {}
    assert "queue metrics left out: Redis did not answer" in caplog.text


@pytest.fixture(scope="module")
def metered_gateway(redis_url, tmp_path_factory):
    """A gateway on a Redis database of its own (nothing else queues there); no worker."""
    server = start_gateway(tmp_path_factory.mktemp("metered"), redis_url)
    yield server
    server.stop()


def test_the_gateway_serves_queue_depth_and_running_jobs(metered_gateway):
    url = f"{metered_gateway.url}/metrics"
    before = scrape(url)
    assert value(before, "ganserve_queue_depth", queue=QUEUE_INFER) == 0
    assert value(before, "ganserve_jobs_running", queue=QUEUE_TRAIN) == 0
    ids = []
    with metered_gateway.client() as client:
        for _ in range(10):  # one owner's jobs past the first 8 get a lower priority's list
            response = client.post(
                "/v1/translations",
                files={"image": ("in.png", image_bytes(), "image/png")},
                data={"model": "facades"},
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        assert metered_gateway.redis().llen(f"{QUEUE_INFER}{PRIORITY_SEPARATOR}3") == 2
        queued = scrape(url)
        assert value(queued, "ganserve_queue_depth", queue=QUEUE_INFER) == 10
        assert value(queued, "ganserve_queue_depth", queue=QUEUE_TRAIN) == 0
        store = metered_gateway.store()
        store.update(ids[0], status=JobStatus.running, started_at=time.time())  # as a worker
        assert value(scrape(url), "ganserve_jobs_running", queue=QUEUE_INFER) == 1
        store.update(ids[0], status=JobStatus.succeeded, finished_at=time.time())
        metrics = client.get("/metrics")
    assert value(parse(metrics.text), "ganserve_jobs_running", queue=QUEUE_INFER) == 0
    assert "http_requests_total" in metrics.text  # the instrumentator's own metrics stay
