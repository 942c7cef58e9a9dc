"""The queue metrics of the gateway's /metrics: how much work waits and runs, read from Redis at
each scrape.

`ganserve_queue_depth{queue}` counts the messages waiting in each Celery queue (every priority
list, `core.queues`): the signal an autoscaler scales inference workers on.
`ganserve_jobs_running{queue}` counts the jobs whose record says `running`
(`JobStore.running_counts`). Three Redis round trips per scrape, whatever the queue lengths.
When Redis does not answer, the scrape leaves both out (and logs why) rather than failing the
gateway's other metrics. The workers' own metrics are theirs (`workers.metrics`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from core.jobs import QUEUES, JobStore
from core.queues import queue_lengths

log = logging.getLogger(__name__)


class QueueCollector:
    """A Prometheus collector of the queue depths and running jobs in the job store's Redis."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def describe(self) -> list[Metric]:
        """The metrics it yields, without reading Redis (at registration)."""
        return [_depth(), _running()]

    def collect(self) -> Iterator[Metric]:
        try:
            depths = queue_lengths(self.store.redis, QUEUES)
            running = self.store.running_counts()
        except redis.RedisError as exc:
            log.warning("queue metrics left out: Redis did not answer (%s)", exc)
            return
        depth, jobs = _depth(), _running()
        for queue in QUEUES:
            depth.add_metric([queue], depths[queue])
            jobs.add_metric([queue], running[queue])
        yield depth
        yield jobs


def _depth() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "ganserve_queue_depth",
        "Messages waiting in a Celery queue (all priorities), not yet taken by a worker.",
        labels=["queue"],
    )


def _running() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "ganserve_jobs_running",
        "Jobs of a queue whose record says running (a job whose worker died counts until it "
        "runs again or is given up).",
        labels=["queue"],
    )
