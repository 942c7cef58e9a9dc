"""The toy fourth family through the real service: trained, sampled, filtered, inspected,
projected and exported, with nothing of ganserve's own files touched (issue 30)."""

import io
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image

from tests.e2e.stack import running_stack, upload_dataset, wait_job
from training.demo import build_demo

ROOT = Path(__file__).resolve().parents[2]
TOY = {"GANSERVE_FAMILY_MODULES": "tests.toy_family.row", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("toy-stack"), **TOY) as (client, _):
        yield client


@pytest.fixture(scope="module")
def model(stack, tmp_path_factory):
    """A toy model trained by the service on 16 px faces: its id."""
    data = build_demo("faces", tmp_path_factory.mktemp("faces"), size=16, count=16)
    dataset = upload_dataset(stack, data, "faces", "images")
    run = stack.post(
        "/v1/training-runs",
        json={
            "family": "toy",
            "dataset": dataset["id"],
            "name": "toy-faces",
            "config": {"image_size": 16, "batch_size": 8, "steps": 30, "width": 4},
        },
    )
    assert run.status_code == 202, run.text
    job = wait_job(stack, run.json()["id"])
    assert job["status"] == "succeeded", job
    return job["result"]["model"]


def done(client, response) -> dict:
    """The result of a job that must succeed."""
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    return job["result"]


def picture(client, url: str, size: int = 16) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (size, size)
    return response.content


def test_the_family_is_served_with_its_capabilities(stack):
    families = {f["name"]: f for f in stack.get("/v1/families").json()["families"]}
    toy = families["toy"]
    assert toy["task"] == "sample" and toy["inspectable"] is True
    assert toy["service_defaults"]["steps"] == 20
    assert set(toy["config_schema"]["properties"]) >= {"latent_dim", "width", "lr", "steps"}


def test_trained_model_samples_and_filters(stack, model):
    listed = {m["id"]: m for m in stack.get("/v1/models").json()["models"]}
    assert listed[model]["family"] == "toy" and listed[model]["discriminator"] is True
    drawn = done(stack, stack.post("/v1/samples", json={"model": model, "count": 4, "seed": 3}))
    assert len({picture(stack, url) for url in drawn["images"]}) == 4
    again = done(stack, stack.post("/v1/samples", json={"model": model, "count": 4, "seed": 3}))
    assert [picture(stack, u) for u in again["images"]] == [
        picture(stack, u) for u in drawn["images"]
    ]
    body = {"model": model, "count": 2, "seed": 3, "filter": {"method": "top", "keep": 0.5}}
    kept = done(stack, stack.post("/v1/samples", json=body))
    assert len(kept["images"]) == 2 and kept["filter"]["candidates"] == 4
    drs = {"model": model, "count": 2, "seed": 3, "filter": {"method": "drs", "burn_in": 8}}
    assert len(done(stack, stack.post("/v1/samples", json=drs))["images"]) == 2


def test_trained_model_is_inspected(stack, model):
    sample = stack.post("/v1/samples", json={"model": model, "count": 1, "seed": 5})
    source = sample.json()["id"]
    assert wait_job(stack, source)["status"] == "succeeded"
    result = done(stack, stack.post("/v1/inspections", data={"model": model, "source_job": source}))
    assert 0 <= result["map_min"] <= result["map_mean"] <= 1
    assert 0 <= result["global_score"] <= 1


def test_trained_model_projects(stack, model):
    drawn = done(stack, stack.post("/v1/samples", json={"model": model, "seed": 9}))
    target = picture(stack, drawn["images"][0])
    response = stack.post(
        "/v1/projections",
        data={"model": model, "steps": "40", "seed": "1"},
        files={"image": ("target.png", target, "image/png")},
    )
    result = done(stack, response)
    assert result["discriminator_loss"] is True and result["loss"] < result["start_loss"]
    picture(stack, result["images"][0])


def test_trained_model_exports_to_onnx(stack, model, tmp_path):
    made = stack.post(f"/v1/models/{model}/exports", params={"wait": 30}, json={"format": "onnx"})
    if made.status_code == 202:
        wait_job(stack, made.json()["job"]["id"])
    else:
        assert made.status_code == 201, made.text
    graph = stack.get(made.json()["url"])
    assert graph.status_code == 200
    (tmp_path / "toy.onnx").write_bytes(graph.content)
    session = onnxruntime.InferenceSession(str(tmp_path / "toy.onnx"))
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(0)).numpy()
    (images,) = session.run(None, {"z": z})
    channels = stack.get(f"/v1/models/{model}").json()["channels"]
    assert images.shape == (3, channels, 16, 16) and np.abs(images).max() <= 1


def test_no_file_of_ganserve_names_the_toy_family():
    packages = ["core", "models", "training", "workers", "service", "ganserve"]
    found = subprocess.run(
        ["grep", "-rlE", 'toy_family|"toy"', *packages], cwd=ROOT, capture_output=True, text=True
    )
    assert found.stdout == "", found.stdout
