"""`python -m training` as a real process."""

import subprocess
import sys

import models
from training.demo import build_demo


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", *args], capture_output=True, text=True, check=False
    )


def test_help_lists_shared_and_family_options():
    result = run("pix2pix", "--help")
    assert result.returncode == 0
    for option in (
        "--data",
        "--out",
        "--image-size",
        "--batch-size",
        "--steps",
        "--seed",
        "--device",
        "--resume",
        "--sample-every",
        "--checkpoint-every",
        "--lambda-l1",
        "--direction",
        "--patch",
    ):
        assert option in result.stdout
    assert "--cutmix" in run("unetgan", "--help").stdout
    assert "--phase-images" in run("pggan", "--help").stdout


def test_trains_from_the_command_line(tmp_path):
    data = build_demo("edges2photo", tmp_path / "data", size=32, count=6)
    result = run(
        "pix2pix",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--image-size",
        "32",
        "--batch-size",
        "2",
        "--steps",
        "2",
        "--width",
        "4",
        "--device",
        "cpu",
        "--no-progress-bar",
    )
    assert result.returncode == 0, result.stderr
    assert "completed at step 2/2" in result.stdout
    assert models.read_card(tmp_path / "run" / "model").architecture == "pix2pix-generator"


def test_bad_dataset_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run(
        "unetgan",
        "--data",
        str(tmp_path / "empty"),
        "--out",
        str(tmp_path / "run"),
        "--device",
        "cpu",
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "no usable image in the dataset" in result.stderr


def test_torchrun_trains_on_two_processes(tmp_path):
    data = build_demo("faces", tmp_path / "data", size=16, count=8)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "training",
            "pggan",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "run"),
            "--image-size",
            "8",
            "--phase-images",
            "4",
            "--fmap-base",
            "32",
            "--fmap-max",
            "8",
            "--latent-dim",
            "8",
            "--batch-sizes",
            "4:2,8:2",
            "--device",
            "cpu",
            "--no-progress-bar",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("completed at step") == 1  # rank 0 alone reports
    options = (tmp_path / "run" / "options.json").read_text()
    assert '"world_size": 2' in options
    assert models.read_card(tmp_path / "run" / "model").architecture == "pggan-generator"
    critic = models.load_discriminator(tmp_path / "run" / "model")  # unwrapped from DDP
    assert models.architecture_of(critic).name == "pggan-discriminator"
