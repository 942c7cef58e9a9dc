"""What waits in a Celery queue: counted and named from the real Redis lists Celery writes."""

from celery import Celery

from core.queues import queue_length, waiting_job_ids


def test_waiting_job_ids_are_the_task_ids_celery_sent(redis_url, redis_client):
    app = Celery("probe", broker=redis_url, set_as_current=False)
    app.send_task("ganserve.train", args=["job-a"], queue="probe", task_id="job-a")
    app.send_task("ganserve.train", args=["job-b"], queue="probe", task_id="job-b", priority=6)
    redis_client.lpush("probe", b"not json")  # a stray entry is left out, not a crash
    assert sorted(waiting_job_ids(redis_client, "probe")) == ["job-a", "job-b"]
    assert queue_length(redis_client, "probe") == 3
    assert waiting_job_ids(redis_client, "empty") == []
