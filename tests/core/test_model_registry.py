"""The model registry: owned ids, immutable versions, tombstones, flat folders, retention, on
both backends (a local folder and a real S3 server), with claims and registrations racing from
threads and from processes."""

import json
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from core.exports import export_key
from core.folder_cache import FolderCache
from core.lease_lock import LockTimeout, lease_lock
from core.model_registry import (
    MODEL_RECORD,
    VERSION_RECORD,
    ModelMissing,
    ModelRef,
    ModelRegistry,
    ModelTaken,
    content_digest,
    parse_ref,
)
from core.object_store import ObjectStore
from tests.service.factories import write_model_folder


@pytest.fixture(params=["local", "s3"])
def store_url(request, tmp_path) -> str:
    """Where the store lies: a local folder, or a fresh prefix on the session's S3 server."""
    if request.param == "s3":
        return request.getfixturevalue("s3_url")
    return str(tmp_path / "store")


@pytest.fixture
def registry(store_url, tmp_path) -> ModelRegistry:
    objects = ObjectStore.open(store_url, tmp_path / "store")
    return ModelRegistry(objects, FolderCache(objects, tmp_path / "cache", 10**9))


def staged(tmp_path: Path, name: str, seed: int = 0) -> Path:
    """A local model folder in a staging folder, as workers write one."""
    folder = write_model_folder(
        tmp_path / "staging",
        f".{name}.staging-{seed}",
        architecture="pix2pix-generator",
        family="pix2pix",
        task="translate",
    )
    card = json.loads((folder / "config.json").read_text())
    card["metrics"] = {"seed": seed}  # other bytes, another digest
    (folder / "config.json").write_text(json.dumps(card))
    return folder


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("digits", ModelRef("digits")),
        ("digits@3", ModelRef("digits", 3)),
        ("a.b-c_d@12", ModelRef("a.b-c_d", 12)),
        ("digits@0", None),
        ("digits@", None),
        ("digits@x", None),
        ("digits@1@2", None),
        ("../x", None),
        ("", None),
        ("@3", None),
        ("digits@1234567890", None),
    ],
)
def test_refs_are_an_id_and_an_optional_version(text, expected):
    assert parse_ref(text) == expected
    if expected is not None:
        assert str(expected) == text


def test_versions_are_added_numbered_and_never_reused(registry, tmp_path):
    registry.claim("m", "alice")
    one, two = staged(tmp_path, "m", 1), staged(tmp_path, "m", 2)
    digest_one = content_digest(one)
    first = registry.add_version("m", "alice", one, {"kind": "import"})
    second = registry.add_version("m", "alice", two, {"kind": "import"})
    assert not one.exists() and not two.exists()  # uploaded, then the staging folders go
    assert (first.version, second.version) == (1, 2)
    assert first.prefix == "models/m/versions/1"
    assert first.digest == digest_one != second.digest
    assert content_digest(registry.local_folder(first)) == first.digest
    assert registry.resolve(ModelRef("m"))[1].version == 2
    assert registry.resolve(ModelRef("m", 1))[1].digest == first.digest
    assert registry.ids() == ["m"]
    registry.delete_version("m", 2)
    assert registry.objects.list("models/m/versions/2") == []  # its objects are gone
    with pytest.raises(ModelMissing):
        registry.resolve(ModelRef("m", 2))
    with pytest.raises(ModelMissing):
        registry.delete_version("m", 2)
    third = registry.add_version("m", "alice", staged(tmp_path, "m", 3), {})
    assert third.version == 3  # 2 is never given again
    assert registry.pinned_version("m@3", third.digest) == third
    with pytest.raises(ModelMissing):
        registry.pinned_version("m@3", first.digest)  # other content than pinned
    assert registry.objects.read("models/m/.lock") is None  # every lock released


def test_a_version_counts_only_once_its_marker_exists(registry, tmp_path):
    registry.claim("m", "alice")
    version = registry.add_version("m", "alice", staged(tmp_path, "m", 1), {})
    half = staged(tmp_path, "half", 2)  # a version whose upload broke off before its marker
    registry.objects.upload_folder("models/m/versions/2", half)
    assert [v.version for v in registry.versions("m")] == [1]
    with pytest.raises(ModelMissing):
        registry.resolve(ModelRef("m", 2))
    assert registry.add_version("m", "alice", staged(tmp_path, "m", 3), {}).version == 3
    registry.objects.delete(version.key(VERSION_RECORD))
    assert [v.version for v in registry.versions("m")] == [3]


