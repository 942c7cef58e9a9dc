"""The `ganserve` commands over the API (`ganserve.api_commands`), run as real processes
(`python -m ganserve ...`) against the real stack: embedded Redis, the gateway over HTTP, real
Celery workers, tiny models. One stack for the module, with API keys."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganserve.client import Client
from ganserve.embedded_redis import free_port
from tests.e2e.stack import png, running_stack, save_tiny_models
from training.demo import build_demo

OPERATOR, USER = "operator-key-cli", "user-key-cli"
ROOT = Path(__file__).resolve().parents[2]  # this checkout's packages come first


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("cli-stack")
    save_tiny_models(data_dir / "models", translator="tiny-p2p", sampler="tiny-ugan")
    with running_stack(data_dir, GANSERVE_API_KEYS=f"{OPERATOR},{USER}") as (http, _stack):
        yield str(http.base_url).rstrip("/")


@pytest.fixture
def client(stack):
    with Client(stack, api_key=USER) as client:
        yield client


def environment(url: str | None, key: str | None = USER) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANSERVE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if url is not None:
        env["GANSERVE_URL"] = url
    if key is not None:
        env["GANSERVE_API_KEY"] = key
    return env


def ganserve(
    *args: str, url: str | None, cwd: Path, key: str | None = USER, stdin: bytes | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m ganserve ARGS` (stdout as bytes, stderr as text)."""
    done = subprocess.run(
        [sys.executable, "-m", "ganserve", *args],
        env=environment(url, key),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        check=False,
        timeout=300,
    )
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr, stderr
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout, stderr)


