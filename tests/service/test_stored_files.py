"""service.stored_files on both backends (a local folder, the real SeaweedFS S3 server): objects
streamed with their length, ETag and one byte range; result links as 307s to presigned URLs on
S3 only, which fetch the object without any key and expire."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from core.object_store import STREAM_CHUNK, ObjectStore
from core.settings import Settings
from service.errors import ApiError, install_error_handlers
from service.stored_files import result_file, stored_file

DATA = bytes(range(256)) * 40  # 10240 bytes, each offset recognisable
KEY = "results/job/0.png"


@pytest.fixture(params=["local", "s3"])
def objects(request, tmp_path) -> ObjectStore:
    if request.param == "local":
        store = ObjectStore.local(tmp_path / "store")
    else:
        store = ObjectStore.open(request.getfixturevalue("s3_url"), tmp_path)
    store.put(KEY, DATA)
    return store


def app_for(objects: ObjectStore, settings: Settings) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    missing = ApiError(404, "image_not_found", "No such image.")

    @app.get("/stored/{name}")
    def stored(name: str, request: Request):
        return stored_file(request, objects, f"results/job/{name}", "image/png", missing)

    @app.get("/result/{name}")
    def result(name: str, request: Request):
        key = f"results/job/{name}"
        return result_file(request, objects, settings, key, "image/png", missing)

    return TestClient(app)


@pytest.fixture
def http(objects, tmp_path) -> TestClient:
    return app_for(objects, Settings(data_dir=tmp_path, redis_url=None))


def test_an_object_is_streamed_whole_with_its_headers(http):
    answer = http.get("/stored/0.png")
    assert answer.status_code == 200
    assert answer.content == DATA
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["content-length"] == str(len(DATA))
    assert answer.headers["accept-ranges"] == "bytes"
    assert answer.headers["etag"].startswith('"') and answer.headers["last-modified"]
    assert http.get("/stored/0.png").headers["etag"] == answer.headers["etag"]


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=2-5", 2, 5),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-3", 10237, 10239),
        ("bytes=5000-99999", 5000, 10239),
        ("bytes=1048570-1048580", None, None),
    ],
)
def test_one_byte_range(http, header, first, last):
    answer = http.get("/stored/0.png", headers={"Range": header})
    if first is None:
        assert answer.status_code == 416
        assert answer.headers["content-range"] == f"bytes */{len(DATA)}"
        assert answer.json()["code"] == "range_not_satisfiable"
        return
    assert answer.status_code == 206
    assert answer.content == DATA[first : last + 1]
    assert answer.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert answer.headers["content-length"] == str(last + 1 - first)


def test_ranges_it_does_not_serve_give_the_whole_object(http):
    etag = http.get("/stored/0.png").headers["etag"]
    for headers in (
        {"Range": "bytes=0-1,5-6"},  # several ranges
        {"Range": "bytes=9-2"},  # not a range
        {"Range": "bytes=2-5", "If-Range": '"an older one"'},
    ):
        answer = http.get("/stored/0.png", headers=headers)
        assert (answer.status_code, answer.content) == (200, DATA), headers
    same = http.get("/stored/0.png", headers={"Range": "bytes=2-5", "If-Range": etag})
    assert (same.status_code, same.content) == (206, DATA[2:6])


def test_an_object_of_several_chunks_is_streamed(objects, http):
    large = bytes(range(251)) * (2 * STREAM_CHUNK // 251 + 7)  # over two chunks
    objects.put("results/job/1.png", large)
    whole = http.get("/stored/1.png")
    assert (whole.status_code, whole.content) == (200, large)
    assert whole.headers["content-length"] == str(len(large))
    first, last = STREAM_CHUNK - 5, 2 * STREAM_CHUNK + 5  # across both chunk boundaries
    part = http.get("/stored/1.png", headers={"Range": f"bytes={first}-{last}"})
    assert (part.status_code, part.content) == (206, large[first : last + 1])
    assert part.headers["content-range"] == f"bytes {first}-{last}/{len(large)}"


def test_a_missing_object_is_the_routes_404(http):
    for path in ("/stored/9.png", "/result/9.png"):
        answer = http.get(path)
        assert answer.status_code == 404 and answer.json()["code"] == "image_not_found"


def test_result_links_default_to_the_gateway(http):
    answer = http.get("/result/0.png", follow_redirects=False)
    assert (answer.status_code, answer.content) == (200, DATA)


def test_presigned_result_links_redirect_on_s3_only(objects, tmp_path):
    settings = Settings(
        data_dir=tmp_path, redis_url=None, result_links="presigned", presigned_url_seconds=60
    )
    http = app_for(objects, settings)
    answer = http.get("/result/0.png", follow_redirects=False)
    if objects.is_local:  # a local store always serves through the gateway
        assert (answer.status_code, answer.content) == (200, DATA)
        return
    assert answer.status_code == 307
    url = answer.headers["location"]
    assert parse_qs(urlparse(url).query)["X-Amz-Expires"] == ["60"]
    fetched = httpx.get(url)  # no key, no credentials: the signature is the permission
    assert fetched.status_code == 200 and fetched.content == DATA
    assert fetched.headers["content-type"] == "image/png"  # stored with the object
    assert http.get("/result/9.png", follow_redirects=False).status_code == 404


def test_presigned_urls_expire(s3_url, tmp_path):
    """The setting's shortest lifetime is a minute; the store's own URLs of one second show
    that an expired signature is refused."""
    objects = ObjectStore.open(s3_url, tmp_path)
    objects.put(KEY, DATA)
    short = objects.presigned_url(KEY, 1)
    assert httpx.get(objects.presigned_url(KEY, 60)).content == DATA  # a live one is accepted
    time.sleep(2.5)
    assert httpx.get(short).status_code == 403
