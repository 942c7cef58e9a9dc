"""Realness maps end to end: real stack, discriminators saved in model folders, PNGs decoded."""

import io

import numpy as np
import pytest
from PIL import Image

import models
from tests.e2e.stack import png, running_stack, save_tiny_models, wait_job


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("inspect-stack")
    save_tiny_models(data_dir / "models", translator="tiny-p2p", sampler="tiny-u")
    models.save(
        models.create("pix2pix-generator", image_size=32, base_width=4),
        data_dir / "models" / "no-d",
    )
    with running_stack(data_dir) as (client, _stack):
        yield client


def decoded(client, url: str) -> Image.Image:
    response = client.get(url)
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


def check_result(client, job: dict, size: tuple[int, int]) -> dict:
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert len(result["images"]) == 2
    heat = decoded(client, result["images"][0])
    assert (heat.mode, heat.size) == ("L", size)
    overlay = decoded(client, result["images"][1])
    # the image at the top left, a legend underneath (the canvas widened for narrow images)
    assert overlay.width >= size[0] and overlay.height > size[1]
    pixels = np.asarray(heat, dtype=np.float64) / 255
    assert 0 <= result["map_min"] <= result["map_mean"] <= 1
    assert result["map_min"] == pytest.approx(pixels.min(), abs=1 / 255 + 1e-6)
    x0, y0, x1, y1 = result["least_real_box"]
    assert 0 <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1]
    return result


def test_models_list_their_discriminators(stack):
    listed = {m["id"]: m["discriminator"] for m in stack.get("/v1/models").json()["models"]}
    assert listed == {"tiny-p2p": True, "tiny-u": True, "no-d": False}


def test_unet_gan_inspection_of_an_upload(stack):
    response = stack.post(
        "/v1/inspections",
        data={"model": "tiny-u", "class_label": "1"},
        files={"image": ("face.png", png(45, 30), "image/png")},
    )
    assert response.status_code == 202, response.text
    result = check_result(stack, wait_job(stack, response.json()["id"]), (45, 30))
    assert 0 < result["global_score"] < 1  # the encoder's probability "real"


def test_a_translation_is_inspected_by_source_job(stack):
    translation = stack.post(
        "/v1/translations",
        data={"model": "tiny-p2p"},
        files={"image": ("a.png", png(40, 28, seed=3), "image/png")},
    ).json()
    assert wait_job(stack, translation["id"])["status"] == "succeeded"
    response = stack.post(
        "/v1/inspections", data={"model": "tiny-p2p", "source_job": translation["id"]}
    )
    assert response.status_code == 202, response.text
    job = wait_job(stack, response.json()["id"])
    assert job["params"]["source_job"] == translation["id"]
    result = check_result(stack, job, (40, 28))
    assert result["global_score"] is None  # a PatchGAN has no global head


def test_a_sample_is_inspected_by_source_job(stack):
    sample = stack.post("/v1/samples", json={"model": "tiny-u", "count": 2, "seed": 5}).json()
    assert wait_job(stack, sample["id"])["status"] == "succeeded"
    response = stack.post(
        "/v1/inspections",
        data={"model": "tiny-u", "source_job": sample["id"], "source_image": "1"},
    )
    check_result(stack, wait_job(stack, response.json()["id"]), (32, 32))


def test_a_model_without_a_discriminator_is_refused(stack):
    response = stack.post(
        "/v1/inspections",
        data={"model": "no-d"},
        files={
            "image": ("a.png", png(8, 8), "image/png"),
            "input": ("b.png", png(8, 8), "image/png"),
        },
    )
    assert response.status_code == 409
    assert response.json()["code"] == "no_discriminator"
