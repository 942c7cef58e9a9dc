"""Models as resources, end to end: import, ownership, rename, delete, export, fine-tune.

A real stack (embedded Redis, real Celery workers, the gateway over HTTP) with three API keys:
the operator's (the first) and two users'.
"""

import dataclasses
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image

import models
from models.pix2pix.translation import translate
from tests.e2e.stack import (
    png,
    running_stack,
    save_with_discriminator,
    version_folder,
    zip_folder,
)
from tests.e2e.stack import wait_job as wait_keyed_job
from tests.models.pix2pix.reference_nets import NLayerDiscriminator, UnetGenerator
from training.demo import build_demo

KEYS = {"operator": "op-key-1", "alice": "alice-key-1", "bob": "bob-key-1"}


def auth(who: str) -> dict:
    return {"Authorization": f"Bearer {KEYS[who]}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("lifecycle")
    torch.manual_seed(0)
    save_with_discriminator(  # operator-installed: no owner, shared with every key
        data_dir / "models" / "shared-p2p",
        models.create("pix2pix-generator", image_size=32, base_width=4, norm="instance"),
        models.create("pix2pix-discriminator", base_width=4, norm="instance"),
    )
    env = {"GANSERVE_API_KEYS": ",".join(KEYS.values())}
    with running_stack(data_dir, **env) as (client, _stack):
        yield client, data_dir


def reference_checkpoint(tmp_path: Path) -> tuple[bytes, bytes, UnetGenerator]:
    """A reference-layout G (5 downsamplings: 32 px) and 70x70 D, as `torch.save` wrote them."""
    torch.manual_seed(3)
    generator = UnetGenerator(3, 3, 5, 4, norm="batch", use_dropout=True)
    discriminator = NLayerDiscriminator(6, 4, 3, norm="batch")
    files = []
    for net, name in ((generator, "latest_net_G.pth"), (discriminator, "latest_net_D.pth")):
        torch.save(net.state_dict(), tmp_path / name)
        files.append((tmp_path / name).read_bytes())
    return files[0], files[1], generator


def wait_job(client, job_id: str, who: str = "alice", timeout: float = 300.0) -> dict:
    return wait_keyed_job(client, job_id, timeout, key=KEYS[who])


def import_file(client, who, content, filename="latest_net_G.pth", **form):
    files = {"file": (filename, content, "application/octet-stream")}
    if "discriminator" in form:
        files["discriminator"] = ("latest_net_D.pth", form.pop("discriminator"), "application/x")
    return client.post("/v1/models", files=files, data=form, headers=auth(who))


def imported(client, who, content, **form) -> dict:
    response = import_file(client, who, content, **form)
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["id"], who)
    assert job["kind"] == "model_import"
    return job


def model_ids(client, who) -> set[str]:
    return {m["id"] for m in client.get("/v1/models", headers=auth(who)).json()["models"]}


def test_reference_checkpoint_imports_translates_and_belongs_to_its_key(stack, tmp_path):
    client, data_dir = stack
    g_bytes, d_bytes, _ = reference_checkpoint(tmp_path)
    job = imported(client, "alice", g_bytes, discriminator=d_bytes, id="alice-facades")
    assert job["status"] == "succeeded", job
    assert job["result"]["model"] == "alice-facades"
    assert job["result"]["version"] == 1 and job["result"]["model_ref"] == "alice-facades@1"
    assert job["result"]["discriminator"] is True
    folder = version_folder(data_dir / "models", "alice-facades")
    assert folder.name == "1" and (folder / "model.safetensors").is_file()
    # alice sees it (and the shared model), bob does not, the operator does
    assert {"alice-facades", "shared-p2p"} <= model_ids(client, "alice")
    assert "alice-facades" not in model_ids(client, "bob")
    assert "alice-facades" in model_ids(client, "operator")
    assert client.get("/v1/models/alice-facades", headers=auth("bob")).status_code == 404
    info = client.get("/v1/models/alice-facades", headers=auth("alice")).json()
    assert info["shared"] is False and info["discriminator"] is True
    # it serves: a translation and a realness map
    response = client.post(
        "/v1/translations",
        files={"image": ("in.png", png(40, 24), "image/png")},
        data={"model": "alice-facades", "seed": "1"},
        headers=auth("alice"),
    )
    assert response.status_code == 202, response.text
    done = wait_job(client, response.json()["id"])
    assert done["status"] == "succeeded", done
    picture = client.get(done["result"]["images"][0], headers=auth("alice"))
    assert Image.open(io.BytesIO(picture.content)).size == (40, 24)
    bobs = client.post(
        "/v1/translations",
        files={"image": ("in.png", png(32, 32), "image/png")},
        data={"model": "alice-facades"},
        headers=auth("bob"),
    )
    assert bobs.status_code == 404


class WritesAFile:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (self.target, "pwned"))


