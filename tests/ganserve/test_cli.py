"""The `ganserve` console script, run as a real process."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import models


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("ganserve", path=str(Path(sys.executable).parent))
    env = {**os.environ, "GANSERVE_DATA_DIR": str(data_dir)}
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, check=False)


def test_info_lists_architectures_and_model_folders(tmp_path):
    g = models.create("pix2pix-generator", image_size=32, base_width=4)
    models.save(g, tmp_path / "models" / "edges2photo")
    (tmp_path / "models" / "broken").mkdir()  # a stored entry with no model in it
    (tmp_path / "models" / "broken" / "notes.txt").write_text("not a model")
    result = run_cli("info", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(tmp_path) in result.stdout
    for name in models.list_models():
        assert name in result.stdout
    assert "edges2photo" in result.stdout and "pix2pix-generator 32px" in result.stdout
    assert "edges2photo@1" in result.stdout  # an installed folder: version 1 of its model
    assert "broken" not in result.stdout  # a stored entry without a model is no model


def test_help():
    exe = shutil.which("ganserve", path=str(Path(sys.executable).parent))
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "info" in result.stdout


def test_sweep_removes_files_of_jobs_without_a_record(
    tmp_path, redis_client, redis_url, monkeypatch
):
    from core.jobs import Job, JobKind, JobStore
    from core.storage import Storage

    storage = Storage(tmp_path / "data")
    store = JobStore(redis_client)
    kept = store.create(Job(kind=JobKind.sample, model="m"))
    for job_id in (kept.id, "0" * 32):
        storage.result_dir(job_id).mkdir(parents=True)
        (storage.result_dir(job_id) / "0.png").write_bytes(b"x" * 10)
        os.utime(storage.result_dir(job_id) / "0.png", (1, 1))  # old
        os.utime(storage.result_dir(job_id), (1, 1))
    monkeypatch.setenv("GANSERVE_REDIS_URL", redis_url)
    dry = run_cli("sweep", "--dry-run", data_dir=storage.root)
    assert dry.returncode == 0, dry.stderr
    assert f"would remove results/{'0' * 32}" in dry.stdout
    assert storage.result_dir("0" * 32).is_dir()
    done = run_cli("sweep", data_dir=storage.root)
    assert done.returncode == 0, done.stderr
    assert f"removed results/{'0' * 32}" in done.stdout and "10 bytes" in done.stdout
    assert not storage.result_dir("0" * 32).exists() and storage.result_dir(kept.id).is_dir()
    monkeypatch.delenv("GANSERVE_REDIS_URL")
    without = run_cli("sweep", data_dir=storage.root)
    assert without.returncode == 1 and "GANSERVE_REDIS_URL" in without.stderr


def test_sweep_removes_expired_jobs_objects_from_s3(
    tmp_path, redis_client, redis_url, s3_url, monkeypatch
):
    """`ganserve sweep` on a store that is an S3 prefix (`GANSERVE_STORAGE_URL`, the real
    SeaweedFS server): a job without a record loses its objects, a recorded job keeps them."""
    from core.jobs import Job, JobKind, JobStore
    from core.object_store import ObjectStore
    from core.storage import result_key, upload_key

    objects = ObjectStore.open(s3_url, tmp_path / "unused")
    kept = JobStore(redis_client).create(Job(kind=JobKind.translation, model="m"))
    orphan = "0" * 32
    for job_id in (kept.id, orphan):
        objects.put(result_key(job_id, "0.png"), b"x" * 10)
        objects.put(upload_key(job_id), b"u" * 5)
    monkeypatch.setenv("GANSERVE_REDIS_URL", redis_url)
    monkeypatch.setenv("GANSERVE_STORAGE_URL", s3_url)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))  # this tree's code
    dry = run_cli("sweep", "--dry-run", "--grace", "0", data_dir=tmp_path / "host")
    assert dry.returncode == 0, dry.stderr
    assert f"would remove results/{orphan}" in dry.stdout and objects.exists(upload_key(orphan))
    done = run_cli("sweep", "--grace", "0", data_dir=tmp_path / "host")
    assert done.returncode == 0, done.stderr
    assert f"removed results/{orphan}" in done.stdout and f"removed uploads/{orphan}" in done.stdout
    assert "15 bytes" in done.stdout
    assert [info.key for info in objects.list()] == [
        result_key(kept.id, "0.png"),
        upload_key(kept.id),
    ]


def test_version_and_bad_options_of_up():
    exe = shutil.which("ganserve", path=str(Path(sys.executable).parent))
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0 and version.stdout.startswith("ganserve ")
    assert version.stdout.split()[1][0].isdigit()
    bad = subprocess.run([exe, "up", "--port", "0"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "--port" in bad.stderr
