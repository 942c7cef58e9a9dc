"""Models in an S3 store, end to end: the real stack (gateway, Celery workers, embedded Redis)
with `GANSERVE_STORAGE_URL` on a real S3 server (SeaweedFS). A model imported through the API is
stored as objects, serves translations from the worker's digest-keyed download, exports (zip and
ONNX) are stored and streamed back, and deleting it removes its objects from the store."""

import io
import zipfile

import pytest
import torch
from PIL import Image

import models
from core.object_store import ObjectStore
from tests.e2e.stack import png, running_stack, save_with_discriminator, wait_job, zip_folder

MODEL = "s3-p2p"


@pytest.fixture
def stack(tmp_path, s3_server, s3_url):
    """A stack on the S3 prefix `s3_url`; the HTTP client, the data directory, the store."""
    data_dir = tmp_path / "data"
    env = {"GANSERVE_STORAGE_URL": s3_url, **s3_server.environment()}
    with running_stack(data_dir, **env) as (client, _stack):
        yield client, data_dir, ObjectStore.open(s3_url, tmp_path / "probe")


def keys(objects: ObjectStore, prefix: str) -> list[str]:
    return [info.key for info in objects.list(prefix)]


def translate(client) -> bytes:
    response = client.post(
        "/v1/translations",
        files={"image": ("in.png", png(32, 32, seed=4), "image/png")},
        data={"model": MODEL, "seed": "5"},
    )
    assert response.status_code == 202, response.text
    done = wait_job(client, response.json()["id"])
    assert done["status"] == "succeeded", done
    return client.get(done["result"]["images"][0]).content


def test_a_model_imported_served_exported_and_deleted_on_s3(stack, tmp_path):
    client, data_dir, objects = stack
    torch.manual_seed(0)
    folder = tmp_path / "upload" / MODEL
    save_with_discriminator(
        folder,
        models.create("pix2pix-generator", image_size=32, base_width=4),
        models.create("pix2pix-discriminator", base_width=4),
    )
    response = client.post(
        "/v1/models",
        files={"file": (f"{MODEL}.zip", zip_folder(folder.parent), "application/zip")},
        data={"id": MODEL},
    )
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["model_ref"] == f"{MODEL}@1"
    stored = keys(objects, f"models/{MODEL}")
    assert stored == [
        f"models/{MODEL}/model.json",
        *(
            f"models/{MODEL}/versions/1/{name}"
            for name in (
                "config.json",
                "discriminator.safetensors",
                "model.safetensors",
                "version.json",
            )
        ),
    ]
    assert not (data_dir / "models" / MODEL).exists()  # in the store, not in the data folder
    weights = objects.read(f"models/{MODEL}/versions/1/model.safetensors")
    assert weights == (folder / "model.safetensors").read_bytes()

    info = client.get(f"/v1/models/{MODEL}").json()
    assert info["discriminator"] is True and info["digest"] == job["result"]["model_digest"]
    first = translate(client)
    assert translate(client) == first  # the same network, downloaded once
    assert Image.open(io.BytesIO(first)).size == (32, 32)
    cached = [p for p in (data_dir / "cache" / "models").iterdir() if not p.name.startswith(".")]
    assert len(cached) == 1 and (cached[0] / "model.safetensors").read_bytes() == weights

    exported = client.get(f"/v1/models/{MODEL}/exports/safetensors")
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(exported.content))
    assert archive.read(f"{MODEL}/model.safetensors") == weights
    made = client.post(f"/v1/models/{MODEL}/exports", params={"wait": 30}, json={"format": "onnx"})
    if made.status_code == 202:  # slower than the wait: follow the job
        wait_job(client, made.json()["job"]["id"])
    else:
        assert made.status_code == 201, made.text
    onnx = client.get(made.json()["url"])
    assert onnx.status_code == 200 and int(onnx.headers["content-length"]) == len(onnx.content)
    exports = keys(objects, f"exports/{MODEL}")
    assert [k.rsplit(".", 1)[-1] for k in exports] == ["onnx", "json", "zip"]
    assert objects.read(next(k for k in exports if k.endswith(".onnx"))) == onnx.content

    assert client.delete(f"/v1/models/{MODEL}").status_code == 204
    assert keys(objects, f"models/{MODEL}") == [f"models/{MODEL}/model.json"]  # the tombstone
    assert keys(objects, f"exports/{MODEL}") == []
    assert client.get(f"/v1/models/{MODEL}").status_code == 404
    late = client.post(
        "/v1/translations",
        files={"image": ("in.png", png(32, 32), "image/png")},
        data={"model": MODEL},
    )
    assert late.status_code == 404
