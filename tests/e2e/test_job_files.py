"""A job's files in the object store, end to end: the real stack (embedded Redis, gateway, Celery
workers) on a local folder and on the real S3 server (SeaweedFS), with API keys and
GANSERVE_RESULT_LINKS=presigned.

- a translation, a sample, an inspection (of an upload and of a source job), an interpolation
  and a projection succeed; their uploads and results are objects of the store that decode with
  Pillow (NumPy for latents), and the result URLs give the same bytes; results asked for as
  WebP or JPEG are `<k>.webp`, `<k>.jpg` objects, served with their own Content-Type;
- on S3 a result URL answers 307 to a presigned URL of the store, which gives the file without
  any key and carries its expiry (GANSERVE_PRESIGNED_URL_SECONDS); a local store serves through
  the gateway; the projection's live preview always streams through the gateway;
- the Python client follows those redirects (its key stays with the gateway);
- deleting a job removes its objects;
- a truncated upload and an oversize one are refused with nothing written to the store and no
  spool file left.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import numpy as np
import pytest
from PIL import Image

from core.object_store import ObjectStore
from ganserve.client import Client
from tests.e2e.stack import png, running_stack, save_tiny_models, wait_job
from tests.s3_server import aws_environment

KEY = "files-key-1"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_UPLOAD = 100_000  # bytes (GANSERVE_MAX_UPLOAD_BYTES): a 256 px noise PNG is about 197 kB
LINK_SECONDS = 60


@dataclass
class Setup:
    """A running stack, the store it uses, and where its gateway spools uploads."""

    backend: str
    http: httpx.Client
    url: str
    objects: ObjectStore
    spool: Path
    data_dir: Path

    def local_files(self, job_id: str) -> list[Path]:
        """The job's files on the local disk: on S3, none."""
        folders = [self.data_dir / top / job_id for top in ("uploads", "results")]
        return [p for folder in folders if folder.exists() for p in folder.rglob("*")]


@pytest.fixture(scope="module", params=["local", "s3"])
def setup(request, tmp_path_factory) -> Iterator[Setup]:
    data_dir = tmp_path_factory.mktemp(f"files-{request.param}")
    spool = tmp_path_factory.mktemp("spool")
    save_tiny_models(data_dir / "models", translator="tiny-p2p", sampler="tiny-u")
    env = {
        "GANSERVE_API_KEYS": KEY,
        "GANSERVE_RESULT_LINKS": "presigned",
        "GANSERVE_PRESIGNED_URL_SECONDS": str(LINK_SECONDS),
        "GANSERVE_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "TMPDIR": str(spool),
    }
    with ExitStack() as stack:
        if request.param == "s3":
            stack.enter_context(aws_environment(request.getfixturevalue("s3_server")))
            env["GANSERVE_STORAGE_URL"] = f"s3://ganserve-tests/{uuid.uuid4().hex[:16]}"
        objects = ObjectStore.open(env.get("GANSERVE_STORAGE_URL"), data_dir)
        if not objects.is_local:  # the models in the store too, wherever workers read them
            objects.upload_folder("models", data_dir / "models")
        http, _running = stack.enter_context(running_stack(data_dir, **env))
        http.headers.update(AUTH)
        url = str(http.base_url).rstrip("/")
        yield Setup(request.param, http, url, objects, spool, data_dir)


def succeeded(setup: Setup, response: httpx.Response) -> dict:
    assert response.status_code == 202, response.text
    job = wait_job(setup.http, response.json()["id"], key=KEY)
    assert job["status"] == "succeeded", job
    return job


def fetch(setup: Setup, url: str) -> httpx.Response:
    """A result URL of the job JSON, fetched as a client does: from the gateway with the key;
    on S3 the gateway's 307 is followed to the store without any key."""
    answer = setup.http.get(url, follow_redirects=False)
    if setup.backend == "local":
        assert answer.status_code == 200, answer.text
        return answer
    assert answer.status_code == 307, answer.text
    location = answer.headers["location"]
    assert not location.startswith(setup.url)
    assert parse_qs(urlparse(location).query)["X-Amz-Expires"] == [str(LINK_SECONDS)]
    fetched = httpx.get(location)  # no Authorization: the signature is the permission
    assert fetched.status_code == 200, fetched.text
    return fetched


