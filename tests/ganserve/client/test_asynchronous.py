"""The asyncio client against a scripted server: the same requests and results as `Client`."""

import asyncio
import json

import httpx
import pytest

from ganserve.client import AsyncClient, RetryPolicy
from ganserve.client.errors import NotFound
from tests.ganserve.client import run_async
from tests.ganserve.client.fake_server import FakeServer, job, png, problem
from tests.ganserve.client.test_jobs import sse, stream
from tests.ganserve.client.test_sync import finished

URL = "http://ganserve.test"
FAST = RetryPolicy(retries=2, backoff=0.001, max_backoff=0.01, max_retry_after=0.01)


def run(server: FakeServer, scenario):
    """Run `scenario(client)` on an AsyncClient of `server`."""

    async def main():
        async with AsyncClient(URL, retries=FAST, transport=server.transport()) as client:
            return await scenario(client)

    return run_async(main())


def test_concurrent_translations():
    counter = iter(range(100))

    def created(request: httpx.Request) -> httpx.Response:
        return httpx.Response(202, json=job(f"t{next(counter)}"))

    server = FakeServer().on("POST", "/v1/translations", created)
    for k in range(8):
        finished(server, f"t{k}", {"images": [f"/v1/jobs/t{k}/images/0"]})

    async def scenario(client):
        return await asyncio.gather(*(client.translate(png(), "p2p", seed=k) for k in range(8)))

    pictures = run(server, scenario)
    assert [p.size for p in pictures] == [(1, 1)] * 8
    assert len(server.calls("POST", "/v1/translations")) == 8


def test_sample_inspect_interpolate_project():
    server = FakeServer().json("POST", "/v1/samples", job("s1", kind="sample"), status=202)
    finished(server, "s1", {"images": ["/v1/jobs/s1/images/0"]}, "sample")
    server.json("POST", "/v1/inspections", job("i1"), status=202)
    finished(server, "i1", {"images": ["/v1/jobs/i1/images/0", "/v1/jobs/i1/images/1"]})
    server.json("POST", "/v1/interpolations", job("n1"), status=202)
    finished(server, "n1", {"images": ["/v1/jobs/n1/images/0", "/v1/jobs/n1/images/1"]})
    server.json("POST", "/v1/projections", job("p1"), status=202)
    finished(server, "p1", {"images": ["/v1/jobs/p1/images/0", "/v1/jobs/p1/images/1"]})

    async def scenario(client):
        return (
            await client.sample("digits", 1, seed=1),
            await client.inspect(png(), "ugan", class_label=1),
            await client.interpolate("digits", 1, 2, frames=2),
            await client.project(png(), "digits"),
        )

    samples, inspection, interpolation, projection = run(server, scenario)
    assert len(samples) == 1 and inspection.overlay.size == (2, 2)
    assert len(interpolation.frames) == 2 and projection.target.size == (2, 2)
    assert json.loads(server.calls("POST", "/v1/samples")[0].content)["seed"] == 1


def test_jobs_pages_and_models():
    pages = [{"jobs": [job("j2")], "next": "c"}, {"jobs": [job("j1")], "next": None}]
    server = FakeServer().on("GET", "/v1/jobs", *(httpx.Response(200, json=p) for p in pages))
    server.json("GET", "/v1/models", {"models": [{"id": "m"}]})
    server.on("GET", "/v1/models/nope", problem(404, "model_not_found"))

    async def scenario(client):
        ids = [j.id async for j in client.jobs()]
        with pytest.raises(NotFound):
            await client.model("nope")
        return ids, await client.models()

    assert run(server, scenario) == (["j2", "j1"], [{"id": "m"}])


def test_datasets_training_and_exports(tmp_path):
    folder = tmp_path / "pairs"
    folder.mkdir()
    (folder / "1.png").write_bytes(png())
    server = FakeServer().json("POST", "/v1/datasets", {"id": "d1"}, status=201)
    server.json("POST", "/v1/training-runs", job("r1", kind="training"), status=202)
    done = job("r1", "succeeded", result={"model": "run", "version": 3})
    events = sse(("1", "status", job("r1", "running")), ("2", "status", done))
    server.on("GET", "/v1/jobs/r1/events", stream(events))
    server.json("GET", "/v1/models/run@3", {"id": "run", "version": 3})
    ready = {"status": "ready", "url": "/v1/models/run@3/exports/safetensors", "job": None}
    server.json("POST", "/v1/models/run@3/exports", ready, status=201)
    server.on("GET", "/v1/models/run@3/exports/safetensors", httpx.Response(200, content=b"PK"))
    seen = []

    async def on_progress(running):
        seen.append(running.status)

    async def scenario(client):
        dataset = await client.upload_dataset(folder, "pairs", kind="paired")
        model = await client.train(dataset, "pix2pix", on_progress=on_progress)
        path = await client.export_model("run@3", path=tmp_path / "run.zip")
        return model, await client.export_model("run@3"), path

    model, content, path = run(server, scenario)
    assert model == {"id": "run", "version": 3} and seen == ["running", "succeeded"]
    assert content == b"PK" and path.read_bytes() == b"PK"
    assert not list(tmp_path.glob("*.zip.*"))  # no temporary left behind
