"""core.object_store on both backends: a local folder and a real S3 server (SeaweedFS)."""

import threading

import httpx
import pytest

from core.folder_cache import FolderCache
from core.object_store import ObjectStore, StorageUrlError


@pytest.fixture(params=["local", "s3"])
def objects(request, tmp_path) -> ObjectStore:
    if request.param == "local":
        return ObjectStore.open(None, tmp_path / "root")
    return ObjectStore.open(request.getfixturevalue("s3_url"), tmp_path / "unused")


def test_put_read_replace_and_delete(objects):
    assert objects.read("results/j1/0.png") is None
    objects.put("results/j1/0.png", b"first")
    objects.put("results/j1/0.png", b"second")
    assert objects.read("results/j1/0.png") == b"second"
    info = objects.info("results/j1/0.png")
    assert info is not None and info.size == 6 and info.key == "results/j1/0.png"
    assert objects.delete("results/j1/0.png") is True
    assert objects.delete("results/j1/0.png") is False
    assert objects.read("results/j1/0.png") is None and objects.list("results") == []


def test_put_new_claims_once_even_when_racing(objects):
    outcomes: list[bool] = []

    def claim(n: int) -> None:
        outcomes.append(objects.put_new("models/m/model.json", f"owner-{n}".encode()))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False] * 7 + [True]
    assert objects.read("models/m/model.json").startswith(b"owner-")


def test_folders_upload_list_children_download_and_delete(objects, tmp_path):
    source = tmp_path / "version"
    (source / "sub").mkdir(parents=True)
    (source / "config.json").write_text("{}")
    (source / "model.safetensors").write_bytes(b"w" * 3_000_000)
    (source / "sub" / "x.txt").write_text("x")
    (source / "version.json").write_text('{"digest": "d"}')
    keys = objects.upload_folder("models/m/versions/1", source, last=["version.json"])
    assert keys[-1] == "models/m/versions/1/version.json" and len(keys) == 4
    listed = [i.key for i in objects.list("models/m")]
    assert listed == sorted(keys)
    assert objects.children("models") == ["m"]
    assert objects.children("models/m/versions/1") == [
        "config.json",
        "model.safetensors",
        "sub",
        "version.json",
    ]
    copy = tmp_path / "copy"
    assert sorted(objects.download_folder("models/m/versions/1", copy)) == [
        "config.json",
        "model.safetensors",
        "sub/x.txt",
        "version.json",
    ]
    assert (copy / "model.safetensors").read_bytes() == b"w" * 3_000_000
    assert b"".join(objects.stream("models/m/versions/1/model.safetensors")) == b"w" * 3_000_000
    assert objects.delete_prefix("models/m") == 4
    assert objects.list("models") == []


def test_hidden_names_are_listed_on_request_and_removed_with_their_prefix(objects):
    objects.put("runs/j/checkpoint.pt", b"c")
    objects.put("runs/j/.stats.jsonl.abcd1234", b"t")  # an interrupted write's
    objects.put("runs/.j.k2j4h5g6/checkpoint.pt", b"s")  # a staging folder
    assert [i.key for i in objects.list("runs")] == ["runs/j/checkpoint.pt"]
    assert [i.key for i in objects.list("runs/j", hidden=True)] == [
        "runs/j/.stats.jsonl.abcd1234",
        "runs/j/checkpoint.pt",
    ]
    assert objects.delete_prefix("runs/j") == 2
    assert [i.key for i in objects.list("runs", hidden=True)] == ["runs/.j.k2j4h5g6/checkpoint.pt"]


def test_a_large_file_travels_streamed_and_whole(objects, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (50 * 1024 * 1024 // 256 // 2))  # 25 MiB: multipart
    objects.upload_file("datasets/d/big.bin", big)
    assert objects.info("datasets/d/big.bin").size == big.stat().st_size
    objects.download("datasets/d/big.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()


def test_a_missing_object_is_a_clear_answer(objects, tmp_path):
    assert objects.info("nothing/here") is None and not objects.exists("nothing/here")
    with pytest.raises(FileNotFoundError):
        list(objects.stream("nothing/here"))
    with pytest.raises(FileNotFoundError):
        objects.download("nothing/here", tmp_path / "x")
    assert not (tmp_path / "x").exists() and list(tmp_path.glob(".x.*")) == []


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a", "a/"])
def test_keys_that_could_escape_are_refused(objects, key):
    with pytest.raises(ValueError):
        objects.put(key, b"x")


def test_presigned_urls_exist_on_s3_only(objects):
    objects.put("results/j/0.png", b"png bytes")
    url = objects.presigned_url("results/j/0.png", 60)
    if objects.is_local:
        assert url is None and objects.local_path("results/j/0.png").read_bytes() == b"png bytes"
    else:
        assert objects.local_path("results/j/0.png") is None
        assert httpx.get(url).content == b"png bytes"  # no credentials: the signature is enough
        assert httpx.get(url.split("?")[0]).status_code == 403


def test_the_folder_cache_downloads_once_per_content_and_stays_bounded(objects, tmp_path):
    for n in (1, 2, 3):
        objects.put(f"models/m/versions/{n}/model.safetensors", bytes([n]) * 1000)
    cache = FolderCache(objects, tmp_path / "cache", max_bytes=2500)
    first = cache.folder("models/m/versions/1", "sha256:one")
    assert (first / "model.safetensors").read_bytes() == b"\x01" * 1000
    assert cache.folder("models/m/versions/1", "sha256:one") == first
    if objects.is_local:  # the stored folder itself: nothing downloaded
        assert first == objects.local_path("models/m/versions/1") and cache.downloads == 0
        return
    assert cache.downloads == 1
    cache.folder("models/m/versions/2", "sha256:two")
    cache.folder("models/m/versions/3", "sha256:three")  # 3000 bytes > 2500: the oldest goes
    assert sorted(p.name for p in (tmp_path / "cache" / "models").iterdir()) == [
        "sha256_three",
        "sha256_two",
    ]
    with pytest.raises(FileNotFoundError):
        cache.folder("models/m/versions/9", "sha256:nine")
    assert list((tmp_path / "cache" / "models").glob(".*")) == []


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "gs://bucket/x", "http://host/x"])
def test_unsupported_storage_urls_are_refused_clearly(url, tmp_path):
    with pytest.raises(StorageUrlError):
        ObjectStore.open(url, tmp_path)


def test_local_urls_and_the_default(tmp_path):
    assert ObjectStore.open(None, tmp_path / "a").local_root == (tmp_path / "a").resolve()
    assert ObjectStore.open(f"file://{tmp_path}/b", tmp_path).local_root == tmp_path / "b"
    named = ObjectStore.open(str(tmp_path / "c"), tmp_path)
    assert named.local_root == tmp_path / "c" and not (tmp_path / "c").exists()  # no side effect
    named.put("x/y", b"1")  # the folder is made at the first use
    assert (tmp_path / "c" / "x" / "y").read_bytes() == b"1"
