"""core.usage: every owner's line at once (what an operator's view of GET /v1/usage needs)."""

from __future__ import annotations

import json

from core.jobs import Job, JobKind, JobStatus, JobStore
from core.storage import Storage
from core.usage import folder_bytes, known_owners, usage_of


def test_usage_of_several_owners(tmp_path, redis_client):
    storage, store = Storage(tmp_path / "data"), JobStore(redis_client)
    storage.ensure()
    a = store.create(Job(kind=JobKind.sample, model="m", owner="a"))
    store.update(a.id, status=JobStatus.failed)
    b = store.create(Job(kind=JobKind.translation, model="m", owner="b"))
    (storage.result_dir(a.id)).mkdir(parents=True)
    (storage.result_dir(a.id) / "0.png").write_bytes(b"x" * 10)
    storage.upload_dir(b.id).mkdir(parents=True)
    (storage.upload_dir(b.id) / "input.png").write_bytes(b"x" * 20)
    dataset = storage.datasets / "d1"
    dataset.mkdir()
    (dataset / "dataset.json").write_text(json.dumps({"id": "d1", "owner": "c"}))
    model = storage.models / "m1"
    model.mkdir()
    card = {
        "architecture": "x",
        "family": "pix2pix",
        "task": "translate",
        "config": {},
        "image_size": 32,
        "channels": 3,
        "num_classes": 0,
        "provenance": {"owner": "b"},
    }
    (model / "config.json").write_text(json.dumps(card))
    (model / "model.safetensors").write_bytes(b"w" * 40)
    (storage.models / ".m2.abcd1234").mkdir()  # being written: nobody's

    assert known_owners(storage, store) == ["a", "b", "c"]
    lines = {u.owner: u for u in usage_of(["a", "b", "c", "nobody"], storage, store)}
    assert lines["a"].jobs["failed"] == 1 and lines["a"].bytes.results == 10
    assert lines["b"].jobs["queued"] == 1 and lines["b"].bytes.uploads == 20
    assert lines["b"].bytes.models == folder_bytes(model) == 40 + len(json.dumps(card))
    assert lines["c"].bytes.datasets == folder_bytes(dataset) > 0
    assert lines["nobody"].model_dump() == {
        "owner": "nobody",
        "jobs": dict.fromkeys(("queued", "running", "succeeded", "failed", "cancelled"), 0),
        "bytes": dict.fromkeys(("results", "uploads", "runs", "datasets", "models"), 0),
    }
