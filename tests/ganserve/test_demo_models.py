"""`ganserve.demo_models`: a fresh stack asks the real gateway for one demo training run per family.

The gateway runs without workers, so the runs stay queued where the test can read them.
"""

import json

import pytest

from ganserve.demo_models import DEMOS, MARKER, request_demo_models
from tests.service.conftest import start_gateway
from tests.service.factories import write_test_models
from training.demo import DEMOS as DATASETS


@pytest.fixture
def gateway(redis_url, tmp_path):
    server = start_gateway(tmp_path / "gateway", redis_url)
    yield server
    server.stop()


def test_each_demo_is_uploaded_and_queued_once(gateway, tmp_path):
    data_dir = tmp_path / "fresh"  # no model yet: the demos are needed
    data_dir.mkdir()  # as `ganserve up` makes the storage root before it asks
    jobs = request_demo_models(gateway.url, data_dir)
    assert len(jobs) == len(DEMOS)
    assert json.loads((data_dir / MARKER).read_text()) == {"jobs": jobs}
    with gateway.client() as client:
        datasets = {d["id"]: d for d in client.get("/v1/datasets").json()["datasets"]}
        for job_id, demo in zip(jobs, DEMOS, strict=True):
            job = client.get(f"/v1/jobs/{job_id}").json()
            assert (job["kind"], job["status"]) == ("training", "queued")
            params = job["params"]
            assert (params["family"], params["name"], params["config"]) == (
                demo.family,
                demo.name,
                demo.config,
            )
            assert params["background"] is True  # demos yield to users' runs
            dataset = datasets[params["dataset"]]
            assert dataset["name"] == demo.name
            assert dataset["kind"] == params["dataset_kind"] == DATASETS[demo.name].kind
            assert dataset["image_count"] > 0
    assert request_demo_models(gateway.url, data_dir) == []  # asked for once only


def test_nothing_is_requested_when_a_model_exists(gateway, tmp_path):
    data_dir = tmp_path / "served"
    write_test_models(data_dir / "models")
    assert request_demo_models(gateway.url, data_dir) == []
    assert not (data_dir / MARKER).exists()
    with gateway.client() as client:
        assert client.get("/v1/datasets").json()["datasets"] == []
