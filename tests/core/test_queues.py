"""What waits in a Celery queue: counted and named from the real Redis lists Celery writes."""

from celery import Celery

from core.queues import queue_length, remove_waiting, waiting_job_ids


def test_waiting_job_ids_are_the_task_ids_celery_sent(redis_url, redis_client):
    app = Celery("probe", broker=redis_url, set_as_current=False)
    app.send_task("ganserve.train", args=["job-a"], queue="probe", task_id="job-a")
    app.send_task("ganserve.train", args=["job-b"], queue="probe", task_id="job-b", priority=6)
    redis_client.lpush("probe", b"not json")  # a stray entry is left out, not a crash
    assert sorted(waiting_job_ids(redis_client, "probe")) == ["job-a", "job-b"]
    assert queue_length(redis_client, "probe") == 3
    assert waiting_job_ids(redis_client, "empty") == []


def test_remove_waiting_takes_exactly_the_named_jobs_messages(redis_url, redis_client):
    app = Celery("probe", broker=redis_url, set_as_current=False)
    for name, priority in (("a", None), ("b", 6), ("c", None), ("d", 9)):
        app.send_task("ganserve.sample", args=[name], queue="take", task_id=name, priority=priority)
    # a message sent from job a's task names it as its parent (a requeued batch-mate's does)
    app.send_task("ganserve.sample", args=["e"], queue="take", task_id="e", parent_id="a")
    assert any(b'"parent_id": "a"' in m for m in redis_client.lrange("take", 0, -1))
    removed = remove_waiting(redis_client, "take", ["a", "b", "d", "unknown"])
    assert removed == {"a", "b", "d"}
    assert sorted(waiting_job_ids(redis_client, "take")) == ["c", "e"]
    assert remove_waiting(redis_client, "take", []) == set()


def test_remove_waiting_looks_only_at_the_messages_delivered_next(redis_url, redis_client):
    app = Celery("probe", broker=redis_url, set_as_current=False)
    for k in range(6):  # kombu pushes on the left and delivers from the right: 0 comes first
        app.send_task("ganserve.sample", args=[f"j{k}"], queue="window", task_id=f"j{k}")
    assert remove_waiting(redis_client, "window", ["j0", "j5"], window=3) == {"j0"}
    assert "j5" in waiting_job_ids(redis_client, "window")
