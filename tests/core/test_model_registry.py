"""The model registry: owned ids, immutable versions, tombstones, flat folders, retention."""

import json
import threading

import pytest

from core.model_registry import (
    MODEL_RECORD,
    ModelMissing,
    ModelRef,
    ModelRegistry,
    ModelTaken,
    content_digest,
    parse_ref,
)
from tests.service.factories import write_model_folder


def staged(registry: ModelRegistry, name: str, seed: int = 0):
    """A model folder written in a hidden staging folder under `models/`, as workers write one."""
    folder = write_model_folder(
        registry.models_dir,
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


def test_versions_are_added_numbered_and_never_reused(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    registry.claim("m", "alice")
    first = registry.add_version("m", "alice", staged(registry, "m", 1), {"kind": "import"})
    second = registry.add_version("m", "alice", staged(registry, "m", 2), {"kind": "import"})
    assert (first.version, second.version) == (1, 2)
    assert first.digest == content_digest(first.folder) != second.digest
    assert registry.resolve(ModelRef("m"))[1].version == 2
    assert registry.resolve(ModelRef("m", 1))[1].digest == first.digest
    registry.delete_version("m", 2)
    with pytest.raises(ModelMissing):
        registry.resolve(ModelRef("m", 2))
    third = registry.add_version("m", "alice", staged(registry, "m", 3), {})
    assert third.version == 3  # 2 is never given again
    assert registry.pinned_version("m@3", third.digest) == third
    with pytest.raises(ModelMissing):
        registry.pinned_version("m@3", first.digest)  # other content than pinned
    assert not [p for p in registry.models_dir.iterdir() if p.name.startswith(".m.")]


def test_an_id_stays_its_owners_after_delete(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    registry.claim("m", "alice")
    registry.add_version("m", "alice", staged(registry, "m", 1), {})
    with pytest.raises(ModelTaken):
        registry.claim("m", "bob")
    with pytest.raises(ModelTaken):
        registry.add_version("m", "bob", staged(registry, "m", 2), {})
    with pytest.raises(ModelTaken):
        registry.claim("m", "alice", fresh=True)  # exists: not a fresh id
    registry.delete_model("m")
    assert registry.versions("m") == [] and registry.record("m").deleted
    with pytest.raises(ModelMissing):
        registry.resolve(ModelRef("m"))
    with pytest.raises(ModelTaken):
        registry.claim("m", "bob")  # the tombstone keeps it
    with pytest.raises(ModelTaken):
        registry.add_version("m", "alice", staged(registry, "m", 3), {})  # deleted: claim first
    registry.claim("m", "alice")
    again = registry.add_version("m", "alice", staged(registry, "m", 4), {})
    assert again.version == 2 and registry.record("m").owner == "alice"


def test_two_claims_at_once_give_the_id_to_one_owner(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
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


def test_a_flat_folder_is_version_1_and_is_converted_in_place(tmp_path):
    models_dir = tmp_path / "models"
    folder = write_model_folder(
        models_dir, "flat", architecture="pix2pix-generator", family="pix2pix", task="translate"
    )
    card = json.loads((folder / "config.json").read_text())
    card["provenance"] = {"owner": "alice", "listing": {"name": "Flat"}}
    (folder / "config.json").write_text(json.dumps(card))
    digest = content_digest(folder)
    registry = ModelRegistry(models_dir)
    record, version = registry.resolve(ModelRef("flat"))
    assert record.flat and record.owner == "alice" and version.version == 1
    assert registry.version_digest(version) == digest and version.folder == folder
    with pytest.raises(ModelTaken):
        registry.claim("flat", "bob")
    registry.update_listing("flat", {"description": "kept"})  # converts it
    record, version = registry.resolve(ModelRef("flat", 1))
    assert not record.flat and record.owner == "alice"
    assert record.listing == {"name": "Flat", "description": "kept"}
    assert version.folder == folder / "versions" / "1" and version.digest == digest
    assert not (folder / "model.safetensors").exists() and (folder / MODEL_RECORD).is_file()
    registry._unflatten("flat")  # a second writer that saw it flat: nothing changes
    assert [v.version for v in registry.versions("flat")] == [1]
    assert not (folder / "versions" / "1" / "versions").exists()
    two = registry.add_version("flat", "alice", staged(registry, "flat", 2), {})
    assert two.version == 2


def test_retention_keeps_the_newest_and_pinned_versions(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    registry.claim("m", "alice")
    for seed in range(1, 5):
        registry.add_version("m", "alice", staged(registry, "m", seed), {})
    export = tmp_path / "exports" / "m" / "v1_abc.onnx"
    export.parent.mkdir(parents=True)
    export.write_bytes(b"x")
    kept_export = export.with_name("v3_abc.onnx")
    kept_export.write_bytes(b"x")
    assert registry.prune("m", 2, lambda: {"m@2", "other@1"}) == [1]
    assert [v.version for v in registry.versions("m")] == [2, 3, 4]  # 2 is pinned
    assert not export.exists() and kept_export.exists()  # the removed version's exports go

    def unreadable() -> set[str]:
        raise ConnectionError("Redis went away")

    with pytest.raises(ConnectionError):
        registry.prune("m", 1, unreadable)
    assert [v.version for v in registry.versions("m")] == [2, 3, 4]  # every one put back
    assert not [p for p in (registry.models_dir / "m" / "versions").iterdir() if p.name[0] == "."]
    assert registry.prune("m", 1, set) == [2, 3]


def test_a_training_runs_name_never_replaces_a_given_one(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    registry.claim("m", "alice")
    registry.update_listing("m", {"name": "Mine"})
    registry.update_listing("m", {"name": "run name", "description": "d"}, keep_listed=True)
    assert registry.record("m").listing == {"name": "Mine", "description": "d"}