def test_a_malicious_pickle_is_refused_without_running(stack, tmp_path):
    client, data_dir = stack
    target = tmp_path / "pwned.txt"
    payload = tmp_path / "evil_net_G.pth"
    torch.save({"model.model.0.weight": WritesAFile(target)}, payload)
    before = sorted(p.name for p in (data_dir / "models").iterdir())
    job = imported(client, "alice", payload.read_bytes(), filename="evil_net_G.pth")
    assert job["status"] == "failed"
    assert job["error"]["code"] == "unsafe_checkpoint", job["error"]
    assert not target.exists()
    assert sorted(p.name for p in (data_dir / "models").iterdir()) == before
    bare = pickle.dumps(WritesAFile(target))  # an old-format (bare pickle) file
    job = imported(client, "alice", bare, filename="old_net_G.pth")
    assert job["error"]["code"] == "unsafe_checkpoint", job["error"]
    assert not target.exists()


def test_bad_uploads_get_their_4xx_and_store_nothing(stack, tmp_path):
    client, data_dir = stack
    before = sorted(p.name for p in (data_dir / "models").iterdir())
    not_a_zip = import_file(client, "alice", b"hello, this is text", filename="notes.txt")
    assert not_a_zip.status_code == 422
    assert not_a_zip.json()["code"] == "not_a_model"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photos/cat.png", png(8, 8))
    no_model = import_file(client, "alice", buffer.getvalue(), filename="photos.zip")
    assert no_model.status_code == 422 and "config.json" in no_model.json()["detail"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("m/config.json", '{"family": "pix2pix"}')
        archive.writestr("m/model.safetensors", b"x")
    bad_card = import_file(client, "alice", buffer.getvalue(), filename="m.zip")
    assert bad_card.status_code == 422 and "lacks" in bad_card.json()["detail"]
    g_bytes, _, _ = reference_checkpoint(tmp_path)
    taken = import_file(client, "alice", g_bytes, id="shared-p2p")
    assert taken.status_code == 409 and taken.json()["code"] == "model_exists"
    bad_id = import_file(client, "alice", g_bytes, id="../escape")
    assert bad_id.status_code == 422
    # a .pth of another architecture: a job that fails, naming what it is
    resnet = {
        "model.1.weight": torch.zeros(4, 3, 7, 7),
        "model.10.conv_block.1.weight": torch.zeros(16, 16, 3, 3),
    }
    torch.save(resnet, tmp_path / "resnet_net_G.pth")
    job = imported(client, "alice", (tmp_path / "resnet_net_G.pth").read_bytes())
    assert job["status"] == "failed" and job["error"]["code"] == "unsupported_checkpoint"
    assert "resnet" in job["error"]["message"]
    # a zip whose weights do not fit its card: refused by the worker
    folder = data_dir / "models" / "shared-p2p"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("m/config.json", (folder / "config.json").read_text())
        archive.writestr("m/model.safetensors", b"\x00" * 64)
    job = imported(client, "alice", buffer.getvalue(), filename="m.zip")
    assert job["status"] == "failed" and job["error"]["code"] == "not_a_model", job["error"]
    assert sorted(p.name for p in (data_dir / "models").iterdir()) == before


def test_rename_and_delete_follow_ownership(stack, tmp_path):
    client, data_dir = stack
    g_bytes, _, _ = reference_checkpoint(tmp_path)
    job = imported(client, "bob", g_bytes, name="Bob's facades")
    assert job["status"] == "succeeded", job
    model_id = job["result"]["model"]
    assert model_id.startswith("Bob-s-facades")
    patched = client.patch(
        f"/v1/models/{model_id}", json={"description": "night photos"}, headers=auth("bob")
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Bob's facades"
    assert patched.json()["description"] == "night photos"
    empty = client.patch(f"/v1/models/{model_id}", json={}, headers=auth("bob"))
    assert empty.status_code == 422
    shared = client.patch("/v1/models/shared-p2p", json={"name": "x"}, headers=auth("bob"))
    assert shared.status_code == 403 and shared.json()["code"] == "not_owner"
    assert client.delete("/v1/models/shared-p2p", headers=auth("bob")).status_code == 403
    assert client.delete(f"/v1/models/{model_id}", headers=auth("alice")).status_code == 404
    assert (data_dir / "models" / model_id).is_dir()  # nothing changed by the refusals
    assert client.get("/v1/models/shared-p2p", headers=auth("bob")).json()["name"] == "shared-p2p"
    assert client.delete(f"/v1/models/{model_id}", headers=auth("bob")).status_code == 204
    assert client.get(f"/v1/models/{model_id}", headers=auth("bob")).status_code == 404
    assert not list((data_dir / "models" / model_id).glob("versions/*"))  # a tombstone
    late = client.post(
        "/v1/translations",
        files={"image": ("in.png", png(32, 32), "image/png")},
        data={"model": model_id},
        headers=auth("bob"),
    )
    assert late.status_code == 404


def test_export_round_trip_and_onnx(stack, tmp_path):
    client, data_dir = stack
    exported = client.get("/v1/models/shared-p2p/exports/safetensors", headers=auth("alice"))
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(exported.content)).namelist()
    assert sorted(names) == [
        "shared-p2p/config.json",
        "shared-p2p/discriminator.safetensors",
        "shared-p2p/model.safetensors",
    ]
    job = imported(client, "alice", exported.content, filename="shared-p2p.zip", id="copy")
    assert job["status"] == "succeeded", job
    assert job["result"]["discriminator"] is True
    outputs = []
    for model_id in ("shared-p2p", "copy"):
        response = client.post(
            "/v1/translations",
            files={"image": ("in.png", png(32, 32, seed=4), "image/png")},
            data={"model": model_id, "seed": "5"},
            headers=auth("alice"),
        )
        done = wait_job(client, response.json()["id"])
        outputs.append(client.get(done["result"]["images"][0], headers=auth("alice")).content)
    assert outputs[0] == outputs[1]  # the same network, bit for bit

    made = client.post(
        "/v1/models/copy/exports",
        params={"wait": 30},
        json={"format": "onnx"},
        headers=auth("alice"),
    )
    if made.status_code == 202:  # slower than the wait: follow the job
        wait_job(client, made.json()["job"]["id"], "alice")
    else:
        assert made.status_code == 201, made.text
    first = client.get(made.json()["url"], headers=auth("alice"))
    assert first.status_code == 200, first.text
    (tmp_path / "copy.onnx").write_bytes(first.content)
    again = client.post("/v1/models/copy/exports", json={"format": "onnx"}, headers=auth("alice"))
    assert again.status_code == 201 and again.json()["status"] == "ready"  # made once
    cached = client.get("/v1/models/copy/exports/onnx", headers=auth("alice"))
    assert cached.status_code == 200 and cached.content == first.content
    exports = client.get("/v1/jobs", params={"kind": "model_export"}, headers=auth("alice"))
    assert len(exports.json()["jobs"]) == 1
    session = onnxruntime.InferenceSession(str(tmp_path / "copy.onnx"))
    x = torch.rand(2, 3, 64, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    (got,) = session.run(None, {"image": x.numpy()})
    served = models.load(version_folder(data_dir / "models", "copy"))
    fields = {**dataclasses.asdict(served.config), "dropout": 0.0}  # the graph's dropout: off
    network = models.create("pix2pix-generator", **fields)
    network.load_state_dict(served.state_dict())
    expected = torch.cat([translate(network, x[i : i + 1], seed=0) for i in range(2)])
    assert got.shape == (2, 3, 64, 32)
    assert np.abs(got - expected.numpy()).max() <= 1e-4
    wrong = client.post("/v1/models/copy/exports", json={"format": "tar"}, headers=auth("alice"))
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "format"


def test_fine_tune_starts_from_the_model(stack, tmp_path):
    client, data_dir = stack
    folder = build_demo("labels2photo", tmp_path / "pairs", count=12, size=32)
    response = client.post(
        "/v1/datasets",
        files={"archive": ("pairs.zip", zip_folder(folder), "application/zip")},
        data={"kind": "paired"},
        headers=auth("alice"),
    )
    assert response.status_code == 201, response.text
    dataset = response.json()["id"]
    mismatch = client.post(
        "/v1/training-runs",
        json={
            "family": "pix2pix",
            "dataset": dataset,
            "init_from": "shared-p2p",
            "config": {"width": 8, "norm": "batch", "steps": 2},
        },
        headers=auth("alice"),
    )
    assert mismatch.status_code == 422
    error = mismatch.json()
    assert error["code"] == "init_mismatch"
    assert "width (8 here, 4 in the model)" in error["detail"]
    assert "norm ('batch' here, 'instance' in the model)" in error["detail"]
    wrong_family = client.post(
        "/v1/training-runs",
        json={"family": "unetgan", "dataset": dataset, "init_from": "shared-p2p"},
        headers=auth("alice"),
    )
    assert wrong_family.status_code == 422
    response = client.post(
        "/v1/training-runs",
        json={
            "family": "pix2pix",
            "dataset": dataset,
            "init_from": "shared-p2p",
            "name": "tuned",
            "config": {"steps": 3, "batch_size": 2, "sample_every": 3, "checkpoint_every": 3},
        },
        headers=auth("alice"),
    )
    assert response.status_code == 202, response.text
    assert response.json()["params"]["config"]["width"] == 4  # taken from the model
    job = wait_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    card = models.read_card(version_folder(data_dir / "models", job["result"]["model"]))
    assert card.provenance["init_from"] == "shared-p2p@1"  # the version pinned at submission
    assert job["model"] == "shared-p2p@1" and job["model_digest"].startswith("sha256:")
    assert card.config == models.read_card(data_dir / "models" / "shared-p2p").config
