"""`ganserve.demo_models`: a fresh stack uploads the demo datasets and registers the shipped demo
models against the real gateway; background training runs only when asked for.

The gateway runs without workers, so training runs stay queued where the test can read them.
The mechanism is tested with tiny stand-ins for the shipped weights; the shipped weights
themselves are checked in `test_demo_weights.py`.
"""

import json
import shutil

import pytest
import torch

import models
from core.model_registry import ModelRef, ModelRegistry
from core.storage import Storage
from ganserve import demo_models
from ganserve.demo_models import DEMOS, MARKER, install_demo_models
from tests.service.conftest import start_gateway
from tests.service.factories import write_test_models
from training.demo import DEMOS as DATASETS

TINY = {
    "pix2pix": ("pix2pix-generator", {"image_size": 32, "base_width": 4}),
    "unetgan": (
        "unetgan-generator",
        {"image_size": 32, "width": 4, "latent_dim": 8, "num_classes": 10, "channels": 1},
    ),
    "pggan": ("pggan-generator", {"max_resolution": 8, "latent_dim": 8, "fmap_base": 16}),
}


@pytest.fixture
def gateway(redis_url, tmp_path):
    server = start_gateway(tmp_path / "gateway", redis_url)
    shutil.rmtree(server.data_dir / "models")  # a fresh start: no model yet
    (server.data_dir / "models").mkdir()
    yield server
    server.stop()


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """Tiny stand-ins for `ganserve/demo_weights/`, one per demo."""
    folder = tmp_path / "demo_weights"
    torch.manual_seed(0)
    for demo in DEMOS:
        name, config = TINY[demo.family]
        models.save(models.create(name, **config), folder / demo.name, provenance={"x": 1})
    monkeypatch.setattr(demo_models, "WEIGHTS_DIR", folder)
    return folder


def test_a_fresh_start_registers_the_shipped_models_and_trains_nothing(gateway, shipped):
    data_dir = gateway.data_dir
    done = install_demo_models(gateway.url, Storage(data_dir), owner="anonymous")
    assert done.models == [d.name for d in DEMOS] and done.jobs == []
    assert json.loads((data_dir / MARKER).read_text())["datasets"] == done.datasets
    registry = ModelRegistry.of(Storage(data_dir))
    with gateway.client() as client:
        datasets = {d["id"]: d for d in client.get("/v1/datasets").json()["datasets"]}
        listed = {m["id"]: m for m in client.get("/v1/models").json()["models"]}
        for demo in DEMOS:
            dataset = datasets[done.datasets[demo.name]]
            assert dataset["name"] == demo.name and dataset["image_count"] > 0
            assert dataset["kind"] == DATASETS[demo.name].kind
            model = listed[demo.name]
            assert model["ref"] == f"{demo.name}@1" and model["family"] == demo.family
            assert model["dataset"] == dataset["id"]  # the card names its dataset's id
            assert model["shared"] is True
            record, version = registry.resolve(ModelRef(demo.name))
            assert record.owner == "anonymous" and version.source["kind"] == "demo"
            card = json.loads((registry.local_folder(version) / "config.json").read_text())
            assert card["provenance"]["dataset"] == dataset["id"]
        translator = listed["labels2photo"]
        assert translator["examples"] > 0  # the dataset's held-out inputs
        assert client.get("/v1/jobs").json()["jobs"] == []  # nothing trains
    assert (
        install_demo_models(gateway.url, Storage(data_dir), owner="anonymous") is None
    )  # once only


def test_train_demos_also_queues_one_background_run_per_family(gateway, shipped):
    done = install_demo_models(
        gateway.url, Storage(gateway.data_dir), owner="anonymous", train=True
    )
    assert len(done.jobs) == len(DEMOS)
    with gateway.client() as client:
        for job_id, demo in zip(done.jobs, DEMOS, strict=True):
            job = client.get(f"/v1/jobs/{job_id}").json()
            assert (job["kind"], job["status"]) == ("training", "queued")
            params = job["params"]
            assert (params["family"], params["name"], params["config"]) == (
                demo.family,
                demo.name,
                demo.config,
            )
            assert params["background"] is True  # demos yield to users' runs
            assert params["dataset"] == done.datasets[demo.name]


def test_nothing_is_installed_when_a_model_exists(gateway, shipped):
    write_test_models(gateway.data_dir / "models")
    assert install_demo_models(gateway.url, Storage(gateway.data_dir), owner="anonymous") is None
    assert not (gateway.data_dir / MARKER).exists()
    with gateway.client() as client:
        assert client.get("/v1/datasets").json()["datasets"] == []
