"""`python -m training.evaluate` as a real process, and the loop's metrics."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.main import get_command

import models
from training.demo import build_demo
from training.evaluate import app as evaluate_app
from training.families.pix2pix import Pix2PixConfig
from training.families.unetgan import UNetGANConfig
from training.loop import RunOptions, Trainer, train
from training.metrics.fidelity import compute_fidelity
from training.metrics.inception import FIDInception, load_inception


def evaluate(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training.evaluate", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """Real faces, and a 'fake' folder of mixed sizes and formats (PNG, JPEG, grey)."""
    root = tmp_path_factory.mktemp("eval")
    faces = build_demo("faces", root / "faces", size=32, count=24)
    mixed = root / "mixed"
    mixed.mkdir()
    rng = np.random.default_rng(0)
    for i, path in enumerate(sorted(faces.glob("*.png"))[:12]):
        image = Image.open(path).convert("RGB").resize((40 + i, 40 + i))
        if i % 3 == 0:
            image.convert("L").save(mixed / f"{i}.png")
        else:
            image.save(mixed / f"{i}.jpg", quality=90)
    noise = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    Image.fromarray(noise).save(mixed / "noise.webp")
    return {"faces": faces, "mixed": mixed, "root": root}


def test_swd_json_between_folders_of_mixed_sizes(folders):
    result = evaluate(
        "swd", "--real", str(folders["faces"]), "--fake", str(folders["mixed"]), "--json"
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert set(values) == {"32", "16", "avg"}
    assert all(v > 0 for v in values.values())
    assert "swd at 32x32 (24 real, 13 fake)" in result.stderr


def test_swd_table_for_a_model(folders, tmp_path):
    g = models.create("unetgan-generator", image_size=32, width=4, latent_dim=8)
    models.save(g, tmp_path / "model")
    result = evaluate(
        "swd", "--real", str(folders["faces"]), "--model", str(tmp_path / "model"), "--count", "16"
    )
    assert result.returncode == 0, result.stderr
    assert "swd at 32x32 (24 real, 16 fake)" in result.stdout
    assert "avg" in result.stdout


def test_fid_without_weights_is_unavailable_with_a_hint(folders):
    env = {k: v for k, v in __import__("os").environ.items() if k != "GANSERVE_INCEPTION_WEIGHTS"}
    result = evaluate(
        "fid", "--real", str(folders["faces"]), "--fake", str(folders["mixed"]), "--json", env=env
    )
    assert result.returncode == 0, result.stderr
    assert "GANSERVE_INCEPTION_WEIGHTS" in json.loads(result.stdout)["fid"]


def test_bad_arguments_are_clear(folders, tmp_path):
    both = evaluate("swd", "--real", str(folders["faces"]))
    assert both.returncode == 2 and "exactly one of --fake and --model" in both.stderr
    (tmp_path / "empty").mkdir()
    empty = evaluate("swd", "--real", str(tmp_path / "empty"), "--fake", str(folders["mixed"]))
    assert empty.returncode == 2 and "error:" in empty.stderr
    tiny = evaluate(
        "swd", "--real", str(folders["faces"]), "--fake", str(folders["mixed"]), "--size", "8"
    )
    assert tiny.returncode == 2 and "16" in tiny.stderr


def test_metric_commands_share_one_option_list():
    commands = get_command(evaluate_app).commands
    names = {
        metric: {param.name for param in commands[metric].params} - {"help"}
        for metric in ("swd", "fid", "kid", "is")
    }
    shared = {"fake", "model", "size", "count", "seed", "device", "as_json"}
    assert names["fid"] == names["kid"] == shared | {"real", "weights"}
    assert names["swd"] == shared | {"real"}
    assert names["is"] == shared | {"weights"}


def test_pix2pix_metrics_of_a_trained_model(tmp_path):
    data = build_demo("edges2photo", tmp_path / "data", size=32, count=8)
    run = train(
        "pix2pix",
        RunOptions(
            data=data,
            out=tmp_path / "run",
            image_size=32,
            batch_size=2,
            steps=2,
            device="cpu",
            progress_bar=False,
            metrics_every=1,
            metrics_images=4,
        ),
        Pix2PixConfig(width=4),
    )
    card = models.read_card(run.model_dir)
    assert set(card.metrics) >= {"l1", "psnr", "ssim", "pairs", "step"}
    val_pairs = len(list((data / "val").iterdir()))
    assert card.metrics["step"] == 2 and card.metrics["pairs"] == min(4, val_pairs)
    lines = [json.loads(x) for x in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert any("metric_l1" in line for line in lines)
    result = evaluate("pix2pix", "--model", str(run.model_dir), "--data", str(data), "--json")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert 0 < values["l1"] < 1 and values["pairs"] == val_pairs
    wrong = evaluate("pix2pix", "--model", str(tmp_path / "nope"), "--data", str(data))
    assert wrong.returncode == 2 and "not a model folder" in wrong.stderr


def test_training_stores_swd_in_the_model_card(tmp_path):
    data = build_demo("digits", tmp_path / "digits", size=16, count=20)
    run = train(
        "unetgan",
        RunOptions(
            data=data,
            out=tmp_path / "run",
            image_size=32,
            batch_size=4,
            steps=2,
            device="cpu",
            progress_bar=False,
            metrics_every=2,
            metrics_images=8,
        ),
        UNetGANConfig(width=4, latent_dim=8),
    )
    metrics = models.read_card(run.model_dir).metrics
    assert {"swd_32", "swd_16", "swd_avg"} <= set(metrics)
    assert metrics["swd_avg"] > 0
    assert metrics["fid"].startswith("unavailable")


def test_training_loads_the_inception_weights_once_per_run(tmp_path, monkeypatch):
    weights = tmp_path / "inception.pth"
    torch.save(FIDInception().state_dict(), weights)
    loads = []

    def counting_load(path, device="cpu"):
        loads.append(path)
        return load_inception(path, device)

    monkeypatch.setattr("training.loop.load_inception", counting_load)
    data = build_demo("digits", tmp_path / "digits", size=16, count=8)

    def trainer(name: str, inception_weights: Path) -> Trainer:
        opts = RunOptions(
            data=data,
            out=tmp_path / name,
            image_size=32,
            batch_size=4,
            steps=2,
            device="cpu",
            progress_bar=False,
            metrics_images=4,
            inception_weights=inception_weights,
        )
        return Trainer("unetgan", opts, UNetGANConfig(width=4, latent_dim=8))

    run = trainer("run", weights)
    first, second = run.evaluate(), run.evaluate()
    assert loads == [weights]  # loaded on first use, then reused
    assert isinstance(first["fid"], float) and first["fid"] == second["fid"]
    assert isinstance(second["is_mean"], float)

    missing = tmp_path / "missing.pth"
    broken = trainer("broken", missing)
    expected = compute_fidelity(iter(()), iter(()), weights=missing, metrics=["fid"])["fid"]
    assert expected.startswith("unavailable: ") and "does not exist" in expected
    assert broken.evaluate()["fid"] == expected
    assert broken.evaluate()["fid"] == expected  # reported the same way every time
