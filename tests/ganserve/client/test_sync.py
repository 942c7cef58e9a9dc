"""The blocking client against a scripted server: configuration, what each method sends, and
what it returns."""

import io
import json
import urllib.parse
import zipfile

import httpx
import pytest
from PIL import Image

from ganserve.client import Client, Inspection, Interpolation, Projection, RetryPolicy
from ganserve.client.errors import InvalidField, JobFailed
from tests.ganserve.client.fake_server import FakeServer, job, png, problem

URL = "http://ganserve.test"
FAST = RetryPolicy(retries=2, backoff=0.001, max_backoff=0.01, max_retry_after=0.01)


def client_of(server: FakeServer, **options) -> Client:
    return Client(URL, retries=FAST, transport=server.transport(), **options)


def finished(server: FakeServer, job_id: str, result: dict, kind: str = "translation") -> None:
    """Script a job that is queued when created and has succeeded at the first poll."""
    server.json("GET", f"/v1/jobs/{job_id}", job(job_id, "succeeded", kind=kind, result=result))
    for k, url in enumerate(result.get("images", [])):
        server.on("GET", url, httpx.Response(200, content=png(k + 1, k + 1)))


def form(request: httpx.Request) -> dict[str, str]:
    """The plain fields of a form body (multipart, or URL-encoded when it has no file)."""
    if "boundary=" not in request.headers["content-type"]:
        return dict(urllib.parse.parse_qsl(request.content.decode()))
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    fields = {}
    for part in request.content.split(b"--" + boundary):
        head, _, body = part.partition(b"\r\n\r\n")
        if b'name="' in head and b"filename=" not in head:
            name = head.split(b'name="')[1].split(b'"')[0].decode()
            fields[name] = body.rstrip(b"\r\n").decode()
    return fields


def test_url_and_key_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GANSERVE_URL", "http://elsewhere:9000/")
    monkeypatch.setenv("GANSERVE_API_KEY", "env-key")
    server = FakeServer().json("GET", "/v1/models", {"models": []})
    with Client(transport=server.transport()) as client:
        assert client.url == "http://elsewhere:9000"
        assert client.models() == []
    sent = server.requests[0]
    assert sent.url.host == "elsewhere" and sent.headers["authorization"] == "Bearer env-key"
    assert sent.headers["user-agent"].startswith("ganserve-client/")
    with Client("http://given:1", "given-key", transport=server.transport()) as client:
        client.models()
    assert server.requests[-1].url.host == "given"
    assert server.requests[-1].headers["authorization"] == "Bearer given-key"


def test_no_key_no_header_and_a_local_default(monkeypatch):
    monkeypatch.delenv("GANSERVE_URL", raising=False)
    monkeypatch.delenv("GANSERVE_API_KEY", raising=False)
    server = FakeServer().json("GET", "/v1/models", {"models": []})
    with Client(transport=server.transport()) as client:
        assert client.url == "http://127.0.0.1:8000"
        client.models()
    assert "authorization" not in server.requests[0].headers


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="http"):
        Client("ftp://x")
    with pytest.raises(ValueError, match="timeout"):
        Client(URL, timeout=0)


def test_the_context_manager_closes_the_connections():
    with Client(URL, transport=FakeServer().transport()) as client:
        pass
    assert client._http.is_closed


def test_translate_sends_the_image_and_returns_a_picture(tmp_path):
    server = FakeServer().json("POST", "/v1/translations", job("t1"), status=202)
    finished(server, "t1", {"images": ["/v1/jobs/t1/images/0"]})
    path = tmp_path / "edges.png"
    path.write_bytes(png(9, 9))
    with client_of(server) as client:
        picture = client.translate(path, "p2p", seed=5, mode="resize")
    assert isinstance(picture, Image.Image) and picture.size == (1, 1)
    sent = server.calls("POST", "/v1/translations")[0]
    assert form(sent) == {"model": "p2p", "seed": "5", "mode": "resize"}
    assert b'filename="edges.png"' in sent.content and png(9, 9) in sent.content


def test_sample_sends_json_without_unset_fields():
    server = FakeServer().json("POST", "/v1/samples", job("s1", kind="sample"), status=202)
    urls = [f"/v1/jobs/s1/images/{k}" for k in range(3)]
    finished(server, "s1", {"images": urls}, "sample")
    with client_of(server) as client:
        pictures = client.sample("digits", 3, seed=11, filter={"method": "drs"})
    assert [p.size for p in pictures] == [(1, 1), (2, 2), (3, 3)]
    body = json.loads(server.calls("POST", "/v1/samples")[0].content)
    assert body == {"model": "digits", "count": 3, "seed": 11, "filter": {"method": "drs"}}


def test_unknown_options_are_a_type_error():
    with Client(URL, transport=FakeServer().transport()) as client, pytest.raises(TypeError):
        client.sample("digits", 1, colour="red")  # type: ignore[call-arg]


