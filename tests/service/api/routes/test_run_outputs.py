"""GET /v1/jobs/{id}/preview and /stats: a training run's sample grids and loss history."""

import io
import json

import pytest
from PIL import Image

from tests.service.api.routes.test_datasets import upload
from tests.service.conftest import KEYS
from tests.service.factories import image_bytes, paired_aligned_zip


@pytest.fixture(scope="module")
def run(keyed_gateway) -> str:
    """A queued training run of KEYS[0], its folder filled as a worker fills it."""
    with keyed_gateway.client(KEYS[0]) as http:
        dataset = upload(http, paired_aligned_zip(2), "paired").json()["id"]
        response = http.post("/v1/training-runs", json={"family": "pix2pix", "dataset": dataset})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    folder = keyed_gateway.data_dir / "runs" / job_id
    (folder / "samples").mkdir(parents=True)
    for step, colour in ((10, "red"), (20, "blue")):
        Image.new("RGB", (24, 12), colour).save(folder / "samples" / f"step_{step:07d}.png")
    rows = [{"step": s, "G_loss": 1.0 / s, "D_loss": 0.5} for s in (5, 10, 15, 20)]
    lines = "".join(json.dumps(row) + "\n" for row in rows)
    (folder / "stats.jsonl").write_text(lines + '{"step": 25, "G_lo')  # a line being written
    return job_id


def _colour(content: bytes) -> tuple[int, int, int]:
    picture = Image.open(io.BytesIO(content))
    assert picture.size == (24, 12)
    return picture.convert("RGB").getpixel((0, 0))


def test_preview_is_the_newest_grid(keyed_gateway, run):
    with keyed_gateway.client(KEYS[0]) as http:
        response = http.get(f"/v1/jobs/{run}/preview")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-preview-step"] == "20"
    assert _colour(response.content) == (0, 0, 255)


def test_preview_of_a_given_step(keyed_gateway, run):
    with keyed_gateway.client(KEYS[0]) as http:
        response = http.get(f"/v1/jobs/{run}/preview", params={"step": 10})
        missing = http.get(f"/v1/jobs/{run}/preview", params={"step": 15})
    assert _colour(response.content) == (255, 0, 0)
    assert missing.status_code == 404
    assert missing.json()["code"] == "no_preview"
    assert "newest is 20" in missing.json()["detail"]


def test_stats_skip_a_partial_line_and_read_incrementally(keyed_gateway, run):
    with keyed_gateway.client(KEYS[0]) as http:
        everything = http.get(f"/v1/jobs/{run}/stats").json()["stats"]
        newer = http.get(f"/v1/jobs/{run}/stats", params={"after": 10}).json()["stats"]
    assert [row["step"] for row in everything] == [5, 10, 15, 20]
    assert everything[1] == {"step": 10, "G_loss": 0.1, "D_loss": 0.5}
    assert [row["step"] for row in newer] == [15, 20]


def test_a_run_without_outputs_yet(keyed_gateway):
    with keyed_gateway.client(KEYS[0]) as http:
        dataset = upload(http, paired_aligned_zip(2), "paired").json()["id"]
        job_id = http.post("/v1/training-runs", json={"family": "pix2pix", "dataset": dataset})
        job_id = job_id.json()["id"]
        preview = http.get(f"/v1/jobs/{job_id}/preview")
        stats = http.get(f"/v1/jobs/{job_id}/stats")
    assert preview.status_code == 404
    problem = preview.json()
    assert (problem["code"], problem["detail"]) == (
        "no_preview",
        "The run has not written a sample grid yet.",
    )
    assert stats.json() == {"stats": []}


def test_other_owners_and_unknown_ids_are_404(keyed_gateway, run):
    with keyed_gateway.client(KEYS[1]) as http:
        assert http.get(f"/v1/jobs/{run}/preview").status_code == 404
        assert http.get(f"/v1/jobs/{run}/stats").status_code == 404
    with keyed_gateway.client(KEYS[0]) as http:
        assert http.get("/v1/jobs/" + "0" * 32 + "/stats").status_code == 404
    with keyed_gateway.client() as http:
        assert http.get(f"/v1/jobs/{run}/preview").status_code == 401


def test_jobs_that_are_not_training_runs_have_no_preview(keyed_gateway):
    with keyed_gateway.client(KEYS[0]) as http:
        job = http.post(
            "/v1/translations",
            files={"image": ("a.png", image_bytes(), "image/png")},
            data={"model": "facades"},
        ).json()
        response = http.get(f"/v1/jobs/{job['id']}/preview")
    assert response.status_code == 404
    assert response.json()["code"] == "not_a_training_run"


def test_bad_parameters_are_422(keyed_gateway, run):
    with keyed_gateway.client(KEYS[0]) as http:
        assert http.get(f"/v1/jobs/{run}/preview", params={"step": -1}).status_code == 422
        assert http.get(f"/v1/jobs/{run}/stats", params={"after": "x"}).status_code == 422
