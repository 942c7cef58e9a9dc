"""The bounded model cache: loads once, evicts the least recently used, reloads changed files;
versions in S3 downloaded once per host."""

from __future__ import annotations

import os

import pytest
import torch

from core.model_registry import ModelRegistry
from core.object_store import ObjectStore
from core.storage import Storage
from tests.workers.tiny import save_tiny_model
from workers.errors import JobFailure
from workers.model_cache import ModelCache


def first_weight(model: torch.nn.Module) -> torch.Tensor:
    return next(model.parameters()).detach().clone()


def test_cache_loads_once_and_keeps_at_most_its_capacity(storage):
    cache = ModelCache(storage, capacity=2, device="cpu")
    a = cache.get("p2p")
    assert cache.get("p2p") is a and cache.loads == 1
    cache.get("digits")
    cache.get("p2p")  # p2p is now the most recently used
    cache.get("faces")  # evicts digits
    assert cache.ids() == ["p2p", "faces"] and len(cache) == 2
    cache.get("digits")
    assert cache.loads == 4 and cache.ids() == ["faces", "digits"]
    assert a.card.family == "pix2pix" and a.device == torch.device("cpu")
    assert not a.model.training


def test_a_model_whose_files_change_is_loaded_again(storage):
    cache = ModelCache(storage, capacity=4, device="cpu")
    before = cache.get("digits")
    save_tiny_model(storage.models, "digits", seed=1)  # retrained: new files, same id
    after = cache.get("digits")
    assert after is not before and cache.loads == 2
    assert not torch.equal(first_weight(before.model), first_weight(after.model))
    assert cache.get("digits") is after


def test_a_replaced_folder_with_old_timestamps_is_still_noticed(storage):
    cache = ModelCache(storage, capacity=4, device="cpu")
    before = cache.get("digits")
    folder = storage.models / "digits"
    stamps = {p.name: os.stat(p).st_mtime_ns for p in folder.iterdir()}
    save_tiny_model(storage.models, "digits", seed=2)
    for path in folder.iterdir():
        os.utime(path, ns=(stamps[path.name], stamps[path.name]))  # copies keep mtimes
    assert cache.get("digits") is not before


def test_missing_and_broken_models_are_clear_failures(storage):
    cache = ModelCache(storage, capacity=2, device="cpu")
    cache.get("p2p")
    for path in (storage.models / "p2p").iterdir():
        path.unlink()
    (storage.models / "p2p").rmdir()
    with pytest.raises(JobFailure) as info:
        cache.get("p2p")
    assert info.value.code == "model_not_found" and "p2p" not in cache.ids()
    (storage.models / "digits" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(JobFailure) as info:
        cache.get("digits")
    assert info.value.code == "model_unloadable"
    assert info.value.message.startswith("the model file could not be loaded")
    with pytest.raises(JobFailure) as info:
        cache.get("../digits")
    assert info.value.code == "model_not_found"


def test_versions_in_s3_are_downloaded_once_per_host_and_reloaded_when_new(s3_url, tmp_path):
    objects = ObjectStore.open(s3_url, tmp_path)
    storage = Storage(tmp_path / "data", objects)
    registry = ModelRegistry.of(storage)
    registry.claim("digits", "alice")
    first = registry.add_version("digits", "alice", save_tiny_model(tmp_path / "a", "digits"), {})
    cache = ModelCache(storage, capacity=2, device="cpu")
    loaded = cache.get("digits")
    assert cache.get(f"digits@{first.version}") is not None and cache.get("digits") is loaded
    assert storage.folders.downloads == 1 and cache.loads == 2  # one folder, two refs loaded
    restarted = ModelCache(storage, capacity=2, device="cpu")  # a worker process restarted
    assert restarted.get("digits").card == loaded.card
    assert storage.folders.downloads == 1  # the host's download is used again
    registry.add_version("digits", "alice", save_tiny_model(tmp_path / "b", "digits", seed=3), {})
    newer = cache.get("digits")  # a new version under the same id: loaded afresh
    assert newer is not loaded and storage.folders.downloads == 2
    assert not torch.equal(first_weight(newer.model), first_weight(loaded.model))
    registry.delete_model("digits")
    with pytest.raises(JobFailure) as info:
        cache.get("digits")
    assert info.value.code == "model_not_found"