def test_inspect_interpolate_and_project_return_their_results(tmp_path):
    server = FakeServer()
    server.json("POST", "/v1/inspections", job("i1", kind="inspection"), status=202)
    finished(
        server,
        "i1",
        {
            "images": ["/v1/jobs/i1/images/0", "/v1/jobs/i1/images/1"],
            "global_score": 0.25,
            "map_mean": 0.5,
            "map_min": 0.125,
            "least_real_box": [0, 1, 2, 3],
            "class_label": 2,
        },
        "inspection",
    )
    server.json("POST", "/v1/interpolations", job("n1", kind="interpolation"), status=202)
    animation = {"webp": "/v1/jobs/n1/animation.webp", "gif": "/v1/jobs/n1/animation.gif"}
    finished(
        server,
        "n1",
        {
            "images": [f"/v1/jobs/n1/images/{k}" for k in range(3)],
            "animation": animation,
            "latents_url": "/v1/jobs/n1/latents.npy",
            "start_class": 0,
            "end_class": 1,
        },
        "interpolation",
    )
    server.on("GET", "/v1/jobs/n1/animation.gif", httpx.Response(200, content=b"GIF89a"))
    server.json("POST", "/v1/projections", job("p1", kind="projection"), status=202)
    finished(
        server,
        "p1",
        {
            "images": ["/v1/jobs/p1/images/0", "/v1/jobs/p1/images/1"],
            "latent": [0.5, -0.5],
            "class_label": None,
            "psnr": 21.5,
            "ssim": 0.7,
            "loss": 0.01,
        },
        "projection",
    )
    with client_of(server) as client:
        inspection = client.inspect(None, "ugan", source_job=job("t9"), source_image=1)
        interpolation = client.interpolate("digits", 3, [0.0, 1.0], frames=3, path="linear")
        projection = client.project(png(), "digits", steps=10)
        gif = client.download(interpolation.animation["gif"])
        client.download(interpolation.animation["gif"], tmp_path / "walk.gif")
    assert isinstance(inspection, Inspection)
    assert (inspection.map.size, inspection.overlay.size) == ((1, 1), (2, 2))
    assert inspection.global_score == 0.25 and inspection.least_real_box == (0, 1, 2, 3)
    assert inspection.class_label == 2 and inspection.job["id"] == "i1"
    assert form(server.calls("POST", "/v1/inspections")[0]) == {
        "model": "ugan",
        "source_job": "t9",
        "source_image": "1",
    }
    assert isinstance(interpolation, Interpolation) and len(interpolation.frames) == 3
    assert interpolation.animation == animation and (
        interpolation.start_class,
        interpolation.end_class,
    ) == (0, 1)
    body = json.loads(server.calls("POST", "/v1/interpolations")[0].content)
    assert body["start"] == {"seed": 3} and body["end"] == {"latent": [0.0, 1.0]}
    assert (body["frames"], body["path"]) == (3, "linear")
    assert isinstance(projection, Projection) and projection.latent == [0.5, -0.5]
    assert projection.reconstruction.size == (1, 1) and projection.psnr == 21.5
    assert gif == b"GIF89a" and (tmp_path / "walk.gif").read_bytes() == b"GIF89a"


def test_a_failed_job_raises_job_failed_from_the_blocking_method():
    server = FakeServer().json("POST", "/v1/translations", job("t1"), status=202)
    error = {"code": "time_limit", "message": "Too slow."}
    server.json("GET", "/v1/jobs/t1", job("t1", "failed", error=error))
    with client_of(server) as client, pytest.raises(JobFailed, match="time_limit: Too slow."):
        client.translate(png(), "p2p")


def test_an_invalid_field_names_it():
    invalid = problem(
        422, "invalid_field", "Bad count.", errors=[{"field": "count", "message": "too big"}]
    )
    server = FakeServer().on("POST", "/v1/samples", invalid)
    with client_of(server) as client, pytest.raises(InvalidField) as caught:
        client.sample("digits", 1000)
    assert caught.value.field == "count"
    assert len(server.requests) == 1


def test_jobs_walk_every_page_with_the_cursor():
    pages = [
        {"jobs": [job("j5"), job("j4")], "next": "c1"},
        {"jobs": [job("j3"), job("j2")], "next": "c2"},
        {"jobs": [job("j1")], "next": None},
    ]
    server = FakeServer().on("GET", "/v1/jobs", *(httpx.Response(200, json=p) for p in pages))
    with client_of(server) as client:
        ids = [j.id for j in client.jobs(kind="sample", status="succeeded", model="digits")]
    assert ids == ["j5", "j4", "j3", "j2", "j1"]
    params = [dict(r.url.params) for r in server.requests]
    assert params[0] == {"kind": "sample", "status": "succeeded", "model": "digits", "limit": "100"}
    assert [p.get("cursor") for p in params] == [None, "c1", "c2"]


def test_jobs_stop_at_the_limit():
    page = {"jobs": [job(f"j{k}") for k in range(3)], "next": "more"}
    server = FakeServer().json("GET", "/v1/jobs", page)
    with client_of(server) as client:
        assert [j.id for j in client.jobs(limit=2)] == ["j0", "j1"]
        assert list(client.jobs(limit=0)) == []
    assert len(server.requests) == 1 and server.requests[0].url.params["limit"] == "2"


