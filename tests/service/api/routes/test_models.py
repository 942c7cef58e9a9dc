"""/v1/models: list, one, rename, delete, export as a zip, import refusals, ownership."""

import io
import json
import zipfile
from pathlib import Path

from core.jobs import Job, JobKind, JobStatus
from core.model_registry import ModelRegistry
from core.storage import Storage
from service.security import owner_of_key
from tests.service.conftest import KEYS
from tests.service.factories import TEST_MODELS, expect_error, write_model_folder, zip_bytes


def test_list_models(client, gateway):
    # a folder without weights, a hidden one and one with broken JSON are not models
    (gateway.data_dir / "models" / "half-written").mkdir(exist_ok=True)
    (gateway.data_dir / "models" / "half-written" / "config.json").write_text("{}")
    broken = gateway.data_dir / "models" / "broken"
    broken.mkdir(exist_ok=True)
    (broken / "config.json").write_text("{not json")
    (broken / "model.safetensors").write_bytes(b"x")

    response = client.get("/v1/models")
    assert response.status_code == 200
    models = {m["id"]: m for m in response.json()["models"]}
    assert set(models) == set(TEST_MODELS)
    digits = models["digits"]
    assert digits["family"] == "unetgan"
    assert digits["task"] == "sample"
    assert digits["classes"] == [str(k) for k in range(10)]  # no names recorded: the labels
    assert digits["class_count"] == 10
    assert digits["image_size"] == 64
    assert digits["channels"] == 3
    assert digits["metrics"] == {"fid": 42.0}
    assert digits["run"] == "run-digits"
    assert digits["architecture"] == "unetgan-generator"
    assert digits["created_at"].endswith("Z")


def test_get_model(client):
    response = client.get("/v1/models/facades")
    assert response.status_code == 200
    assert response.json()["task"] == "translate"


def test_unknown_model_is_404(client):
    for model_id in ("nope", ".hidden", "half-written"):
        response = client.get(f"/v1/models/{model_id}")
        assert response.status_code == 404, model_id
        assert response.json()["code"] == "model_not_found"


def test_examples_are_the_held_out_inputs_of_the_models_dataset(client, gateway, tmp_path):
    """The page's one-click examples: the input half of each val pair, as PNG."""
    import io
    import json

    from PIL import Image

    from tests.service.factories import write_model_folder
    from training.demo import build_demo

    data = build_demo(
        "grey2colour", gateway.data_dir / "datasets" / "ds-examples", size=16, count=30
    )
    assert len(list((data / "val").iterdir())) == 2
    folder = write_model_folder(
        gateway.data_dir / "models",
        "colouriser",
        architecture="pix2pix-generator",
        family="pix2pix",
        task="translate",
    )
    card = json.loads((folder / "config.json").read_text())
    card["provenance"] |= {"dataset": "ds-examples", "training": {"direction": "AtoB"}}
    (folder / "config.json").write_text(json.dumps(card))
    try:
        info = client.get("/v1/models/colouriser").json()
        assert info["dataset"] == "ds-examples" and info["examples"] == 2
        urls = client.get("/v1/models/colouriser/examples").json()["examples"]
        assert urls == ["/v1/models/colouriser/examples/0", "/v1/models/colouriser/examples/1"]
        response = client.get(urls[1])
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(response.content))
        val = sorted((data / "val").iterdir())[1]
        expected = Image.open(val).crop((0, 0, 16, 16))
        assert image.size == (16, 16) and image.tobytes() == expected.convert(image.mode).tobytes()
        missing = client.get("/v1/models/colouriser/examples/2")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert client.get("/v1/models/nope/examples").status_code == 404
        assert client.get("/v1/models/facades/examples").json() == {"examples": []}
    finally:
        import shutil

        shutil.rmtree(folder)
        shutil.rmtree(data)


# ----------------------------------------------------------------- rename, delete, export


def scratch_model(gateway, model_id: str, **provenance) -> Path:
    folder = write_model_folder(
        gateway.data_dir / "models",
        model_id,
        architecture="pix2pix-generator",
        family="pix2pix",
        task="translate",
    )
    card = json.loads((folder / "config.json").read_text())
    card["provenance"] = provenance
    (folder / "config.json").write_text(json.dumps(card))
    return folder


