"""RunSync: a training run's working copy uploaded as it changes and pulled on resume, on a local
folder and on a real S3 server (SeaweedFS)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from obstore.exceptions import GenericError

from core.object_store import ObjectStore
from workers.errors import JobFailure
from workers.run_sync import MANIFEST_FILE, RunSync, remove_stale_copies

PREFIX = "runs/job1"


@pytest.fixture(params=["local", "s3"])
def objects(request, tmp_path) -> ObjectStore:
    """An empty store: a local folder, or a fresh prefix on the session's S3 server."""
    if request.param == "local":
        return ObjectStore.local(tmp_path / "store")
    return ObjectStore.open(request.getfixturevalue("s3_url"), tmp_path / "unused")


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    later = time.time_ns() + 1_000_000  # a new change time even on a coarse clock
    os.utime(path, ns=(later, later))


def stored(objects: ObjectStore) -> dict[str, bytes]:
    return {
        info.key.removeprefix(f"{PREFIX}/"): objects.read(info.key) or b""
        for info in objects.list(PREFIX)
    }


def test_push_uploads_what_changed_and_skips_hidden_files(objects, tmp_path):
    work = tmp_path / "work"
    write(work / "options.json", b"{}")
    write(work / "stats.jsonl", b'{"step": 1}\n')
    write(work / "samples" / "step_0000001.png", b"png1")
    write(work / "samples" / ".step_0000002.png.tmp", b"half")  # being written
    write(work / "training_state.pt", b"state1")
    sync = RunSync(objects, PREFIX, work)
    assert sync.push() == [
        "options.json",
        "samples/step_0000001.png",
        "stats.jsonl",
        "training_state.pt",  # last
    ]
    assert stored(objects) == {
        "options.json": b"{}",
        "samples/step_0000001.png": b"png1",
        "stats.jsonl": b'{"step": 1}\n',
        "training_state.pt": b"state1",
    }
    assert sync.push() == []  # nothing changed
    write(work / "stats.jsonl", b'{"step": 1}\n{"step": 2}\n')
    assert sync.push() == ["stats.jsonl"]
    assert stored(objects)["stats.jsonl"].count(b"\n") == 2
    assert (work / MANIFEST_FILE).is_file() and MANIFEST_FILE not in stored(objects)


def test_the_checkpoint_goes_up_as_it_was_when_the_pass_began(objects, tmp_path, monkeypatch):
    work = tmp_path / "work"
    write(work / "training_state.pt", b"state at 10")
    write(work / "stats.jsonl", b"10\n")
    sync = RunSync(objects, PREFIX, work)
    upload = objects.upload_file

    def checkpoint_meanwhile(key, source):
        upload(key, source)
        if key.endswith("stats.jsonl"):  # the run checkpoints while the stats go up
            write(work / "stats.jsonl", b"10\n20\n")
            staging = work / ".training_state.pt.tmp"
            write(staging, b"state at 20")
            os.replace(staging, work / "training_state.pt")

    monkeypatch.setattr(objects, "upload_file", checkpoint_meanwhile)
    sync.push()
    # the store never holds a checkpoint newer than its stats
    assert stored(objects) == {"stats.jsonl": b"10\n", "training_state.pt": b"state at 10"}
    monkeypatch.setattr(objects, "upload_file", upload)
    assert sync.push() == ["stats.jsonl", "training_state.pt"]
    assert stored(objects) == {"stats.jsonl": b"10\n20\n", "training_state.pt": b"state at 20"}


def test_pull_brings_the_run_to_another_host_and_keeps_a_copy_that_is_current(objects, tmp_path):
    first = RunSync(objects, PREFIX, tmp_path / "host1" / "job1")
    assert first.pull() is False  # nothing stored: a fresh run
    write(first.folder / "training_state.pt", b"state1")
    write(first.folder / "samples" / "step_0000001.png", b"png1")
    first.push()
    # another host, its working copy missing: downloads the run
    second = RunSync(objects, PREFIX, tmp_path / "host2" / "job1")
    assert second.pull() is True
    assert (second.folder / "samples" / "step_0000001.png").read_bytes() == b"png1"
    assert second.push() == []  # what it downloaded is not uploaded again
    write(second.folder / "training_state.pt", b"state2")
    write(second.folder / "samples" / "step_0000002.png", b"png2")
    second.push()
    # the first host, its copy now behind the store's: replaced by the stored folder
    again = RunSync(objects, PREFIX, first.folder)
    write(first.folder / "samples" / "step_0000009.png", b"stale")
    assert again.pull() is True
    assert (first.folder / "training_state.pt").read_bytes() == b"state2"
    assert sorted(p.name for p in (first.folder / "samples").iterdir()) == [
        "step_0000001.png",
        "step_0000002.png",
    ]
    # the same host after its worker died: its copy is the stored one or newer, and is kept
    write(first.folder / "samples" / "step_0000003.png", b"png3")
    assert RunSync(objects, PREFIX, first.folder).pull() is False
    assert (first.folder / "samples" / "step_0000003.png").is_file()
    assert not [p for p in first.folder.parent.iterdir() if p.name.startswith(".")]


def test_a_worker_that_lost_the_run_writes_nothing(objects, tmp_path):
    work = tmp_path / "work"
    write(work / "training_state.pt", b"stale")
    assert RunSync(objects, PREFIX, work, may_write=lambda: False).push() == []
    assert objects.list(PREFIX) == []


def test_pushing_uploads_while_the_run_trains_and_once_more_at_its_end(objects, tmp_path):
    work = tmp_path / "work"
    sync = RunSync(objects, PREFIX, work, interval=0.05)
    with sync.pushing():
        write(work / "samples" / "step_0000001.png", b"png1")
        deadline = time.monotonic() + 10
        while not objects.exists(f"{PREFIX}/samples/step_0000001.png"):
            assert time.monotonic() < deadline, "the thread uploaded nothing"
            time.sleep(0.02)
        write(work / "training_state.pt", b"last")
    assert stored(objects)["training_state.pt"] == b"last"
    sync.discard()
    assert not work.exists() and objects.exists(f"{PREFIX}/training_state.pt")


def test_a_store_that_fails_the_last_upload_fails_the_job_without_naming_it(
    objects, tmp_path, monkeypatch
):
    work = tmp_path / "work"
    write(work / "training_state.pt", b"state")

    def refuse(key, source):
        raise GenericError(f"Generic S3 error: error sending request for {tmp_path}/{key}")

    monkeypatch.setattr(objects, "upload_file", refuse)
    sync = RunSync(objects, PREFIX, work, interval=60)
    with pytest.raises(JobFailure) as failed, sync.pushing():
        pass
    assert failed.value.code == "storage_unavailable"
    assert str(tmp_path) not in failed.value.message
    with pytest.raises(KeyError), sync.pushing():  # a run that failed keeps its own error
        raise KeyError("the run's own")


def test_copies_of_runs_that_ended_elsewhere_are_removed(tmp_path):
    runs = tmp_path / "work" / "runs"
    for job_id in ("ended", "running", "expired"):
        write(runs / job_id / "training_state.pt", b"state")
    write(runs / ".job.x1y2" / "a", b"")  # a pull's staging folder: not a working copy
    live = {"ended": False, "running": True}
    assert remove_stale_copies(runs, lambda job_id: live.get(job_id, False)) == [
        "ended",
        "expired",
    ]
    assert sorted(p.name for p in runs.iterdir()) == [".job.x1y2", "running"]
    assert remove_stale_copies(tmp_path / "nothing", lambda job_id: True) == []