def test_jobs_of_a_server_without_cursors_is_one_page():
    server = FakeServer().json("GET", "/v1/jobs", {"jobs": [job("j1")]})
    with client_of(server) as client:
        assert [j.id for j in client.jobs()] == ["j1"]


def test_upload_dataset_zips_a_folder(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    (folder / "a.png").write_bytes(png())
    dataset = {"id": "d1", "name": "faces", "kind": "images", "image_count": 1}
    server = FakeServer().json("POST", "/v1/datasets", dataset, status=201)
    server.json("GET", "/v1/datasets", {"datasets": [dataset]})
    server.on("DELETE", "/v1/datasets/d1", httpx.Response(204))
    with client_of(server) as client:
        assert client.upload_dataset(folder, kind="images") == dataset
        assert client.datasets() == [dataset]
        assert client.delete_dataset("d1") is None
    sent = server.calls("POST", "/v1/datasets")[0]
    assert form(sent) == {"kind": "images"}
    assert b'filename="faces.zip"' in sent.content
    start = sent.content.index(b"PK\x03\x04")
    with zipfile.ZipFile(io.BytesIO(sent.content[start:])) as zipped:
        assert zipped.namelist() == ["a.png"]


def test_import_export_and_delete_a_model(tmp_path):
    archive = tmp_path / "m.zip"
    archive.write_bytes(b"PK zip")
    model = {"id": "mine", "version": 2}
    server = FakeServer().json("POST", "/v1/models", job("m1", kind="model_import"), status=202)
    server.json(
        "GET", "/v1/jobs/m1", job("m1", "succeeded", result={"model": "mine", "version": 2})
    )
    server.json("GET", "/v1/models/mine@2", model)
    pending = {
        "model": "mine@2",
        "format": "onnx",
        "status": "pending",
        "url": "/v1/models/mine@2/exports/onnx",
        "job": job("e1", kind="model_export"),
    }
    server.json("POST", "/v1/models/mine@2/exports", pending, status=202)
    server.json("GET", "/v1/jobs/e1", job("e1", "succeeded", result={"format": "onnx"}))
    server.on(
        "GET",
        "/v1/models/mine@2/exports/onnx",
        problem(409, "export_pending", headers={"Retry-After": "0"}),
        httpx.Response(200, content=b"onnx bytes"),
    )
    server.on("DELETE", "/v1/models/mine@2", httpx.Response(204))
    with client_of(server) as client:
        assert client.import_model(archive, name="Mine") == model
        assert client.export_model("mine@2", "onnx") == b"onnx bytes"
        written = client.export_model("mine@2", "onnx", tmp_path / "out" / "mine.onnx")
        client.delete_model("mine@2")
    assert written == tmp_path / "out" / "mine.onnx" and written.read_bytes() == b"onnx bytes"
    assert [p.name for p in written.parent.iterdir()] == ["mine.onnx"]  # no temporary left
    assert form(server.calls("POST", "/v1/models")[0]) == {"name": "Mine"}
    assert json.loads(server.calls("POST", "/v1/models/mine@2/exports")[0].content) == {
        "format": "onnx"
    }
    assert len(server.calls("GET", "/v1/models/mine@2/exports/onnx")) == 3


def test_a_failed_download_leaves_no_file(tmp_path):
    server = FakeServer().on("GET", "/v1/models/m/exports/onnx", problem(404, "export_not_found"))
    server.json(
        "POST",
        "/v1/models/m/exports",
        {"status": "ready", "url": "/v1/models/m/exports/onnx"},
        status=201,
    )
    with client_of(server) as client, pytest.raises(Exception, match="export_not_found"):
        client.export_model("m", "onnx", tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_train_reports_progress_and_returns_the_model(tmp_path):
    from tests.ganserve.client.test_jobs import sse, stream

    server = FakeServer().json("POST", "/v1/training-runs", job("r1", kind="training"), status=202)
    events = sse(
        ("1", "status", job("r1", "running", kind="training", progress=0.0)),
        ("2", "progress", job("r1", "running", kind="training", progress=0.5)),
        (
            "3",
            "status",
            job("r1", "succeeded", kind="training", result={"model": "run", "version": 1}),
        ),
    )
    server.on("GET", "/v1/jobs/r1/events", stream(events))
    server.json("GET", "/v1/models/run@1", {"id": "run", "version": 1})
    seen = []
    with client_of(server) as client:
        model = client.train(
            {"id": "d1"},
            "pix2pix",
            {"steps": 10},
            name="run",
            devices=2,
            on_progress=lambda j: seen.append(j.progress),
        )
    assert model == {"id": "run", "version": 1}
    assert seen == [0.0, 0.5, 1.0]
    body = json.loads(server.calls("POST", "/v1/training-runs")[0].content)
    assert body == {
        "family": "pix2pix",
        "dataset": "d1",
        "config": {"steps": 10},
        "background": False,
        "name": "run",
        "devices": 2,
    }