def test_without_keys_anyone_renames_and_deletes(client, gateway):
    folder = scratch_model(gateway, "scratch-1", owner="key-someone")
    patched = client.patch("/v1/models/scratch-1", json={"name": "Facades v2"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Facades v2" and patched.json()["description"] == ""
    registry = ModelRegistry.of(Storage(gateway.data_dir))
    record = registry.record("scratch-1")
    assert record.listing == {"name": "Facades v2"} and record.owner == "key-someone"
    # the flat folder became version 1 of the model, its card unchanged
    assert json.loads((folder / "versions" / "1" / "config.json").read_text())["provenance"] == {
        "owner": "key-someone"
    }
    assert client.get("/v1/models/scratch-1").json()["versions"][0]["ref"] == "scratch-1@1"
    expect_error(client.patch("/v1/models/scratch-1", json={"colour": "red"}), 422, "invalid_field")
    long = client.patch("/v1/models/scratch-1", json={"description": "x" * 2001})
    expect_error(long, 422, "invalid_field")
    assert client.delete("/v1/models/scratch-1").status_code == 204
    assert registry.versions("scratch-1") == [] and registry.record("scratch-1").deleted
    assert registry.objects.list("models/scratch-1/versions") == []  # nothing half-removed
    assert not [p for p in (gateway.data_dir / "models").iterdir() if p.name.startswith(".")]
    expect_error(client.get("/v1/models/scratch-1"), 404, "model_not_found")
    expect_error(client.delete("/v1/models/scratch-1"), 404, "model_not_found")
    expect_error(client.patch("/v1/models/../x", json={"name": "y"}), 404, "not_found")


def test_a_model_whose_run_goes_on_is_not_deleted(client, gateway):
    run = Job(kind=JobKind.training, owner="anonymous")
    gateway.store().create(run)
    folder = scratch_model(gateway, "scratch-2", run=run.id, job=run.id, owner="anonymous")
    refused = client.delete("/v1/models/scratch-2")
    message = expect_error(refused, 409, "model_in_training")
    assert run.id in message and folder.is_dir()
    gateway.store().update(run.id, status=JobStatus.succeeded)
    assert client.delete("/v1/models/scratch-2").status_code == 204


def test_export_as_safetensors_zip(client, gateway):
    folder = scratch_model(gateway, "scratch-3")
    made = client.post("/v1/models/scratch-3/exports", json={"format": "safetensors"})
    assert made.status_code == 201, made.text
    export = made.json()
    assert export == {
        "model": "scratch-3@1",
        "format": "safetensors",
        "status": "ready",
        "url": "/v1/models/scratch-3@1/exports/safetensors",
        "job": None,
    }
    assert made.headers["location"] == export["url"]
    response = client.get(export["url"])
    assert response.status_code == 200
    assert response.headers["content-disposition"].endswith('filename="scratch-3.zip"')
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["scratch-3/config.json", "scratch-3/model.safetensors"]
    assert archive.read("scratch-3/config.json") == (folder / "config.json").read_bytes()
    cached = list((gateway.data_dir / "exports" / "scratch-3").glob("*.zip"))
    assert len(cached) == 1
    # reading needs no POST for a zip (it is made on the first read), and answers the same
    assert client.get("/v1/models/scratch-3/exports/safetensors").content == response.content
    expect_error(client.get("/v1/models/nope/exports/safetensors"), 404, "model_not_found")
    expect_error(client.post("/v1/models/nope/exports", json={}), 404, "model_not_found")
    bad = client.post("/v1/models/scratch-3/exports", json={"format": "tar"})
    assert expect_error(bad, 422, "invalid_field") and bad.json()["errors"][0]["field"] == "format"
    assert client.get("/v1/models/scratch-3/exports/tar").status_code == 422


def test_an_onnx_export_is_read_only_once_created(client, gateway):
    scratch_model(gateway, "scratch-4")
    never = client.get("/v1/models/scratch-4/exports/onnx")
    assert "POST /v1/models/scratch-4@1/exports" in expect_error(never, 404, "export_not_found")
    made = client.post("/v1/models/scratch-4/exports", json={"format": "onnx"})
    assert made.status_code == 202, made.text  # no worker here: its job stays queued
    export = made.json()
    assert (export["status"], export["job"]["kind"]) == ("pending", "model_export")
    assert made.headers["location"] == export["job"]["url"]
    pending = client.get(export["url"])
    expect_error(pending, 409, "export_pending")
    assert pending.headers["retry-after"] and pending.headers["location"] == export["job"]["url"]
    again = client.post("/v1/models/scratch-4/exports", json={"format": "onnx"})
    assert again.json()["job"]["id"] == export["job"]["id"]  # the job in flight, not a second


def test_the_old_export_route_answers_with_a_deprecation_header(client, gateway):
    scratch_model(gateway, "scratch-5")
    response = client.get("/v1/models/scratch-5/export")
    assert response.status_code == 200
    assert response.headers["deprecation"].startswith("@")
    assert 'rel="successor-version"' in response.headers["link"]
    assert zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    missing = client.get("/v1/models/nope/export")
    expect_error(missing, 404, "model_not_found")
    assert missing.headers["deprecation"].startswith("@")


def test_keys_see_shared_models_and_their_own(keyed_gateway):
    # the first key is the operator's (GANSERVE_OPERATOR_KEYS unset)
    operator, beta = keyed_gateway.client(KEYS[0]), keyed_gateway.client(KEYS[1])
    scratch_model(keyed_gateway, "others", owner=owner_of_key("gamma-key-3"))
    scratch_model(keyed_gateway, "operators", owner=owner_of_key(KEYS[0]))
    scratch_model(keyed_gateway, "betas", owner=owner_of_key(KEYS[1]))
    seen = {m["id"]: m for m in beta.get("/v1/models").json()["models"]}
    assert "others" not in seen and seen["operators"]["shared"] is True
    assert seen["betas"]["shared"] is False
    assert seen["facades"]["shared"] is True  # a folder without an owner
    expect_error(beta.get("/v1/models/others"), 404, "model_not_found")
    expect_error(beta.delete("/v1/models/others"), 404, "model_not_found")
    expect_error(beta.delete("/v1/models/operators"), 403, "not_owner")
    assert beta.patch("/v1/models/betas", json={"description": "mine"}).status_code == 200
    assert {"others", "operators", "betas"} <= {
        m["id"] for m in operator.get("/v1/models").json()["models"]
    }
    assert operator.patch("/v1/models/others", json={"description": "seen"}).status_code == 200
    assert operator.delete("/v1/models/others").status_code == 204
    assert beta.delete("/v1/models/betas").status_code == 204


# ----------------------------------------------------------------------------- import


def test_imports_that_cannot_be_models_are_refused(client, gateway):
    def post(content: bytes, name="m.zip", **data):
        return client.post("/v1/models", files={"file": (name, content)}, data=data)

    expect_error(post(b"GIF89a..."), 422, "not_a_model")
    expect_error(post(zip_bytes({"a.png": b"x"})), 422, "not_a_model")
    card = zip_bytes({"m/config.json": b"[1, 2]", "m/model.safetensors": b"x"})
    expect_error(post(card), 422, "not_a_model")
    two = zip_bytes({"a/config.json": b"{}", "b/config.json": b"{}", "a/model.safetensors": b"x"})
    assert "more than one" in expect_error(post(two), 422, "not_a_model")
    folder = gateway.data_dir / "models" / "facades"
    good = zip_bytes(
        {
            "facades/config.json": (folder / "config.json").read_bytes(),
            "facades/model.safetensors": b"x",
        }
    )
    expect_error(post(good, id="facades"), 409, "model_exists")
    expect_error(post(good, id="a/b"), 422, "invalid_field")
    with_d = client.post(
        "/v1/models", files={"file": ("m.zip", good), "discriminator": ("d.pth", b"\x80\x02")}
    )
    expect_error(with_d, 422, "invalid_field")
    uploads = gateway.data_dir / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())  # nothing was stored


def test_model_uploads_have_a_size_limit(strict_gateway):
    client = strict_gateway.client()
    big = b"\x80\x02" + b"x" * 50_000
    response = client.post("/v1/models", files={"file": ("latest_net_G.pth", big)})
    expect_error(response, 413, "too_large")
