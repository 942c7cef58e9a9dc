"""Fixtures of the worker tests: tiny real models in a storage root, job contexts."""

from __future__ import annotations

import pytest

from core.jobs import Job, JobKind, JobStore
from core.settings import Settings
from core.storage import Storage
from tests.workers.tiny import TINY_MODELS, save_tiny_model
from workers.jobs import JobContext


@pytest.fixture
def storage(tmp_path) -> Storage:
    """A storage root with the tiny models saved in it."""
    store = Storage(tmp_path / "data")
    store.ensure()
    for model_id in TINY_MODELS:
        save_tiny_model(store.models, model_id)
    return store


@pytest.fixture
def make_context(storage, redis_client):
    """Build a JobContext for a new job record (kind, model, params) in a flushed Redis."""
    job_store = JobStore(redis_client)
    settings = Settings(data_dir=storage.root, redis_url=None)

    def make(kind: JobKind, model: str | None = None, **params) -> JobContext:
        job = job_store.create(Job(kind=kind, model=model, params=params, owner="t"))
        return JobContext(job, job_store, storage, settings, holder="test")

    return make


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every worker test runs with one torch thread (tests/conftest.py)."""


@pytest.fixture
def fresh_cache(storage, monkeypatch):
    """Point the process's model cache at the test storage, in fp32 (these tests compare the
    worker's numbers with the networks' own; `test_fast_path.py` tests bf16)."""
    monkeypatch.setenv("GANSERVE_DATA_DIR", str(storage.root))
    monkeypatch.setenv("GANSERVE_PRECISION", "fp32")
    from core.settings import get_settings

    get_settings.cache_clear()
    monkeypatch.setattr("workers.model_cache._cache", None)
    monkeypatch.setattr("workers.model_cache._fast_paths", {})
    yield
    get_settings.cache_clear()
