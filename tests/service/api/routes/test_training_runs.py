"""POST /v1/training-runs."""

import pytest

from core.queues import queue_length
from tests.service.api.routes.test_datasets import upload
from tests.service.factories import given, images_zip, paired_aligned_zip


@pytest.fixture(scope="module")
def datasets(gateway) -> dict[str, str]:
    with gateway.client() as http:
        return {
            "paired": upload(http, paired_aligned_zip(2), "paired").json()["id"],
            "images": upload(http, images_zip(2), "images").json()["id"],
        }


def test_training_run_is_queued(client, gateway, datasets):
    before = queue_length(gateway.redis(), "train")
    body = {
        "family": "pix2pix",
        "dataset": datasets["paired"],
        "name": "facades-1",
        "config": {"steps": 10, "lambda_l1": 100.0},
    }
    response = client.post("/v1/training-runs", json=body)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "training"
    assert job["status"] == "queued"
    assert job["model"] is None
    assert given(job["params"]) == {
        "family": "pix2pix",
        "dataset": datasets["paired"],
        "dataset_kind": "paired",
        "name": "facades-1",
        "config": {"steps": 10, "lambda_l1": 100.0},
        "background": False,
        "devices": 1,
    }
    assert (gateway.data_dir / "datasets" / datasets["paired"] / "dataset.json").is_file()
    assert queue_length(gateway.redis(), "train") == before + 1


@pytest.mark.parametrize("family", ["unetgan", "pggan"])
def test_image_families_take_image_sets(client, datasets, family):
    response = client.post(
        "/v1/training-runs", json={"family": family, "dataset": datasets["images"]}
    )
    assert response.status_code == 202, response.text


def test_unknown_dataset_is_404(client):
    response = client.post("/v1/training-runs", json={"family": "pggan", "dataset": "f" * 32})
    assert response.status_code == 404
    assert response.json()["code"] == "dataset_not_found"


def test_kind_must_fit_the_family(client, datasets):
    response = client.post(
        "/v1/training-runs", json={"family": "pix2pix", "dataset": datasets["images"]}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "dataset_kind_mismatch"
    response = client.post(
        "/v1/training-runs", json={"family": "unetgan", "dataset": datasets["paired"]}
    )
    assert response.status_code == 422


def test_a_run_may_ask_for_several_devices(client, gateway, datasets):
    body = {"family": "unetgan", "dataset": datasets["images"], "devices": 8}
    response = client.post("/v1/training-runs", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["params"]["devices"] == 8


@pytest.mark.parametrize(
    ("devices", "needle"),
    [
        (0, "greater than or equal to 1"),
        (-1, "greater than or equal to 1"),
        ("two", "valid integer"),
        ("2", "valid integer"),
        (2.5, "valid integer"),
        (True, "valid integer"),
        (None, "valid integer"),
        (9, "at most 8 devices here (GANSERVE_MAX_TRAINING_DEVICES), not 9"),
    ],
)
def test_bad_device_counts_are_422_and_nothing_is_queued(
    client, gateway, datasets, devices, needle
):
    before = queue_length(gateway.redis(), "train")
    body = {"family": "unetgan", "dataset": datasets["images"], "devices": devices}
    response = client.post("/v1/training-runs", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == "invalid_field"
    assert "'devices'" in error["detail"] and needle in error["detail"], error["detail"]
    assert queue_length(gateway.redis(), "train") == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"family": "stylegan", "dataset": "x"}, "family"),
        ({"family": "pggan"}, "dataset"),
        ({"family": "pggan", "dataset": "x", "config": [1, 2]}, "config"),
        ({"family": "pggan", "dataset": "x", "config": "steps=3"}, "config"),
        ({"family": "pggan", "dataset": "x", "name": "../etc"}, "name"),
    ],
)
def test_invalid_requests_are_422(client, body, field):
    response = client.post("/v1/training-runs", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_field"
    assert field in response.json()["detail"]


@pytest.mark.parametrize(
    ("family", "config", "field", "needle"),
    [
        ("pix2pix", {"colour": "red"}, "config.colour", "unknown field for pix2pix"),
        ("pix2pix", {"steps": -3}, "config.steps", "greater than or equal to 1"),
        ("pix2pix", {"lr": "fast"}, "config.lr", "valid number"),
        ("pix2pix", {"image_size": 7}, "config.image_size", "greater than or equal to 8"),
        ("unetgan", {"image_size": 48}, "config.image_size", "32, 64, 128, 256"),
        ("pggan", {"steps": 100}, "config.steps", "phase_images"),
    ],
)
def test_a_bad_training_config_is_422_at_submission(
    client, gateway, datasets, family, config, field, needle
):
    before = queue_length(gateway.redis(), "train")
    dataset = datasets["paired" if family == "pix2pix" else "images"]
    response = client.post(
        "/v1/training-runs", json={"family": family, "dataset": dataset, "config": config}
    )
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == "invalid_field"
    assert f"'{field}'" in error["detail"] and needle in error["detail"]
    assert queue_length(gateway.redis(), "train") == before  # nothing queued to fail later
