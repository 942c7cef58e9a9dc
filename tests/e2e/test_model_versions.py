"""Models as owned, immutable versions, end to end, tried as a hostile second key would.

A real stack (embedded Redis, real Celery workers, the gateway over HTTP) with three keys: two
owners (alice, bob) and an operator. A worker is frozen (SIGSTOP) to keep jobs queued while the
models they pinned are deleted and registered again, then thawed (SIGCONT).
"""

import io
import json
import os
import signal
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import models
from core.model_registry import ModelRegistry
from core.storage import Storage
from tests.e2e.stack import png, running_stack, version_folder, zip_folder
from tests.e2e.stack import wait_job as wait_keyed_job
from training.demo import build_demo

KEYS = {"alice": "alice-key-1", "bob": "bob-key-1", "operator": "op-key-1"}


def auth(who: str) -> dict:
    return {"Authorization": f"Bearer {KEYS[who]}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("versions")
    env = {
        "GANSERVE_API_KEYS": f"{KEYS['alice']},{KEYS['bob']}",
        "GANSERVE_OPERATOR_KEYS": KEYS["operator"],
        "GANSERVE_MODEL_VERSIONS_KEPT": "2",
    }
    with running_stack(data_dir, **env) as (client, processes):
        yield client, data_dir, processes


@contextmanager
def frozen(processes, name: str):
    """A worker (its whole process group) stopped while the block runs, so its jobs wait."""
    group = processes.processes[name].pid
    os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(group, signal.SIGCONT)


def wait_job(client, job_id: str, who: str = "alice", timeout: float = 300.0) -> dict:
    return wait_keyed_job(client, job_id, timeout, key=KEYS[who])


def model_zip(seed: int, *, classes: int = 3) -> bytes:
    """A tiny U-Net GAN generator (random weights from `seed`) as a model zip."""
    torch.manual_seed(seed)
    generator = models.create(
        "unetgan-generator", image_size=32, width=4, latent_dim=8, num_classes=classes
    )
    folder = Path(f"/tmp/ganserve-versions-{os.getpid()}-{seed}-{classes}")
    models.save(generator, folder)
    return zip_folder(folder)


def import_zip(client, who: str, content: bytes, **form) -> dict:
    response = client.post(
        "/v1/models",
        files={"file": ("m.zip", content, "application/zip")},
        data=form,
        headers=auth(who),
    )
    assert response.status_code == 202, response.text
    return wait_job(client, response.json()["id"], who)


def sample(client, who: str, model: str, **body) -> dict:
    response = client.post(
        "/v1/samples", json={"model": model, "count": 1, "seed": 1, **body}, headers=auth(who)
    )
    assert response.status_code == 202, response.text
    return response.json()


def image_bytes(client, who: str, job: dict) -> bytes:
    return client.get(job["result"]["images"][0], headers=auth(who)).content


def test_versions_are_listed_pinned_and_recorded(stack):
    client, _, _ = stack
    first = import_zip(client, "alice", model_zip(1), id="alice-gan")
    assert first["status"] == "succeeded", first
    assert first["result"]["model_ref"] == "alice-gan@1"
    second = import_zip(client, "alice", model_zip(2), id="alice-gan")  # her id: a new version
    assert second["result"]["model_ref"] == "alice-gan@2"
    info = client.get("/v1/models/alice-gan", headers=auth("alice")).json()
    assert info["version"] == 2 and info["ref"] == "alice-gan@2"
    assert [v["ref"] for v in info["versions"]] == ["alice-gan@1", "alice-gan@2"]
    assert info["versions"][0]["digest"] != info["versions"][1]["digest"]
    assert info["versions"][1]["source"] == "import"
    old = client.get("/v1/models/alice-gan@1", headers=auth("alice")).json()
    assert old["version"] == 1 and old["digest"] == info["versions"][0]["digest"]
    # a job pins the exact version and digest at submission and records them
    newest = wait_job(client, sample(client, "alice", "alice-gan")["id"], "alice")
    pinned = wait_job(client, sample(client, "alice", "alice-gan@1")["id"], "alice")
    assert newest["model"] == "alice-gan@2" and newest["model_digest"] == info["digest"]
    assert pinned["model"] == "alice-gan@1" and pinned["model_digest"] == old["digest"]
    assert image_bytes(client, "alice", newest) != image_bytes(client, "alice", pinned)
    for missing in ("alice-gan@9", "alice-gan@0", "alice-gan@x", "alice-gan@1@2"):
        response = client.get(f"/v1/models/{missing}", headers=auth("alice"))
        assert response.status_code == 404, missing
        assert response.json()["code"] == "model_not_found"
    # retention (2 kept here): a third version removes the first
    import_zip(client, "alice", model_zip(3), id="alice-gan")
    refs = [
        v["ref"]
        for v in client.get("/v1/models/alice-gan", headers=auth("alice")).json()["versions"]
    ]
    assert refs == ["alice-gan@2", "alice-gan@3"]


def test_another_key_can_neither_see_change_run_nor_take_an_id(stack):
    client, data_dir, _ = stack
    job = import_zip(client, "alice", model_zip(4), id="alice-private")
    assert job["status"] == "succeeded", job
    digest = client.get("/v1/models/alice-private", headers=auth("alice")).json()["digest"]
    for method, path, kwargs in (
        ("GET", "/v1/models/alice-private", {}),
        ("GET", "/v1/models/alice-private@1", {}),
        ("PATCH", "/v1/models/alice-private", {"json": {"name": "mine now"}}),
        ("DELETE", "/v1/models/alice-private", {}),
        ("DELETE", "/v1/models/alice-private@1", {}),
        ("GET", "/v1/models/alice-private/export", {}),
        ("GET", "/v1/models/alice-private/exports/safetensors", {}),
        ("POST", "/v1/models/alice-private@1/exports", {"json": {"format": "onnx"}}),
        ("POST", "/v1/samples", {"json": {"model": "alice-private@1", "count": 1}}),
        (
            "POST",
            "/v1/interpolations",
            {"json": {"model": "alice-private", "start": {"seed": 1}, "end": {"seed": 2}}},
        ),
    ):
        response = client.request(method, path, headers=auth("bob"), **kwargs)
        assert response.status_code == 404, (method, path, response.text)
    # bob cannot take the id: not by import, not by a training run's name
    taken = client.post(
        "/v1/models",
        files={"file": ("m.zip", model_zip(5), "application/zip")},
        data={"id": "alice-private"},
        headers=auth("bob"),
    )
    assert taken.status_code == 409 and taken.json()["code"] == "model_exists"
    dataset = upload_digits(client, "bob", data_dir)
    run = train(client, "bob", dataset, name="alice-private")
    assert run["status"] == "succeeded", run
    assert run["result"]["model"].startswith("alice-private-")  # not alice's id
    after = client.get("/v1/models/alice-private", headers=auth("alice")).json()
    assert after["digest"] == digest and after["version"] == 1
    assert (
        ModelRegistry.of(Storage(data_dir)).record("alice-private").owner
        != ModelRegistry.of(Storage(data_dir)).record(run["result"]["model"]).owner
    )
    # the operator sees and manages it
    assert client.get("/v1/models/alice-private", headers=auth("operator")).status_code == 200


def upload_digits(client, who: str, data_dir: Path) -> str:
    folder = build_demo("digits", data_dir.parent / f"digits-{who}", count=12, size=32)
    response = client.post(
        "/v1/datasets",
        files={"archive": ("d.zip", zip_folder(folder), "application/zip")},
        data={"kind": "labeled"},
        headers=auth(who),
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


TINY_RUN = {
    "steps": 2,
    "batch_size": 4,
    "image_size": 32,
    "width": 4,
    "latent_dim": 8,
    "sample_every": 2,
    "checkpoint_every": 2,
    "metrics_images": 16,
}


def train(client, who: str, dataset: str, *, wait: bool = True, **body) -> dict:
    response = client.post(
        "/v1/training-runs",
        json={"family": "unetgan", "dataset": dataset, "config": TINY_RUN, **body},
        headers=auth(who),
    )
    assert response.status_code == 202, response.text
    return wait_job(client, response.json()["id"], who) if wait else response.json()


def test_a_run_named_after_a_taken_id_registers_its_own(stack):
    """A run that starts with a name another key claimed meanwhile registers under its own id."""
    client, data_dir, processes = stack
    dataset = upload_digits(client, "alice", data_dir)
    with frozen(processes, "worker-train"):
        queued = train(client, "alice", dataset, name="contested", wait=False)
        taken = import_zip(client, "bob", model_zip(6), id="contested")  # bob is first
        assert taken["status"] == "succeeded", taken
    bobs = client.get("/v1/models/contested", headers=auth("bob")).json()
    run = wait_job(client, queued["id"], "alice")
    assert run["status"] == "succeeded", run
    assert run["result"]["model"] == f"contested-{queued['id'][:8]}"
    assert client.get("/v1/models/contested", headers=auth("bob")).json() == bobs
    assert client.get("/v1/models/contested", headers=auth("alice")).status_code == 404


def test_queued_jobs_run_on_the_pinned_version_or_fail(stack):
    """A queued sample and a queued fine-tune whose model is deleted and registered again fail
    `model_not_found`; another key cannot re-create the id at all."""
    client, data_dir, processes = stack
    dataset = upload_digits(client, "alice", data_dir)
    classes = len(client.get(f"/v1/datasets/{dataset}", headers=auth("alice")).json()["classes"])
    volatile = model_zip(7, classes=classes)
    assert import_zip(client, "alice", volatile, id="volatile")["status"] == "succeeded"
    with frozen(processes, "worker-infer"), frozen(processes, "worker-train"):
        queued_sample = sample(client, "alice", "volatile")
        queued_tune = train(
            client,
            "alice",
            dataset,
            wait=False,
            init_from="volatile",
            config={"steps": 2, "batch_size": 4, "sample_every": 2, "checkpoint_every": 2},
        )
        assert queued_sample["model"] == queued_tune["model"] == "volatile@1"
        assert client.delete("/v1/models/volatile", headers=auth("alice")).status_code == 204
        stolen = client.post(
            "/v1/models",
            files={"file": ("m.zip", model_zip(8), "application/zip")},
            data={"id": "volatile"},
            headers=auth("bob"),
        )
        assert stolen.status_code == 409  # a deleted id stays its owner's
    again = import_zip(client, "alice", model_zip(9, classes=classes), id="volatile")
    assert again["result"]["model_ref"] == "volatile@2"  # numbers are never given again
    for job, who in ((queued_sample, "alice"), (queued_tune, "alice")):
        ended = wait_job(client, job["id"], who)
        assert ended["status"] == "failed", ended
        assert ended["error"]["code"] == "model_not_found", ended["error"]
    fresh = wait_job(client, sample(client, "alice", "volatile")["id"], "alice")
    assert fresh["status"] == "succeeded" and fresh["model"] == "volatile@2"


def test_an_export_of_a_version_deleted_meanwhile_fails_cleanly(stack):
    client, _, processes = stack
    assert import_zip(client, "alice", model_zip(10), id="to-export")["status"] == "succeeded"
    import_zip(client, "alice", model_zip(11), id="to-export")
    with frozen(processes, "worker-infer"):
        queued = client.post(
            "/v1/models/to-export@1/exports", json={"format": "onnx"}, headers=auth("alice")
        )
        assert queued.status_code == 202, queued.text
        assert queued.json()["model"] == queued.json()["job"]["model"] == "to-export@1"
        gone = client.delete("/v1/models/to-export@1", headers=auth("alice"))
        assert gone.status_code == 204
    ended = wait_job(client, queued.json()["job"]["id"], "alice")
    assert ended["status"] == "failed" and ended["error"]["code"] == "model_not_found"
    again = client.get("/v1/models/to-export@1/exports/safetensors", headers=auth("alice"))
    assert again.status_code == 404
    newest = client.get("/v1/models/to-export/exports/safetensors", headers=auth("alice"))
    assert newest.status_code == 200  # the other version is untouched
    names = zipfile.ZipFile(io.BytesIO(newest.content)).namelist()
    assert "to-export/model.safetensors" in names


def test_a_delete_during_a_projection_never_switches_weights(stack):
    client, _, _ = stack
    assert import_zip(client, "alice", model_zip(12), id="projected")["status"] == "succeeded"
    response = client.post(
        "/v1/projections",
        files={"image": ("t.png", png(32, 32), "image/png")},
        data={"model": "projected", "steps": "400", "seed": "1"},
        headers=auth("alice"),
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 120
    while client.get(f"/v1/jobs/{job_id}", headers=auth("alice")).json()["status"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert client.delete("/v1/models/projected", headers=auth("alice")).status_code == 204
    ended = wait_job(client, job_id, "alice")
    # it either finished on the weights it had loaded, or failed: never on other weights
    assert ended["status"] in ("succeeded", "failed"), ended
    if ended["status"] == "failed":
        assert ended["error"]["code"] == "model_not_found", ended["error"]
    assert ended["model"] == "projected@1"
    after = wait_job(client, sample(client, "alice", "alice-gan")["id"], "alice")
    assert after["status"] == "succeeded"  # the worker goes on serving


def test_a_card_that_lies_or_overflows_is_refused(stack, tmp_path):
    client, data_dir, _ = stack
    torch.manual_seed(0)
    generator = models.create(
        "unetgan-generator", image_size=32, width=4, latent_dim=8, num_classes=3
    )
    folder = tmp_path / "m"
    models.save(generator, folder)
    card = json.loads((folder / "config.json").read_text())

    def with_card(**changes) -> bytes:
        (folder / "config.json").write_text(json.dumps({**card, **changes}))
        return zip_folder(folder)

    before = sorted(p.name for p in (data_dir / "models").iterdir())
    lies = {
        "image_size": 64,  # the weights are a 32 px network
        "num_classes": 10,
        "family": "pggan",
        "task": "translate",
        "config": {**card["config"], "width": 64},  # tensors of another size
        "architecture": "unetgan-discriminator",
    }
    for field, value in lies.items():
        response = client.post(
            "/v1/models",
            files={"file": ("m.zip", with_card(**{field: value}), "application/zip")},
            headers=auth("alice"),
        )
        if response.status_code == 202:
            job = wait_job(client, response.json()["id"], "alice")
            assert job["status"] == "failed" and job["error"]["code"] == "not_a_model", field
        else:
            assert response.status_code == 422, (field, response.text)
    huge = {"config": {**card["config"], "width": 10**9}, "image_size": 10**9}
    for field, value in huge.items():
        response = client.post(
            "/v1/models",
            files={"file": ("m.zip", with_card(**{field: value}), "application/zip")},
            headers=auth("alice"),
        )
        assert response.status_code == 422, (field, response.text)
        assert response.json()["code"] == "not_a_model"
    nan = json.dumps({**card, "metrics": {"swd": 1.0}}).replace("1.0", "NaN")
    (folder / "config.json").write_text(nan)
    response = client.post(
        "/v1/models",
        files={"file": ("m.zip", zip_folder(folder), "application/zip")},
        headers=auth("alice"),
    )
    assert response.status_code == 422 and "finite" in response.json()["detail"]
    assert sorted(p.name for p in (data_dir / "models").iterdir()) == before


def test_a_broken_folder_never_breaks_the_catalog_and_can_be_deleted(stack):
    client, data_dir, _ = stack
    assert import_zip(client, "bob", model_zip(13), id="bob-broken")["status"] == "succeeded"
    folder = version_folder(data_dir / "models", "bob-broken")
    card = json.loads((folder / "config.json").read_text())
    broken = json.dumps({**card, "metrics": {"x": 1.5}}).replace("1.5", "NaN")
    (folder / "config.json").write_text(broken)
    for who in KEYS:
        listing = client.get("/v1/models", headers=auth(who))
        assert listing.status_code == 200, listing.text
        assert "bob-broken" not in {m["id"] for m in listing.json()["models"]}
    assert client.delete("/v1/models/bob-broken", headers=auth("alice")).status_code == 404
    assert client.delete("/v1/models/bob-broken", headers=auth("bob")).status_code == 204
    assert ModelRegistry.of(Storage(data_dir)).versions("bob-broken") == []