def stored_png(setup: Setup, key: str) -> bytes:
    """The object `key`, which must be a PNG that Pillow decodes."""
    data = setup.objects.read(key)
    assert data is not None, key
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        image.load()
    return data


def check_images(setup: Setup, job: dict) -> list[Image.Image]:
    """The job's result images: objects of the store, and the same bytes from their URLs."""
    pictures = []
    for k, url in enumerate(job["result"]["images"]):
        data = stored_png(setup, f"results/{job['id']}/{k}.png")
        answer = fetch(setup, url)
        assert answer.headers["content-type"] == "image/png"
        assert answer.content == data
        pictures.append(Image.open(io.BytesIO(data)))
    assert setup.local_files(job["id"]) == [] or setup.backend == "local"
    return pictures


def check_latents(setup: Setup, job: dict) -> np.ndarray:
    data = setup.objects.read(f"results/{job['id']}/latents.npy")
    assert data is not None
    array = np.load(io.BytesIO(data), allow_pickle=False)
    assert fetch(setup, job["result"]["latents_url"]).content == data
    assert array.shape == (job["result"]["latent_count"], job["result"]["latent_dim"])
    return array


def test_a_translation_reads_its_upload_from_the_store(setup):
    job = succeeded(
        setup,
        setup.http.post(
            "/v1/translations",
            data={"model": "tiny-p2p", "seed": "1"},
            files={"image": ("a.png", png(40, 28, seed=1), "image/png")},
        ),
    )
    assert stored_png(setup, f"uploads/{job['id']}/input.png") == png(40, 28, seed=1)  # as sent
    (result,) = check_images(setup, job)
    assert result.size == (40, 28)
    with httpx.Client(base_url=setup.url) as stranger:  # the gateway still checks the key
        assert stranger.get(job["result"]["images"][0]).status_code == 401


def test_a_sample_and_an_inspection_of_it(setup):
    sample = succeeded(
        setup, setup.http.post("/v1/samples", json={"model": "tiny-u", "count": 2, "seed": 4})
    )
    assert [p.size for p in check_images(setup, sample)] == [(32, 32), (32, 32)]
    assert check_latents(setup, sample).dtype == np.float32
    inspection = succeeded(
        setup,
        setup.http.post(
            "/v1/inspections",
            data={"model": "tiny-u", "source_job": sample["id"], "source_image": "1"},
        ),
    )
    stored = stored_png(setup, f"uploads/{inspection['id']}/image.png")  # copied from the sample
    assert stored == setup.objects.read(f"results/{sample['id']}/1.png")
    heat, overlay = check_images(setup, inspection)
    assert (heat.mode, heat.size) == ("L", (32, 32)) and overlay.height > 32


def test_an_inspection_of_an_upload_with_its_pix2pix_input(setup):
    job = succeeded(
        setup,
        setup.http.post(
            "/v1/inspections",
            data={"model": "tiny-p2p"},
            files={
                "image": ("b.png", png(24, 20, seed=2), "image/png"),
                "input": ("a.png", png(24, 20, seed=3), "image/png"),
            },
        ),
    )
    for name in ("image.png", "input.png"):
        stored_png(setup, f"uploads/{job['id']}/{name}")
    assert check_images(setup, job)[0].size == (24, 20)


def test_an_interpolation_keeps_frames_animations_and_latents(setup):
    body = {"model": "tiny-u", "start": {"seed": 1}, "end": {"seed": 2}, "frames": 3}
    job = succeeded(setup, setup.http.post("/v1/interpolations", json=body))
    assert len(check_images(setup, job)) == 3
    assert check_latents(setup, job).shape[0] == 3
    for fmt, url in job["result"]["animation"].items():
        data = setup.objects.read(f"results/{job['id']}/animation.{fmt}")
        assert data is not None and fetch(setup, url).content == data
        with Image.open(io.BytesIO(data)) as animation:
            assert animation.format == fmt.upper() and animation.n_frames == 3


