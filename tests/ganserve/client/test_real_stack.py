"""The client against the real stack: embedded Redis, the gateway over HTTP, real Celery workers,
tiny models. One stack for the module, with API keys (the operator's first, then a user's): the
tiny models are the operator's, shared with every key."""

import asyncio
import io
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from ganserve.client import (
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    Forbidden,
    InvalidField,
    JobCancelled,
    JobFailed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedType,
)
from tests.e2e.stack import png, running_stack, save_tiny_models
from tests.ganserve.client import run_async
from training.demo import build_demo

OPERATOR, USER = "operator-key-1", "user-key-1"
MAX_UPLOAD = 200_000  # bytes: a 300x300 random PNG is larger


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("client-stack")
    save_tiny_models(data_dir / "models", translator="tiny-p2p", sampler="tiny-ugan")
    env = {"GANSERVE_API_KEYS": f"{OPERATOR},{USER}", "GANSERVE_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)}
    with running_stack(data_dir, **env) as (http, _stack):
        yield str(http.base_url).rstrip("/")


@pytest.fixture
def client(stack):
    with Client(stack, api_key=USER) as client:
        yield client


def test_translate_a_path_bytes_a_file_and_a_pil_image(client, tmp_path):
    content = png(50, 37, seed=1)
    path = tmp_path / "in.png"
    path.write_bytes(content)
    with path.open("rb") as file:
        given = [path, str(path), content, file, Image.open(io.BytesIO(content))]
        pictures = [client.translate(image, "tiny-p2p", seed=4) for image in given]
    for picture in pictures:
        assert isinstance(picture, Image.Image) and picture.format == "PNG"
        assert picture.size == (50, 37)
    arrays = [np.asarray(p) for p in pictures]
    assert all(np.array_equal(arrays[0], a) for a in arrays[1:])  # same input, same seed


def test_same_seed_same_pixels(client):
    first = client.sample("tiny-ugan", 2, seed=11, class_label=1)
    again = client.sample("tiny-ugan", 2, seed=11, class_label=1)
    other = client.sample("tiny-ugan", 2, seed=12, class_label=1)
    assert [p.size for p in first] == [(32, 32)] * 2
    assert [p.tobytes() for p in first] == [p.tobytes() for p in again]
    assert first[0].tobytes() != other[0].tobytes()


def test_submit_and_follow_the_events(client):
    job = client.submit_sample("tiny-ugan", 3, seed=2, class_label=0)
    assert job.status in ("queued", "running") and job.kind == "sample"
    events = list(job.events())
    assert events[0].type == "status"
    assert events[-1].type == "status" and events[-1].status == "succeeded"
    ids = [int(e.event_id) for e in events]
    assert ids == sorted(set(ids))  # increasing, none twice
    assert job.status == "succeeded" and job.progress == 1.0
    assert [p.size for p in job.images()] == [(32, 32)] * 3
    assert [j.id for j in client.jobs(kind="sample", limit=1)] == [job.id]


def test_inspect_interpolate_and_project(client):
    translated = client.submit_translation(png(32, 32, seed=3), "tiny-p2p")
    inspection = client.inspect(None, "tiny-p2p", source_job=translated.wait())
    assert inspection.map.size == (32, 32) and inspection.overlay.size[0] >= 32
    assert inspection.global_score is None and 0 <= inspection.map_min <= inspection.map_mean <= 1
    walk = client.interpolate("tiny-ugan", 1, {"seed": 2, "class_label": 2}, frames=3)
    assert len(walk.frames) == 3 and set(walk.animation) == {"webp", "gif"}
    assert client.download(walk.animation["gif"]).startswith(b"GIF8")
    projection = client.project(walk.frames[0], "tiny-ugan", steps=3, seed=0)
    assert projection.reconstruction.size == projection.target.size == (32, 32)
    assert len(projection.latent) == 8 and projection.psnr is not None


def test_cancel_delete_and_their_conflicts(client):
    running = client.submit_projection(png(32, 32), "tiny-ugan", steps=5000)
    queued = client.submit_projection(png(32, 32), "tiny-ugan", steps=5000)
    with pytest.raises(Conflict) as not_ended:
        queued.delete()
    assert not_ended.value.code == "job_not_ended"
    queued.cancel()
    assert queued.status == "cancelled"  # a queued job is cancelled at once
    while running.refresh().status == "queued":
        time.sleep(0.05)
    running.cancel()
    with pytest.raises(JobCancelled):
        running.result(timeout=120)
    with pytest.raises(Conflict) as ended:
        running.cancel()
    assert ended.value.code == "job_ended"
    for job in (running, queued):
        job.delete()
        with pytest.raises(NotFound):
            job.refresh()


def test_train_export_import_and_delete(client, tmp_path):
    folder = build_demo("edges2photo", tmp_path / "pairs", size=32, count=4)
    dataset = client.upload_dataset(folder, kind="paired")
    assert dataset["image_count"] > 0 and dataset["id"] in {d["id"] for d in client.datasets()}
    seen = []
    config = {"image_size": 32, "batch_size": 2, "steps": 6, "width": 4, "log_every": 1}
    model = client.train(dataset, "pix2pix", config, name="client-run", on_progress=seen.append)
    assert model["id"] == "client-run" and model["family"] == "pix2pix"
    assert seen and seen[-1].status == "succeeded"
    assert client.translate(png(20, 20), model["id"]).size == (20, 20)
    content = client.export_model(model["id"])
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert "client-run/config.json" in archive.namelist()
    path = client.export_model(model["id"], path=tmp_path / "export.zip")
    assert path.read_bytes() == content
    imported = client.import_model(path, id="client-copy", name="A copy")
    assert imported["id"] == "client-copy" and imported["name"] == "A copy"
    assert "client-copy" in {m["id"] for m in client.models()}
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(broken, "w") as out:
        for name in source.namelist():
            out.writestr(
                name, b"not weights" if name.endswith(".safetensors") else source.read(name)
            )
    with pytest.raises(JobFailed) as failed:
        client.import_model(broken, id="client-broken")
    assert failed.value.code == "not_a_model" and failed.value.job["status"] == "failed"
    client.delete_model("client-copy")
    with pytest.raises(NotFound):
        client.model("client-copy")
    client.delete_dataset(dataset["id"])
    with pytest.raises(NotFound) as gone:
        client.dataset(dataset["id"])
    assert gone.value.code == "dataset_not_found"


def test_every_error_of_a_request_is_typed(client, stack):
    with pytest.raises(NotFound) as missing:
        client.translate(png(8, 8), "no-such-model")
    assert missing.value.status == 404 and missing.value.code == "model_not_found"
    with pytest.raises(InvalidField) as invalid:
        client.sample("tiny-ugan", 0)
    assert invalid.value.field == "count" and invalid.value.status == 422
    truncated = png(64, 64)
    with pytest.raises(BadRequest) as bad:
        client.translate(truncated[: len(truncated) // 2], "tiny-p2p")
    assert bad.value.status == 400
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    with pytest.raises(UnsupportedType):
        client.translate(gif.getvalue(), "tiny-p2p")
    with pytest.raises(PayloadTooLarge):
        client.translate(png(300, 300), "tiny-p2p")
    with pytest.raises(Forbidden):
        client.delete_model("tiny-p2p")  # the operator's: for use only
    for key in ("wrong-key", None):
        with Client(stack, api_key=key) as stranger, pytest.raises(Unauthorized) as refused:
            stranger.models()
        assert refused.value.status == 401 and refused.value.detail


def test_async_concurrent_translations(stack):
    inputs = [png(24 + k, 20, seed=k) for k in range(8)]

    async def translate_all() -> list[Image.Image]:
        async with AsyncClient(stack, api_key=USER) as client:
            job = await client.submit_sample("tiny-ugan", 1, seed=5, class_label=2)
            kinds = [event.type async for event in job.events()]
            assert kinds[0] == "status" and job.status == "succeeded"
            return await asyncio.gather(*(client.translate(i, "tiny-p2p") for i in inputs))

    pictures = run_async(translate_all())
    assert [p.size for p in pictures] == [(24 + k, 20) for k in range(8)]
