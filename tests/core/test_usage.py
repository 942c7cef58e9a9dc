"""core.usage: every owner's line at once (what an operator's view of GET /v1/usage needs), from
files on disk, and from stored objects on both backends (a local folder and a real S3 server)."""

from __future__ import annotations

import json

import pytest

from core.jobs import Job, JobKind, JobStatus, JobStore
from core.object_store import ObjectStore
from core.storage import Storage, result_key, run_key, upload_key
from core.usage import OwnerUsage, folder_bytes, known_owners, usage_of


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


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path) -> Storage:
    """A storage on the local backend or on the session's real S3 server (SeaweedFS)."""
    data = tmp_path / "data"
    if request.param == "s3":
        return Storage(data, ObjectStore.open(request.getfixturevalue("s3_url"), data))
    return Storage(data)


def test_usage_from_stored_objects_on_both_backends(backend, redis_client):
    store, objects = JobStore(redis_client), backend.objects
    a = store.create(Job(kind=JobKind.training, owner="a"))
    store.update(a.id, status=JobStatus.succeeded)
    b = store.create(Job(kind=JobKind.translation, model="m", owner="b"))
    objects.put(result_key(a.id, "0.png"), b"r" * 10)
    objects.put(result_key(a.id, "latents.npy"), b"l" * 5)
    objects.put(run_key(a.id, "checkpoint.pt"), b"c" * 30)
    objects.put(run_key(a.id, ".stats.jsonl.abcd1234"), b"t" * 3)  # hidden: still the run's
    objects.put(upload_key(b.id), b"u" * 20)
    objects.put("datasets/d1/dataset.json", json.dumps({"id": "d1", "owner": "c"}).encode())
    objects.put("datasets/d1/files/a.png", b"p" * 50)
    objects.put("datasets/d1/files/.hidden.png", b"h" * 7)
    objects.put("datasets/.staging-d2/dataset.json", b'{"owner": "c"}')  # being written
    record = json.dumps({"owner": "b", "last_version": 1}).encode()
    objects.put("models/m1/model.json", record)
    objects.put("models/m1/versions/1/model.safetensors", b"w" * 40)
    card = json.dumps({"family": "pix2pix", "provenance": {"owner": "d"}}).encode()
    objects.put("models/flat/config.json", card)  # a folder copied in: its card's owner
    objects.put("models/flat/model.safetensors", b"f" * 60)
    objects.put("models/no-owner/config.json", b"{}")
    objects.put("models/no-owner/model.safetensors", b"n" * 9)
    objects.put("models/broken/model.json", b'{"owner": NaN}')  # refused, as the registry does
    objects.put("models/.m2.abcd1234/model.json", b'{"owner": "b"}')  # nobody's

    assert known_owners(backend, store) == ["a", "b", "c", "d"]
    lines = {u.owner: u for u in usage_of(["a", "b", "c", "d", "nobody"], backend, store)}
    assert lines["a"].jobs["succeeded"] == 1
    assert lines["a"].bytes.model_dump() == {
        "results": 15,
        "uploads": 0,
        "runs": 33,
        "datasets": 0,
        "models": 0,
    }
    assert lines["b"].jobs["queued"] == 1 and lines["b"].bytes.uploads == 20
    assert lines["b"].bytes.models == len(record) + 40
    assert lines["c"].bytes.datasets == len(objects.read("datasets/d1/dataset.json")) + 57
    assert lines["d"].bytes.models == len(card) + 60
    assert lines["nobody"].bytes == OwnerUsage(owner="nobody").bytes
