"""No error names a server path: a real stack whose storage root has a distinctive name is made
to fail in as many ways as it can, and every message it answers is scanned for that root.

The stack is real (embedded Redis, the gateway over HTTP, a Celery worker per queue). Failures
provoked: every kind of malformed model zip, uploads that are not images or not datasets,
unknown ids of every resource, invalid fields, model imports that fail in the worker (weights
that are not safetensors, a reference checkpoint that is not one), training runs on datasets
whose images do not decode, a translation on a model whose stored weights broke, a sample from
kept latents whose file broke. `tests/conftest.py` records every error message the test clients
see (response bodies, job errors); each test here scans what it provoked for the storage root
(as given and resolved, and its distinctive folder name alone) and for the placeholder that the
last line of defence (`core.server_paths`) would put in its place: a message with that
placeholder means a source still builds its message from a path.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import models
from core.server_paths import STORAGE_PLACEHOLDER
from tests import bad_zips
from tests.conftest import ErrorMessages, path_leaks
from tests.e2e.stack import png, running_stack, wait_job
from tests.service.factories import truncated_png, zip_bytes

DISTINCTIVE = "storage-root-e7c1d-distinctive"
NO_JOB = "0" * 32


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple]:
    root = tmp_path_factory.mktemp(DISTINCTIVE)
    with running_stack(root, GANSERVE_MAX_ARCHIVE_ENTRIES="20") as (client, _stack):
        yield client, root


@contextmanager
def provoked(error_messages: ErrorMessages, root: Path, at_least: int) -> Iterator[list[str]]:
    """The error messages recorded inside the block (at least `at_least`), checked at its end:
    none names `root` or its folder's name, none holds the placeholder."""
    start = len(error_messages.seen)
    seen: list[str] = []
    yield seen
    recorded = error_messages.seen[start:]
    seen += [message for _, message in recorded]
    assert len(recorded) >= at_least, recorded
    assert path_leaks(recorded, [root]) == []
    named = [(where, m) for where, m in recorded if DISTINCTIVE in m or STORAGE_PLACEHOLDER in m]
    assert named == []


def model_zip_of(network, tmp: Path) -> bytes:
    """A model folder of `network`, zipped as an export is (`m/...`)."""
    folder = tmp / "m"
    models.save(network, folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"m/{path.name}")
    return buffer.getvalue()


def tiny_translator() -> torch.nn.Module:
    torch.manual_seed(0)
    return models.create("pix2pix-generator", image_size=32, base_width=4)


def tiny_sampler() -> torch.nn.Module:
    torch.manual_seed(0)
    return models.create("unetgan-generator", image_size=32, width=4, latent_dim=8, num_classes=3)


def import_zip(client, content: bytes, name: str = "m.zip", **form) -> dict:
    """Import a model zip; the ended job."""
    response = client.post(
        "/v1/models", files={"file": (name, content, "application/zip")}, data=form
    )
    assert response.status_code == 202, response.text
    return wait_job(client, response.json()["id"])


def failed(job: dict, *codes: str) -> str:
    assert job["status"] == "failed", job
    assert job["error"]["code"] in codes, job["error"]
    return job["error"]["message"]


@pytest.fixture(scope="module")
def translator(stack, tmp_path_factory) -> str:
    """A tiny translator imported through the API: its model reference."""
    client, _ = stack
    job = import_zip(client, model_zip_of(tiny_translator(), tmp_path_factory.mktemp("p2p")))
    assert job["status"] == "succeeded", job
    return job["result"]["model"]


