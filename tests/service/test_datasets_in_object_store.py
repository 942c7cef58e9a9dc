"""Datasets in the store, on a local folder and on a real S3 server (SeaweedFS), through a real
gateway: uploaded with their record last, listed, read and deleted through the store; an archive
that is refused leaves nothing in it; a dataset whose record never arrived is invisible."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from core.object_store import ObjectStore
from tests.service.conftest import Gateway, start_gateway
from tests.service.factories import image_bytes, images_zip, zip_bytes


@dataclass
class Served:
    """A gateway and the store it keeps datasets in."""

    gateway: Gateway
    objects: ObjectStore


@pytest.fixture(params=["local", "s3"])
def served(request, tmp_path, redis_url) -> Iterator[Served]:
    env = {}
    if request.param == "s3":
        env["GANSERVE_STORAGE_URL"] = request.getfixturevalue("s3_url")
    # the session's database 0: these tests make no jobs, and the numbered ones are counted
    gateway = start_gateway(tmp_path / "gateway", redis_url, env, own_database=False)
    try:
        objects = ObjectStore.open(env.get("GANSERVE_STORAGE_URL"), gateway.data_dir)
        yield Served(gateway, objects)
    finally:
        gateway.stop()


def upload(http: httpx.Client, archive: bytes, kind: str = "images") -> httpx.Response:
    return http.post(
        "/v1/datasets",
        files={"archive": ("set.zip", archive, "application/zip")},
        data={"kind": kind, "name": "set"},
    )


def staging_left(served: Served) -> list[str]:
    folder = served.gateway.data_dir / "datasets"
    return [p.name for p in folder.iterdir() if p.name.startswith(".")] if folder.exists() else []


def test_a_dataset_is_stored_listed_read_and_deleted(served):
    with served.gateway.client() as http:
        dataset = upload(http, images_zip(3)).json()
        keys = [info.key for info in served.objects.list(f"datasets/{dataset['id']}")]
        assert (
            f"datasets/{dataset['id']}/dataset.json" in keys and len(keys) == 5
        )  # README.txt kept
        record = json.loads(served.objects.read(f"datasets/{dataset['id']}/dataset.json") or b"")
        assert record["image_count"] == 3 and record["owner"] == "anonymous"
        assert [d["id"] for d in http.get("/v1/datasets").json()["datasets"]] == [dataset["id"]]
        assert http.get(f"/v1/datasets/{dataset['id']}").json()["image_count"] == 3
        assert http.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
        assert served.objects.list("datasets") == []
        assert http.get(f"/v1/datasets/{dataset['id']}").status_code == 404
        assert http.get("/v1/datasets").json()["datasets"] == []
    assert staging_left(served) == []


def test_a_truncated_or_unsafe_archive_leaves_nothing_in_the_store(served):
    whole = zip_bytes({f"{i}.png": image_bytes() for i in range(3)})
    unsafe = zip_bytes({"ok.png": image_bytes(), "../evil.png": image_bytes()})
    with served.gateway.client() as http:
        for archive, needle in ((whole[: len(whole) // 2], "zip"), (unsafe, "..")):
            response = upload(http, archive)
            assert response.status_code == 400, response.text
            assert response.json()["code"] == "bad_archive" and needle in response.json()["detail"]
        assert http.get("/v1/datasets").json()["datasets"] == []
    assert served.objects.list("datasets") == []
    assert staging_left(served) == []


def test_a_dataset_without_its_record_is_invisible(served):
    half = "0123456789abcdef0123456789abcdef"  # an upload that broke off before its record
    served.objects.put(f"datasets/{half}/a.png", image_bytes())
    with served.gateway.client() as http:
        assert http.get("/v1/datasets").json()["datasets"] == []
        response = http.get(f"/v1/datasets/{half}")
        assert response.status_code == 404 and response.json()["code"] == "dataset_not_found"
        run = http.post("/v1/training-runs", json={"family": "unetgan", "dataset": half})
        assert run.status_code == 404
