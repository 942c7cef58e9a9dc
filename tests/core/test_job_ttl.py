"""Job records expire: an ended job's after `GANSERVE_RESULT_TTL`, a live job's never sooner than
the week it always had; the gateway and the workers build their store with the setting."""

from __future__ import annotations

import time

import pytest

from core.jobs import JOB_TTL_SECONDS, Job, JobKind, JobNotFound, JobStatus, JobStore
from core.settings import Settings, get_settings


def _ttl(store: JobStore, job: Job) -> int:
    return store.redis.ttl(f"ganserve:job:{job.id}")


def test_the_default_is_the_week_records_always_had(monkeypatch):
    monkeypatch.delenv("GANSERVE_RESULT_TTL", raising=False)
    assert Settings().result_ttl == JOB_TTL_SECONDS == 7 * 24 * 3600
    monkeypatch.setenv("GANSERVE_RESULT_TTL", "2")
    assert Settings().result_ttl == 2


def test_ended_records_take_the_result_ttl_and_live_ones_at_least_a_week(redis_client):
    store = JobStore(redis_client, ttl=60)
    job = store.create(Job(kind=JobKind.sample, model="m"))
    assert _ttl(store, job) > JOB_TTL_SECONDS - 5  # queued: not the short TTL
    store.update(job.id, status=JobStatus.running)
    assert _ttl(store, job) > JOB_TTL_SECONDS - 5  # running: not either
    store.update(job.id, status=JobStatus.succeeded)
    assert 55 < _ttl(store, job) <= 60

    long = JobStore(redis_client, ttl=30 * 24 * 3600)  # longer than a week: live ones too
    queued = long.create(Job(kind=JobKind.training))
    assert _ttl(long, queued) > 30 * 24 * 3600 - 5
    assert JobStore(redis_client).ttl == JOB_TTL_SECONDS  # other constructors: the default


def test_an_ended_record_is_gone_after_its_ttl(redis_client):
    store = JobStore(redis_client, ttl=1)
    live = store.create(Job(kind=JobKind.sample, model="m", owner="o"))
    done = store.create(Job(kind=JobKind.sample, model="m", owner="o"))
    store.update(done.id, status=JobStatus.cancelled)
    time.sleep(1.3)
    with pytest.raises(JobNotFound):
        store.get(done.id)
    assert store.get(live.id).status == JobStatus.queued
    assert store.existing([live.id, done.id]) == {live.id}
    assert store.owners() == ["o"]
    assert store.prune_owner_indexes() == 1  # the expired id leaves the owner's index
    assert redis_client.zrange("ganserve:owner:o:jobs", 0, -1) == [live.id.encode()]


def test_gateway_and_workers_pass_the_setting(monkeypatch, tmp_path, redis_url):
    from service.app import create_app
    from workers import jobs

    app = create_app(Settings(data_dir=tmp_path, redis_url=redis_url, result_ttl=5))
    assert app.state.job_store.ttl == 5
    monkeypatch.setenv("GANSERVE_REDIS_URL", redis_url)
    monkeypatch.setenv("GANSERVE_RESULT_TTL", "7")
    get_settings.cache_clear()
    monkeypatch.setattr(jobs, "_resources", jobs._ProcessResources())
    try:
        assert jobs.job_store().ttl == 7
    finally:
        get_settings.cache_clear()