def picture(width: int, height: int, fmt: str, seed: int) -> bytes:
    """An image file's bytes of random colours."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def translation_count(client: Client) -> int:
    return sum(1 for _ in client.jobs(kind="translation"))


def images_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_a_folder_of_mixed_images_with_a_corrupt_one(stack, client, tmp_path):
    photos = tmp_path / "photos"
    formats = [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("JPEG", "JPEG"), ("BMP", "bmp")]
    sizes = {}
    for k in range(19):
        fmt, ext = formats[k % len(formats)]
        folder = ("", "sub/", "sub/deeper/")[k % 3]
        name = f"{folder}image{k:02d}.{ext}"
        size = (20 + 3 * k, 16 + 2 * (k % 5))
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        (photos / name).write_bytes(picture(*size, fmt, seed=k))
        sizes[Path(name).with_suffix(".png").as_posix()] = size
    (photos / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 20)
    (photos / "notes.txt").write_text("not an image: not taken")
    before = translation_count(client)
    done = ganserve(
        "translate", "photos", "--model", "tiny-p2p", "-j", "4", url=stack, cwd=tmp_path
    )
    assert done.returncode == 1, done.stderr
    failed = re.search(r"Failed \(1\):\n  (.+): (.+)\n", done.stderr)
    assert failed is not None, done.stderr
    assert failed[1] == str(Path("photos") / "sub" / "broken.png")
    assert "not an image" in failed[2]
    assert "19 written" in done.stderr
    out = tmp_path / "translated"
    assert images_in(out) == sorted(sizes)
    for name, size in sizes.items():
        with Image.open(out / name) as result:
            result.load()
            assert result.format == "PNG" and result.size == size
    assert translation_count(client) - before == 19  # the corrupt one was refused at upload


def test_an_interrupted_run_is_finished_by_running_it_again(stack, client, tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    count = 30
    for k in range(count):
        (photos / f"{k:02d}.png").write_bytes(png(24, 24, seed=k))
    out.mkdir()
    kept = png(5, 5, seed=99)
    (out / "07.png").write_bytes(kept)  # there already: never translated, never overwritten
    args = ["translate", str(photos), "-m", "tiny-p2p", "--out", str(out), "-j", "1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "ganserve", *args],
        env=environment(stack),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C's default, even when this suite runs in a background job (where SIGINT is
        # ignored, and Python then keeps ignoring it)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.png"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Interrupted" in stderr and "Traceback" not in stderr
    written = images_in(out)
    assert 4 <= len(written) < count
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
    for name in written:
        with Image.open(out / name) as result:
            result.load()  # whole
    before = translation_count(client)
    again = ganserve(*args[:-2], url=stack, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"{len(written)} skipped" in again.stderr
    assert images_in(out) == [f"{k:02d}.png" for k in range(count)]
    assert translation_count(client) - before == count - len(written)  # only the missing ones
    assert (out / "07.png").read_bytes() == kept


def test_stdin_to_stdout(stack, tmp_path):
    done = ganserve(
        "translate", "-", "-m", "tiny-p2p", "--seed", "3", url=stack, cwd=tmp_path,
        stdin=picture(37, 21, "JPEG", seed=1),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Image.open(io.BytesIO(done.stdout)) as result:
        assert result.format == "PNG" and result.size == (37, 21)
    empty = ganserve("translate", "-", "-m", "tiny-p2p", url=stack, cwd=tmp_path, stdin=b"")
    assert empty.returncode == 2 and "stdin" in empty.stderr


def test_sample_writes_pngs(stack, tmp_path):
    args = ["sample", "-m", "tiny-ugan", "--count", "3", "--seed", "5", "--class-label", "1"]
    done = ganserve(*args, "--out", "first", url=stack, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    paths = done.stdout.decode().split()
    assert paths == [f"first/tiny-ugan-seed5-class1-{k:03d}.png" for k in range(3)]
    again = ganserve(*args, "--out", "again", url=stack, cwd=tmp_path)
    for path, other in zip(paths, again.stdout.decode().split(), strict=True):
        with Image.open(tmp_path / path) as first, Image.open(tmp_path / other) as second:
            assert first.size == (32, 32) and first.tobytes() == second.tobytes()
    too_many = ganserve("sample", "-m", "tiny-ugan", "-n", "100000", url=stack, cwd=tmp_path)
    assert too_many.returncode == 1 and "count" in too_many.stderr


def test_a_folder_translated_to_jpeg_and_samples_to_webp(stack, client, tmp_path):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    (photos / "a.png").write_bytes(picture(30, 20, "PNG", seed=1))
    (photos / "sub" / "b.jpg").write_bytes(picture(17, 23, "JPEG", seed=2))
    done = ganserve(
        "translate", "photos", "-m", "tiny-p2p", "--format", "jpeg", "--quality", "80",
        url=stack, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = tmp_path / "translated"
    assert images_in(out) == ["a.jpg", "sub/b.jpg"]
    for name, size in (("a.jpg", (30, 20)), ("sub/b.jpg", (17, 23))):
        with Image.open(out / name) as result:
            result.load()
            assert result.format == "JPEG" and result.size == size
    again = ganserve("translate", "photos", "-m", "tiny-p2p", "--format", "jpeg", url=stack,
                     cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0 and "2 skipped" in again.stderr  # the .jpg outputs are there
    job = next(iter(client.jobs(kind="translation")))
    assert (job.data["result"]["format"], job.data["result"]["quality"]) == ("jpeg", 80)

    sampled = ganserve("sample", "-m", "tiny-ugan", "-n", "2", "--seed", "4", "--format", "webp",
                       url=stack, cwd=tmp_path)  # fmt: skip
    assert sampled.returncode == 0, sampled.stderr
    paths = sampled.stdout.decode().split()
    assert paths == [f"samples/tiny-ugan-seed4-{k:03d}.webp" for k in range(2)]
    for path in paths:
        with Image.open(tmp_path / path) as result:
            result.load()
            assert result.format == "WEBP" and result.size == (32, 32)


def test_a_quality_for_png_is_a_usage_error(stack, tmp_path):
    (tmp_path / "in.png").write_bytes(png(8, 8))
    for command in (["translate", "in.png", "-m", "tiny-p2p"], ["sample", "-m", "tiny-ugan"]):
        done = ganserve(*command, "--quality", "80", url=stack, cwd=tmp_path)
        flat = " ".join(done.stderr.replace("│", " ").split())  # rich's error box, unwrapped
        assert done.returncode == 2 and "png is lossless" in flat, done.stderr
        wrong = ganserve(*command, "--format", "gif", url=stack, cwd=tmp_path)
        assert wrong.returncode == 2 and "--format" in wrong.stderr, wrong.stderr
    assert not (tmp_path / "translated").exists() and not (tmp_path / "samples").exists()


def test_train_follow_then_the_tables(stack, client, tmp_path):
    build_demo("edges2photo", tmp_path / "pairs", size=32, count=4)
    settings = ["--set", "image_size=32", "--set", "batch_size=2", "--set", "width=4"]
    datasets = len(client.datasets())
    bad = ganserve("train", "pairs", "-f", "pix2pix", "--set", "bogus=1", url=stack, cwd=tmp_path)
    assert bad.returncode == 1 and "bogus" in bad.stderr
    assert len(client.datasets()) == datasets  # the refused run's dataset is not left behind
    done = ganserve(
        "train", "pairs", "--family", "pix2pix", *settings, "--set", "steps=6",
        "--name", "cli-run", "--follow", url=stack, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "step 6/6" in done.stderr and "G_L1" in done.stderr
    assert done.stdout.decode().strip() == "model cli-run@1 registered: pix2pix translate, 32 px"
    queued = ganserve(
        "train", "pairs", "-f", "pix2pix", *settings, "--set", "steps=100000",
        url=stack, cwd=tmp_path,
    )  # fmt: skip
    assert queued.returncode == 0, queued.stderr
    job_id = queued.stdout.decode().strip()
    assert re.fullmatch(r"[0-9a-f]{32}", job_id)
    cancelled = ganserve("cancel", job_id, url=stack, cwd=tmp_path)
    assert cancelled.returncode == 0 and job_id in cancelled.stdout.decode()
    assert client.job(job_id).wait(60).status == "cancelled"
    ended = ganserve("cancel", job_id, url=stack, cwd=tmp_path)
    assert ended.returncode == 1 and "already ended" in ended.stderr

    models = ganserve("models", url=stack, cwd=tmp_path)
    assert models.returncode == 0, models.stderr
    rows = {
        parts[0]: parts for line in models.stdout.decode().splitlines() if (parts := line.split())
    }
    assert rows["tiny-p2p@1"][1:4] == ["tiny-p2p", "pix2pix", "translate"]
    assert rows["tiny-ugan@1"][2:7] == ["unetgan", "sample", "32", "px", "3"]
    assert rows["cli-run@1"][2] == "pix2pix"
    jobs = ganserve("jobs", "--kind", "training", url=stack, cwd=tmp_path)
    table = jobs.stdout.decode()
    assert re.search(rf"{job_id} +training +cancelled", table), table
    assert re.search(r"training +succeeded +100% +cli-run@1", table), table
    listed = ganserve("jobs", "--json", "--limit", "2", url=stack, cwd=tmp_path)
    assert [j["kind"] for j in json.loads(listed.stdout)] == ["training", "training"]


def test_errors_are_one_sentence(stack, tmp_path):
    (tmp_path / "in.png").write_bytes(png(8, 8))
    nobody = f"http://127.0.0.1:{free_port()}"
    gone = ganserve("models", url=nobody, cwd=tmp_path)
    assert gone.returncode == 1
    assert gone.stderr.startswith(f"ganserve: The server at {nobody} does not answer")
    assert len(gone.stderr.strip().splitlines()) == 1
    bad_url = ganserve("jobs", "--url", "ftp://example", url=None, cwd=tmp_path)
    assert bad_url.returncode == 2 and "http://" in bad_url.stderr
    for command in (["models"], ["translate", "in.png", "-m", "tiny-p2p"]):
        refused = ganserve(*command, url=stack, key="wrong-key", cwd=tmp_path)
        assert refused.returncode == 1, refused.stderr
        assert "API key" in refused.stderr and "--api-key" in refused.stderr
    assert not (tmp_path / "translated").exists()
    missing = ganserve("translate", "in.png", "-m", "no-such-model", url=stack, cwd=tmp_path)
    assert missing.returncode == 1 and "no-such-model" in missing.stderr
    usage = ganserve("translate", "nothing-here", "-m", "tiny-p2p", url=stack, cwd=tmp_path)
    assert usage.returncode == 2 and "no such file or folder" in usage.stderr


def test_the_api_commands_do_not_import_torch(tmp_path):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ganserve", "translate", "--help"],
        env=environment(None),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "--concurrency" in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()}
    assert "ganserve.api_commands" in imported
    assert not {name for name in imported if name.split(".")[0] in ("torch", "models", "workers")}