def test_gateway_refusals_name_no_path(stack, translator, error_messages, tmp_path):
    client, root = stack
    card = model_zip_of(tiny_translator(), tmp_path)
    with zipfile.ZipFile(io.BytesIO(card)) as archive:
        card_json = archive.read("m/config.json")
    with provoked(error_messages, root, at_least=40):
        for maker, status, code, _ in bad_zips.MALFORMED.values():
            response = client.post("/v1/models", files={"file": ("m.zip", maker(card_json))})
            assert response.status_code == status and response.json()["code"] == code
        for content, name in ((b"plain text", "notes.txt"), (b"\x80\x02", "x_net_G.pth")):
            client.post("/v1/models", files={"file": (name, content)}, data={"id": "../x"})
        client.post("/v1/models", files={"file": ("m.zip", card)}, data={"id": "a/b"})
        for path in (
            "/v1/models/nope",
            "/v1/models/nope/export",
            "/v1/models/nope/examples",
            "/v1/models/nope/examples/0",
            f"/v1/jobs/{NO_JOB}",
            f"/v1/jobs/{NO_JOB}/images/0",
            f"/v1/jobs/{NO_JOB}/latents.npy",
            f"/v1/jobs/{NO_JOB}/stats",
            "/v1/jobs/not-an-id",
            "/v1/datasets/nope",
            "/v1/datasets/" + NO_JOB,
            "/v1/no-such-route",
        ):
            assert client.get(path).status_code in (404, 422), path
        for path in ("/v1/models/nope", f"/v1/jobs/{NO_JOB}", "/v1/datasets/nope"):
            assert client.delete(path).status_code == 404, path
        assert client.patch("/v1/models/nope", json={"name": "x"}).status_code == 404
        for image, status in ((b"", 400), (b"GIF89a not really", 415), (truncated_png(), 400)):
            response = client.post(
                "/v1/translations",
                files={"image": ("in.png", image)},
                data={"model": translator},
            )
            assert response.status_code == status, response.text
        client.post(
            "/v1/translations", files={"image": ("in.png", png(8, 8))}, data={"model": "nope"}
        )
        client.post("/v1/samples", json={"model": "nope", "count": 2})
        client.post("/v1/samples", json={"model": "nope", "count": -1, "colour": "red"})
        client.post(
            "/v1/samples", content=b"{not json", headers={"content-type": "application/json"}
        )
        client.post("/v1/training-runs", json={"family": "pix2pix", "dataset": "nope"})
        client.post("/v1/training-runs", json={"family": "nope", "dataset": "nope", "config": 3})
        for archive, kind in (
            (b"not a zip", "images"),
            (b"PK\x03\x04 cut off", "images"),
            (bad_zips.bad_crc(card_json), "images"),
            (bad_zips.corrupt_deflate(card_json), "images"),
            (bad_zips.unknown_method(card_json), "images"),
            (bad_zips.encrypted(card_json), "images"),
            (bad_zips.cut_data(card_json), "images"),
            (bad_zips.too_many_entries(card_json, count=21), "images"),
            (zip_bytes({"../evil.png": png(4, 4)}), "images"),
            (zip_bytes({"/abs.png": png(4, 4)}), "images"),
            (zip_bytes({"notes.txt": b"hi"}), "images"),
            (zip_bytes({"a.png": png(4, 4)}), "labeled"),
            (zip_bytes({"A/x.png": png(4, 4)}), "paired"),
            (zip_bytes({"a.png": png(4, 4)}), "videos"),
        ):
            response = client.post(
                "/v1/datasets",
                data={"name": "broken", "kind": kind},
                files={"archive": ("broken.zip", archive, "application/zip")},
            )
            assert 400 <= response.status_code < 500, response.text