def test_a_projection_writes_its_preview_and_results(setup):
    job = succeeded(
        setup,
        setup.http.post(
            "/v1/projections",
            data={"model": "tiny-u", "steps": "12", "seed": "1", "class_label": "0"},
            files={"image": ("t.png", png(50, 30, seed=5), "image/png")},
        ),
    )
    stored_png(setup, f"uploads/{job['id']}/input.png")
    preview = stored_png(setup, f"uploads/{job['id']}/preview.png")
    answer = setup.http.get(f"/v1/jobs/{job['id']}/preview", follow_redirects=False)
    assert answer.status_code == 200 and answer.content == preview  # always the gateway's
    part = setup.http.get(f"/v1/jobs/{job['id']}/preview", headers={"Range": "bytes=0-7"})
    assert (part.status_code, part.content) == (206, preview[:8])
    reconstruction, target = check_images(setup, job)
    assert reconstruction.size == target.size == (32, 32)
    assert check_latents(setup, job).tolist() == [job["result"]["latent"]]


def test_webp_and_jpeg_results_are_objects_of_their_own_type(setup):
    translation = succeeded(
        setup,
        setup.http.post(
            "/v1/translations",
            data={"model": "tiny-p2p", "format": "webp", "quality": "75"},
            files={"image": ("a.png", png(36, 20, seed=8), "image/png")},
        ),
    )
    sample = succeeded(
        setup,
        setup.http.post(
            "/v1/samples", json={"model": "tiny-u", "count": 2, "seed": 4, "format": "jpeg"}
        ),
    )
    for job, name, media_type, size in (
        (translation, "0.webp", "image/webp", (36, 20)),
        (sample, "1.jpg", "image/jpeg", (32, 32)),
    ):
        data = setup.objects.read(f"results/{job['id']}/{name}")
        assert data is not None
        answer = fetch(setup, job["result"]["images"][int(name[0])])
        assert answer.headers["content-type"] == media_type  # the store's own, on S3
        assert answer.content == data
        with Image.open(io.BytesIO(data)) as image:
            assert image.get_format_mimetype() == media_type and image.size == size
    assert setup.objects.read(f"results/{translation['id']}/0.png") is None
    inspection = succeeded(  # of the sample's JPEG image 1
        setup,
        setup.http.post(
            "/v1/inspections",
            data={"model": "tiny-u", "source_job": sample["id"], "source_image": "1"},
        ),
    )
    stored_png(setup, f"uploads/{inspection['id']}/image.png")
    assert check_images(setup, inspection)[0].size == (32, 32)


def test_the_client_follows_result_links(setup):
    with Client(setup.url, api_key=KEY) as client:
        picture = client.translate(png(20, 16, seed=6), "tiny-p2p", seed=2)
    assert picture.size == (20, 16)


def test_deleting_a_job_removes_its_objects(setup):
    job = succeeded(
        setup,
        setup.http.post(
            "/v1/translations",
            data={"model": "tiny-p2p"},
            files={"image": ("a.png", png(16, 16, seed=7), "image/png")},
        ),
    )
    prefixes = [f"uploads/{job['id']}", f"results/{job['id']}"]
    assert all(setup.objects.list(prefix) for prefix in prefixes)
    assert setup.http.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert [setup.objects.list(prefix) for prefix in prefixes] == [[], []]
    assert setup.http.get(job["result"]["images"][0]).status_code == 404


def uploads(setup: Setup) -> list[str]:
    return [info.key for info in setup.objects.list("uploads")]


@pytest.mark.parametrize(
    ("picture", "status", "code"),
    [
        (png(40, 28)[:-200], 400, "bad_image"),  # truncated
        (png(256, 256), 413, "too_large"),  # over GANSERVE_MAX_UPLOAD_BYTES
    ],
)
def test_a_refused_upload_leaves_nothing_in_the_store(setup, picture, status, code):
    before, jobs = uploads(setup), setup.http.get("/v1/jobs").json()["jobs"]
    for path in ("/v1/translations", "/v1/projections"):
        model = "tiny-p2p" if path == "/v1/translations" else "tiny-u"
        answer = setup.http.post(
            path, data={"model": model}, files={"image": ("x.png", picture, "image/png")}
        )
        assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert uploads(setup) == before
    assert setup.http.get("/v1/jobs").json()["jobs"] == jobs
    assert [p for p in setup.spool.iterdir() if p.name.startswith("ganserve-spool-")] == []
