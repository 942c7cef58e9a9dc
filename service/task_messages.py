"""A job's Celery task message, pushed onto the broker's Redis list by the gateway itself.

`celery_app.send_task(**task_message(job, priority))` builds a protocol-2 task message and has
kombu's Redis transport push it, as JSON, onto the queue's list for its priority (`core.queues`):
several hundred microseconds of CPU a job, mostly in kombu's producer, connection and declaration
machinery. `task_message_json` writes the same message, byte for byte but for its random
`delivery_tag` (a test compares the two), and `push_task` pushes it with one LPUSH on the
gateway's own Redis client, so a worker receives exactly what send_task would have sent it:
its task id and only argument the job id, the priority in its properties and in the list's name.
What the message holds is fixed by `service.app`'s Celery app: JSON, no compression, no result
backend, no ETA, expiry, time limits or links. Errors are the Redis client's (`redis.RedisError`).
"""

from __future__ import annotations

import base64
import json
import uuid

import redis
from celery import Celery
from celery.utils.nodenames import anon_nodename

from core.jobs import Job, task_message
from core.queues import priority_list

EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}  # no links


def task_message_json(celery_app: Celery, job: Job, priority: int | None) -> tuple[str, str]:
    """The list the task message of `job` goes to and the message, as kombu writes them."""
    sent = task_message(job, priority)
    task_id, args, queue = sent["task_id"], sent["args"], sent["queue"]
    level = sent.get("priority") or 0
    body = json.dumps([args, {}, EMBED]).encode()
    message = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": sent["name"],
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": repr(args),
            "kwargsrepr": "{}",
            "origin": anon_nodename(),  # gen<pid>@<host>
            "ignore_result": None,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": task_id,
            "reply_to": celery_app.thread_oid,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": level,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return priority_list(queue, level), json.dumps(message)


def push_task(client: redis.Redis, celery_app: Celery, job: Job, priority: int | None) -> None:
    """Queue the task of `job` (with `priority`, see `core.jobs.fair_priority`): one LPUSH."""
    name, message = task_message_json(celery_app, job, priority)
    client.lpush(name, message)
