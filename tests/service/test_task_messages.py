"""service.task_messages against Celery's own send_task: the message it pushes is the one kombu
pushes, byte for byte but for the random delivery tag, on the same list (workers run them in
tests/e2e)."""

import json
import re

import pytest

from core.jobs import Job, JobKind, task_message
from core.queues import PRIORITY_SEPARATOR, priority_list
from service.app import _celery_app
from service.task_messages import push_task

TAG = re.compile(r'"delivery_tag": "[0-9a-f-]{36}"')


def _pushed(client) -> tuple[bytes, bytes]:
    """The one list that holds a message, and the message (taken off it)."""
    lists = [k for k in client.keys("*") if client.type(k) == b"list"]
    assert len(lists) == 1, lists
    return lists[0], client.rpop(lists[0])


@pytest.mark.parametrize(
    ("kind", "priority"),
    [
        (JobKind.translation, None),
        (JobKind.translation, 0),
        (JobKind.sample, 3),
        (JobKind.inspection, 6),
        (JobKind.training, 9),
    ],
)
def test_the_message_is_the_one_send_task_pushes(redis_url, redis_client, kind, priority):
    celery_app = _celery_app(redis_url)  # the gateway's, on the same database
    job = Job(kind=kind, owner="o")
    try:
        push_task(redis_client, celery_app, job, priority)
        ours = _pushed(redis_client)
        celery_app.send_task(**task_message(job, priority))
        theirs = _pushed(redis_client)
    finally:
        celery_app.close()
    assert ours[0] == theirs[0]
    assert TAG.sub("", ours[1].decode()) == TAG.sub("", theirs[1].decode())
    message = json.loads(ours[1])
    assert message["headers"]["id"] == job.id
    assert message["properties"]["priority"] == (priority or 0)


def test_priorities_go_to_kombus_lists():
    assert priority_list("infer", 0) == "infer"
    assert priority_list("infer", 2) == "infer"
    assert priority_list("infer", 3) == f"infer{PRIORITY_SEPARATOR}3"
    assert priority_list("train", 8) == f"train{PRIORITY_SEPARATOR}6"
    assert priority_list("train", 9) == f"train{PRIORITY_SEPARATOR}9"
