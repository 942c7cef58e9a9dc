"""POST /v1/datasets, GET /v1/datasets, GET /v1/datasets/{id}."""

import json

import pytest

from tests.service.conftest import KEYS
from tests.service.factories import (
    image_bytes,
    images_zip,
    labeled_zip,
    paired_aligned_zip,
    paired_folders_zip,
    zip_bytes,
    zip_with_symlink,
)


def upload(http, archive: bytes, kind: str, name: str | None = "set"):
    data = {"kind": kind} | ({"name": name} if name else {})
    return http.post(
        "/v1/datasets", files={"archive": ("set.zip", archive, "application/zip")}, data=data
    )


def _datasets_on_disk(gateway) -> set[str]:
    return {p.name for p in (gateway.data_dir / "datasets").iterdir()}


@pytest.mark.parametrize(
    ("archive", "kind", "count", "classes", "layout"),
    [
        (paired_aligned_zip(3), "paired", 3, [], "aligned"),
        (paired_folders_zip(), "paired", 2, [], "folders"),
        (images_zip(4), "images", 4, [], None),
        (labeled_zip({"cat": 2, "dog": 3}), "labeled", 5, ["cat", "dog"], None),
        (
            zip_bytes({"digits/0/a.png": image_bytes(), "digits/1/b.png": image_bytes()}),
            "labeled",
            2,
            ["0", "1"],
            None,
        ),
    ],
)
def test_upload_each_kind(client, gateway, archive, kind, count, classes, layout):
    response = upload(client, archive, kind)
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["kind"] == kind
    assert dataset["image_count"] == count
    assert dataset["classes"] == classes
    assert dataset["layout"] == layout
    assert dataset["name"] == "set"
    assert "owner" not in dataset

    folder = gateway.data_dir / "datasets" / dataset["id"]
    record = json.loads((folder / "dataset.json").read_text())
    assert record["owner"] == "anonymous"
    assert record["image_count"] == count
    assert sum(1 for p in folder.rglob("*.png") if not p.name.startswith(".")) >= count
    assert client.get(f"/v1/datasets/{dataset['id']}").json() == dataset
    listed = client.get("/v1/datasets").json()["datasets"]
    assert dataset in listed


def test_wrapping_folder_is_unwrapped(client, gateway):
    dataset = upload(client, paired_aligned_zip(2, wrapper="facades/"), "paired").json()
    folder = gateway.data_dir / "datasets" / dataset["id"]
    assert sorted(p.name for p in folder.iterdir()) == ["dataset.json", "train", "val"]


def test_name_defaults_to_the_file_name(client):
    response = upload(client, images_zip(1), "images", name=None)
    assert response.status_code == 201
    assert response.json()["name"] == "set"


def _refused(gateway, http, archive, kind, status, code, *words):
    before = _datasets_on_disk(gateway)
    response = upload(http, archive, kind)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["code"] == code
    for word in words:
        assert word in error["detail"]
    assert _datasets_on_disk(gateway) == before  # nothing kept, no staging left behind


def test_bad_archives_are_refused(client, gateway):
    _refused(gateway, client, b"PK\x03\x04 this is not a zip", "images", 400, "bad_archive")
    _refused(gateway, client, image_bytes(), "images", 400, "bad_archive", "zip")
    evil = zip_bytes({"ok.png": image_bytes(), "../evil.png": image_bytes()})
    _refused(gateway, client, evil, "images", 400, "bad_archive", "..")
    nested = zip_bytes({"a/../../evil2.png": image_bytes()})
    _refused(gateway, client, nested, "images", 400, "bad_archive", "..")
    absolute = zip_bytes({"/tmp/ganserve-evil.png": image_bytes()})
    _refused(gateway, client, absolute, "images", 400, "bad_archive", "absolute")
    _refused(gateway, client, zip_with_symlink(), "images", 400, "bad_archive", "link")
    root = gateway.data_dir.parent
    assert not list(root.rglob("evil*.png"))
    assert not (root.parent / "evil.png").exists()


def test_datasets_without_images_are_422(client, gateway):
    _refused(gateway, client, zip_bytes({}), "images", 422, "invalid_dataset")
    _refused(gateway, client, zip_bytes({"notes.txt": b"hi"}), "images", 422, "invalid_dataset")
    broken = zip_bytes({"a.png": b"not really a png"})
    _refused(gateway, client, broken, "images", 422, "invalid_dataset")
    flat = zip_bytes({"a.png": image_bytes(), "b.png": image_bytes()})
    _refused(gateway, client, flat, "labeled", 422, "invalid_dataset", "class")
    only_a = zip_bytes({"A/x.png": image_bytes()})
    _refused(gateway, client, only_a, "paired", 422, "invalid_dataset", "B/")
    assert client.get("/healthz").status_code == 200