def test_an_id_stays_its_owners_after_delete(registry, tmp_path):
    registry.claim("m", "alice")
    registry.add_version("m", "alice", staged(tmp_path, "m", 1), {})
    with pytest.raises(ModelTaken):
        registry.claim("m", "bob")
    with pytest.raises(ModelTaken):
        registry.add_version("m", "bob", staged(tmp_path, "m", 2), {})
    with pytest.raises(ModelTaken):
        registry.claim("m", "alice", fresh=True)  # exists: not a fresh id
    registry.delete_model("m")
    assert registry.versions("m") == [] and registry.record("m").deleted
    assert [i.key for i in registry.objects.list("models/m")] == ["models/m/model.json"]
    with pytest.raises(ModelMissing):
        registry.resolve(ModelRef("m"))
    with pytest.raises(ModelTaken):
        registry.claim("m", "bob")  # the tombstone keeps it
    with pytest.raises(ModelTaken):
        registry.add_version("m", "alice", staged(tmp_path, "m", 3), {})  # deleted: claim first
    registry.claim("m", "alice")
    again = registry.add_version("m", "alice", staged(tmp_path, "m", 4), {})
    assert again.version == 2 and registry.record("m").owner == "alice"


def test_two_claims_at_once_give_the_id_to_one_owner(registry):
    winners, barrier = [], threading.Barrier(8)

    def claim(owner: str) -> None:
        barrier.wait()
        try:
            registry.claim("contested", owner, fresh=True)
            winners.append(owner)
        except ModelTaken:
            pass

    threads = [threading.Thread(target=claim, args=(f"key-{k}",)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and registry.record("contested").owner == winners[0]


def _race(url: str, data_dir: str, what: str, process: int, start: float) -> list:
    """In a separate process: 3 threads that claim one id or register a version, all starting
    at `start`; what each won (owners that claimed, version numbers registered)."""
    objects = ObjectStore.open(url, Path(data_dir))
    registry = ModelRegistry(objects)
    won: list = []

    def one(k: int) -> None:
        owner = f"key-{process}-{k}"
        folder = staged(Path(data_dir) / f"p{process}-{k}", "m", 10 * process + k)
        time.sleep(max(0.0, start - time.time()))
        if what == "claim":
            try:
                registry.claim("contested", owner, fresh=True)
                won.append(owner)
            except ModelTaken:
                pass
        else:
            won.append(
                registry.add_version("shared", "alice", folder, {"process": process}).version
            )

    threads = [threading.Thread(target=one, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won


def test_claims_and_registrations_racing_from_two_processes(registry, store_url, tmp_path):
    spawn = multiprocessing.get_context("spawn")
    registry.claim("shared", "alice")
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        for what in ("claim", "register"):
            start = time.time() + 3.0  # both processes started, their threads waiting
            runs = [
                pool.submit(_race, store_url, str(tmp_path / f"{what}-{p}"), what, p, start)
                for p in (1, 2)
            ]
            results = [won for run in runs for won in run.result(timeout=120)]
            if what == "claim":
                assert len(results) == 1 and registry.record("contested").owner == results[0]
            else:  # every registration got its own number, and each is whole
                assert sorted(results) == [1, 2, 3, 4, 5, 6]
                assert [v.version for v in registry.versions("shared")] == [1, 2, 3, 4, 5, 6]
                assert registry.record("shared").last_version == 6
    assert registry.objects.read("models/shared/.lock") is None


def test_a_lock_left_by_a_dead_holder_is_broken_after_its_lease(registry):
    registry.claim("m", "alice")
    key = "models/m/.lock"
    dead = {"holder": "gone-host:1:x", "expires": time.time() - 1}
    assert registry.objects.put_new(key, json.dumps(dead).encode())
    registry.update_listing("m", {"name": "Mine"})  # breaks the stale lock, then takes its own
    assert registry.record("m").listing == {"name": "Mine"}
    assert registry.objects.read(key) is None
    with lease_lock(registry.objects, key, lease=30):  # a live holder is waited for
        with pytest.raises(LockTimeout), lease_lock(registry.objects, key, lease=30, wait=0.3):
            pass
        assert registry.objects.exists(key)
    assert not registry.objects.exists(key)


def test_a_flat_folder_is_version_1_and_is_converted_in_place(registry, tmp_path):
    folder = write_model_folder(
        tmp_path / "copied",
        "flat",
        architecture="pix2pix-generator",
        family="pix2pix",
        task="translate",
    )
    card = json.loads((folder / "config.json").read_text())
    card["provenance"] = {"owner": "alice", "listing": {"name": "Flat"}}
    (folder / "config.json").write_text(json.dumps(card))
    digest = content_digest(folder)
    registry.objects.upload_folder("models/flat", folder)  # an operator copies a folder in
    record, version = registry.resolve(ModelRef("flat"))
    assert record.flat and record.owner == "alice" and version.version == 1
    assert registry.version_digest(version) == digest and version.prefix == "models/flat"
    assert content_digest(registry.local_folder(version)) == digest
    assert registry.ids() == ["flat"]
    with pytest.raises(ModelTaken):
        registry.claim("flat", "bob")
    registry.update_listing("flat", {"description": "kept"})  # converts it
    record, version = registry.resolve(ModelRef("flat", 1))
    assert not record.flat and record.owner == "alice"
    assert record.listing == {"name": "Flat", "description": "kept"}
    assert version.prefix == "models/flat/versions/1" and version.digest == digest
    assert not registry.objects.exists("models/flat/model.safetensors")
    assert registry.objects.exists(f"models/flat/{MODEL_RECORD}")
    registry._unflatten("flat")  # a second writer that saw it flat: nothing changes
    assert [v.version for v in registry.versions("flat")] == [1]
    assert registry.objects.list("models/flat/versions/1/versions") == []
    two = registry.add_version("flat", "alice", staged(tmp_path, "flat", 2), {})
    assert two.version == 2


def test_a_flat_folder_on_disk_is_used_in_place(tmp_path):
    objects = ObjectStore.local(tmp_path)
    registry = ModelRegistry(objects, FolderCache(objects, tmp_path / "cache", 10**9))
    folder = write_model_folder(
        tmp_path / "models",
        "flat",
        architecture="pix2pix-generator",
        family="pix2pix",
        task="translate",
    )
    _, version = registry.resolve(ModelRef("flat"))
    assert registry.local_folder(version) == folder  # the stored folder itself: no copy
    before = registry.version_digest(version)
    (folder / "model.safetensors").write_bytes(b"retrained in place")
    assert registry.version_digest(version) != before  # its files changed: digested again


def test_retention_keeps_the_newest_and_pinned_versions(registry, tmp_path):
    registry.claim("m", "alice")
    for seed in range(1, 5):
        registry.add_version("m", "alice", staged(tmp_path, "m", seed), {})
    export = export_key("m", "v1_abc", "onnx")
    kept_export = export_key("m", "v3_abc", "onnx")
    for key in (export, kept_export):
        registry.objects.put(key, b"x")
    assert registry.prune("m", 2, lambda: {"m@2", "other@1"}) == [1]
    assert [v.version for v in registry.versions("m")] == [2, 3, 4]  # 2 is pinned
    assert registry.objects.list("models/m/versions/1") == []
    assert not registry.objects.exists(export) and registry.objects.exists(kept_export)

    def unreadable() -> set[str]:
        raise ConnectionError("Redis went away")

    with pytest.raises(ConnectionError):
        registry.prune("m", 1, unreadable)
    assert [v.version for v in registry.versions("m")] == [2, 3, 4]  # every one put back
    assert registry.prune("m", 1, set) == [2, 3]


def test_a_training_runs_name_never_replaces_a_given_one(registry):
    registry.claim("m", "alice")
    registry.update_listing("m", {"name": "Mine"})
    registry.update_listing("m", {"name": "run name", "description": "d"}, keep_listed=True)
    assert registry.record("m").listing == {"name": "Mine", "description": "d"}


def test_bad_ids_are_missing_models(registry):
    assert registry.record("../x") is None
    with pytest.raises(ModelMissing):
        registry.resolve(ModelRef("../x"))
    with pytest.raises(ModelMissing):
        registry.resolve(ModelRef("never-claimed"))
