"""GET /v1/usage: the caller's job records by status and the bytes of its files, as on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from service.security import owner_of_key
from tests.service.api.routes.test_datasets import upload
from tests.service.conftest import KEYS
from tests.service.factories import image_bytes, images_zip, write_model_folder

ALPHA, BETA = KEYS


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def usage(http, key: str) -> dict:
    """The caller's line; a user gets only its own, the operator (ALPHA, the first key) every
    owner's."""
    response = http.get("/v1/usage")
    assert response.status_code == 200, response.text
    owners = {line["owner"]: line for line in response.json()["owners"]}
    if key != ALPHA:
        assert list(owners) == [owner_of_key(key)]
    return owners[owner_of_key(key)]


def test_usage_matches_the_callers_files(keyed_gateway):
    data = keyed_gateway.data_dir
    with keyed_gateway.client(ALPHA) as alpha, keyed_gateway.client(BETA) as beta:
        before, other = usage(alpha, ALPHA), usage(beta, BETA)
        assert before["owner"] == owner_of_key(ALPHA) and other["owner"] == owner_of_key(BETA)
        assert set(before["jobs"]) == {"queued", "running", "succeeded", "failed", "cancelled"}
        assert set(before["bytes"]) == {"results", "uploads", "runs", "datasets", "models"}

        dataset = upload(alpha, images_zip(3), "images").json()
        job = alpha.post(
            "/v1/translations",
            files={"image": ("in.png", image_bytes((40, 30)), "image/png")},
            data={"model": "facades"},
        ).json()
        # a second job, with results written as a worker would
        sample = alpha.post("/v1/samples", json={"model": "faces", "count": 2}).json()
        results = data / "results" / sample["id"]
        results.mkdir(parents=True)
        (results / "0.png").write_bytes(b"r" * 1234)
        (results / "1.png").write_bytes(b"r" * 766)
        runs = data / "runs" / job["id"]  # counted for the job's owner whatever its kind
        runs.mkdir(parents=True)
        (runs / "stats.jsonl").write_bytes(b"s" * 321)
        model = write_model_folder(
            data / "models",
            "alpha-usage-model",
            architecture="pix2pix-generator",
            family="pix2pix",
            task="translate",
        )
        card = json.loads((model / "config.json").read_text())
        card["provenance"]["owner"] = owner_of_key(ALPHA)
        (model / "config.json").write_text(json.dumps(card))
        try:
            after = usage(alpha, ALPHA)
            assert after["jobs"]["queued"] == before["jobs"]["queued"] + 2
            grew = {k: after["bytes"][k] - before["bytes"][k] for k in after["bytes"]}
            assert grew == {
                "results": 2000,
                "uploads": size(data / "uploads" / job["id"]),
                "runs": 321,
                "datasets": size(data / "datasets" / dataset["id"]),
                "models": size(model),
            }
            assert grew["uploads"] > 0 and grew["datasets"] > 0
            assert usage(beta, BETA) == other  # nothing of alpha's counts for beta
            beta.post("/v1/samples", json={"model": "faces", "count": 1})  # beta has a job
            operator_view = {line["owner"] for line in alpha.get("/v1/usage").json()["owners"]}
            assert {owner_of_key(ALPHA), owner_of_key(BETA)} <= operator_view  # every owner

            alpha.post(f"/v1/jobs/{job['id']}/cancel")
            cancelled = usage(alpha, ALPHA)
            assert cancelled["jobs"]["queued"] == after["jobs"]["queued"] - 1
            assert cancelled["jobs"]["cancelled"] == after["jobs"]["cancelled"] + 1
            assert alpha.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
            assert usage(alpha, ALPHA)["bytes"]["datasets"] == before["bytes"]["datasets"]
        finally:
            shutil.rmtree(model)


def test_usage_needs_a_key(keyed_gateway):
    with keyed_gateway.client() as http:
        assert http.get("/v1/usage").status_code == 401