def test_model_imports_that_fail_in_the_worker_name_no_path(stack, error_messages, tmp_path):
    client, root = stack
    card = model_zip_of(tiny_translator(), tmp_path)
    with zipfile.ZipFile(io.BytesIO(card)) as archive:
        card_json = archive.read("m/config.json")
        weights = archive.read("m/model.safetensors")
    with provoked(error_messages, root, at_least=4):
        garbage = bad_zips.model_zip(card_json, b"\x10\x00\x00\x00\x00\x00\x00\x00garbage")
        message = failed(import_zip(client, garbage), "not_a_model")
        assert "model.safetensors" in message
        other = bad_zips.model_zip(card_json, weights[: len(weights) // 2])  # cut-off tensors
        failed(import_zip(client, other), "not_a_model")
        pickle_head = b"\x80\x02" + b"garbage" * 10
        response = client.post(
            "/v1/models", files={"file": ("latest_net_G.pth", pickle_head)}, data={"id": "ref"}
        )
        message = failed(wait_job(client, response.json()["id"]), "unsupported_checkpoint")
        assert "latest_net_G.pth" in message  # the name the user sent, not the stored one
        torch.save({"weights": "not tensors"}, tmp_path / "odd_net_G.pth")
        response = client.post(
            "/v1/models",
            files={"file": ("odd_net_G.pth", (tmp_path / "odd_net_G.pth").read_bytes())},
        )
        failed(wait_job(client, response.json()["id"]), "unsupported_checkpoint")


def test_training_on_broken_datasets_names_no_path(stack, error_messages, tmp_path):
    client, root = stack
    with provoked(error_messages, root, at_least=2) as seen:
        images = zip_bytes({f"faces/{i}.png": truncated_png() for i in range(3)})
        paired = zip_bytes({f"pairs/train/{i}.png": truncated_png() for i in range(3)})
        runs = []
        for archive, kind, run in (
            (
                images,
                "images",
                {
                    "family": "pggan",
                    "config": {
                        "image_size": 16,
                        "phase_images": 100,
                        "fmap_base": 64,
                        "fmap_max": 16,
                        "latent_dim": 16,
                        "batch_sizes": "4:4,8:4,16:4",
                    },
                },
            ),
            (
                paired,
                "paired",
                {
                    "family": "pix2pix",
                    "config": {"image_size": 32, "batch_size": 2, "steps": 2, "width": 4},
                },
            ),
        ):
            uploaded = client.post(
                "/v1/datasets",
                data={"name": kind, "kind": kind},
                files={"archive": (f"{kind}.zip", archive, "application/zip")},
            )
            assert uploaded.status_code == 201, uploaded.text  # headers read: images counted
            response = client.post(
                "/v1/training-runs", json={**run, "dataset": uploaded.json()["id"]}
            )
            assert response.status_code == 202, response.text
            runs.append(response.json()["id"])
        messages = [failed(wait_job(client, run), "bad_dataset") for run in runs]
    assert "unreadable" in messages[0] and "train/" in messages[1], messages
    assert len(seen) >= 2


def test_broken_stored_files_fail_jobs_without_naming_paths(stack, error_messages, tmp_path):
    client, root = stack
    translator = import_zip(client, model_zip_of(tiny_translator(), tmp_path / "t"))
    sampler = import_zip(client, model_zip_of(tiny_sampler(), tmp_path / "s"))
    assert translator["status"] == sampler["status"] == "succeeded", (translator, sampler)
    translator_id, sampler_ref = translator["result"]["model"], sampler["result"]["model"]
    drawn = client.post("/v1/samples", json={"model": sampler_ref, "count": 1, "seed": 1})
    drawn_job = wait_job(client, drawn.json()["id"])
    assert drawn_job["status"] == "succeeded", drawn_job
    with provoked(error_messages, root, at_least=2):
        latents = root / "results" / drawn_job["id"] / "latents.npy"
        latents.write_bytes(b"\x93NUMPY broken header")
        response = client.post(
            "/v1/samples", json={"model": sampler_ref, "latents": {"job": drawn_job["id"]}}
        )
        failed(wait_job(client, response.json()["id"]), "bad_latents")
        model_id = translator_id.split("@")[0]
        stored = [
            p
            for p in (root / "models").rglob("model.safetensors")
            if model_id in p.relative_to(root / "models").as_posix()
        ]
        assert stored, f"no stored weights of {model_id}"
        for path in stored:
            path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00broken")
        response = client.post(
            "/v1/translations",
            files={"image": ("in.png", png(32, 32), "image/png")},
            data={"model": translator_id},
        )
        if response.status_code == 202:
            job = wait_job(client, response.json()["id"])
            assert job["status"] == "failed", job
        else:
            assert 400 <= response.status_code < 500, response.text


def test_the_scan_catches_a_path_and_the_placeholder(tmp_path):
    """The mechanism itself: a message naming the root, or holding the placeholder, is a leak."""
    messages = [
        ("a", f"cannot read {tmp_path}/models/x/model.safetensors"),
        ("b", f"the zip is not a model: {STORAGE_PLACEHOLDER}/uploads/x/model.zip"),
        ("c", "the entry 'm/model.safetensors' is corrupt"),
    ]
    assert [where for where, _ in path_leaks(messages, [tmp_path])] == ["a", "b"]