def test_invalid_kind_is_422(client):
    response = upload(client, images_zip(1), "videos")
    assert response.status_code == 422
    assert "kind" in response.json()["detail"]


def test_archive_limits(strict_gateway):
    with strict_gateway.client() as http:
        many = zip_bytes({f"{i}.png": image_bytes((4, 4)) for i in range(6)})
        _refused(strict_gateway, http, many, "images", 400, "bad_archive", "entries")
        huge = zip_bytes({"a.png": image_bytes(), "zeros.bin": b"\x00" * 60_000})
        assert len(huge) < 30_000
        _refused(strict_gateway, http, huge, "images", 400, "bad_archive", "bytes")
        big = zip_bytes({"noise.png": image_bytes((120, 120), noise=True)})
        assert len(big) > 30_000
        _refused(strict_gateway, http, big, "images", 413, "too_large")
        ok = upload(http, zip_bytes({f"{i}.png": image_bytes((4, 4)) for i in range(5)}), "images")
        assert ok.status_code == 201
        assert ok.json()["image_count"] == 5


def test_unknown_dataset_is_404(client):
    for dataset_id in ("0" * 32, ".staging-x", "nope"):
        response = client.get(f"/v1/datasets/{dataset_id}")
        assert response.status_code == 404
        assert response.json()["code"] == "dataset_not_found"


# ---------------------------------------------------------------------------------------------
# DELETE /v1/datasets/{id}


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_delete_removes_the_dataset(client, gateway):
    dataset = upload(client, images_zip(2), "images").json()
    folder = gateway.data_dir / "datasets" / dataset["id"]
    assert folder.is_dir()
    response = client.delete(f"/v1/datasets/{dataset['id']}")
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert not folder.exists()
    assert not [p for p in _datasets_on_disk(gateway) if dataset["id"] in p]  # nothing hidden left
    assert client.get(f"/v1/datasets/{dataset['id']}").status_code == 404
    assert dataset["id"] not in [d["id"] for d in client.get("/v1/datasets").json()["datasets"]]
    again = client.delete(f"/v1/datasets/{dataset['id']}")
    assert again.status_code == 404
    assert again.json()["code"] == "dataset_not_found"


def test_delete_of_another_owners_or_an_unknown_dataset_is_404(keyed_gateway):
    alpha_key, beta_key = KEYS
    with keyed_gateway.client(alpha_key) as alpha, keyed_gateway.client(beta_key) as beta:
        dataset = upload(alpha, images_zip(1), "images").json()
        folder = keyed_gateway.data_dir / "datasets" / dataset["id"]
        before = _files(folder)
        for dataset_id in (dataset["id"], "0" * 32, ".staging-x", "nope"):
            response = beta.delete(f"/v1/datasets/{dataset_id}")
            assert response.status_code == 404, dataset_id
            assert response.json()["code"] == "dataset_not_found"
        assert _files(folder) == before
        assert alpha.get(f"/v1/datasets/{dataset['id']}").status_code == 200
        assert alpha.delete(f"/v1/datasets/{dataset['id']}").status_code == 204


def test_a_dataset_is_409_while_a_queued_or_running_run_uses_it(client, gateway):
    dataset = upload(client, paired_aligned_zip(2), "paired").json()
    run = {"family": "pix2pix", "dataset": dataset["id"], "config": {"steps": 5}}
    queued = client.post("/v1/training-runs", json=run).json()
    running = client.post("/v1/training-runs", json=run).json()
    store = gateway.store()
    store.update(running["id"], status="running")  # as a worker would
    datasets = gateway.data_dir / "datasets"
    before = {name: _files(datasets / name) for name in _datasets_on_disk(gateway)}

    def refused(*run_ids: str) -> None:
        response = client.delete(f"/v1/datasets/{dataset['id']}")
        assert response.status_code == 409, response.text
        error = response.json()
        assert error["code"] == "dataset_in_use"
        assert any(run_id in error["detail"] for run_id in run_ids)
        # nothing stored changed: every dataset folder with the same files
        assert {name: _files(datasets / name) for name in _datasets_on_disk(gateway)} == before
        assert client.get(f"/v1/datasets/{dataset['id']}").status_code == 200

    refused(queued["id"], running["id"])
    assert client.post(f"/v1/jobs/{queued['id']}/cancel").json()["status"] == "cancelled"
    refused(running["id"])  # the running one still reads it
    store.update(running["id"], status="succeeded")  # its worker finished
    assert client.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
    assert not (datasets / dataset["id"]).exists()
