"""What waits in a Celery queue on the Redis broker: how many messages, and for which jobs.

Torch-free, shared by the gateway (429 when a queue is full) and the training worker (a
background run yields when other work waits). kombu's Redis transport keeps a queue's messages in
a list named after the queue; messages sent with a priority go to lists named
"<queue>\\x06\\x16<priority>" (its default priority steps). Each message is JSON whose headers
carry the task id, which is the job id (`service.jobs.enqueue` sends `task_id=job.id`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import redis

PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)


def _lists(queue: str) -> list[str]:
    return [queue, *(f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS)]


def queue_length(client: redis.Redis, queue: str) -> int:
    """Messages waiting in a Celery queue (all priority lists)."""
    pipe = client.pipeline(transaction=False)
    for name in _lists(queue):
        pipe.llen(name)
    return sum(pipe.execute())


def queue_lengths(client: redis.Redis, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each of `queues` (all priority lists), in one round trip."""
    names = list(queues)
    pipe = client.pipeline(transaction=False)
    for queue in names:
        for name in _lists(queue):
            pipe.llen(name)
    counts = iter(pipe.execute())
    return {queue: sum(next(counts) for _ in _lists(queue)) for queue in names}


def waiting_job_ids(client: redis.Redis, queue: str) -> list[str]:
    """The job ids of the messages waiting in a Celery queue (unreadable messages left out)."""
    pipe = client.pipeline(transaction=False)
    for name in _lists(queue):
        pipe.lrange(name, 0, -1)
    ids = []
    for raw in (message for messages in pipe.execute() for message in messages):
        try:
            task_id = json.loads(raw)["headers"]["id"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(task_id, str):
            ids.append(task_id)
    return ids
