"""`training.demo`: demo datasets from images shipped in installed packages."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.data import ImageDataset, PairedDataset
from training.demo import DEMOS, MARKER, build_demo

REPO = Path(__file__).resolve().parents[2]
PHOTOS = [
    "astronaut",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "motorcycle_left",
    "retina",
    "rocket",
]


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("demo building tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png"))


@pytest.mark.parametrize("name", ["edges2photo", "grey2colour", "labels2photo"])
def test_paired_demos_build_and_load(tmp_path, no_network, name, recwarn):
    root = build_demo(name, tmp_path / name)
    assert root == tmp_path / name
    assert (len(pngs(root / "train")), len(pngs(root / "val"))) == (240, 16)
    record = json.loads((root / MARKER).read_text())
    assert record["kind"] == "paired" and record["sources"] == PHOTOS  # every photo loads offline
    train = PairedDataset(root, image_size=64)
    val = PairedDataset(root, image_size=64, split="val", augment=False)
    assert (len(train), len(val), train.layout) == (240, 16, "aligned")
    channels_a = 3 if name == "labels2photo" else 1
    assert (train.channels_a, train.channels_b) == (channels_a, 3)
    item = val.get(0, torch.Generator().manual_seed(0))
    assert item["A"].shape == (channels_a, 64, 64) and item["B"].shape == (3, 64, 64)
    if name == "labels2photo":  # every pixel is one of the palette's label colours
        from training.demo import LABEL_PALETTE

        pixels = ((item["A"] + 1) * 127.5).round().to(torch.uint8).flatten(1).T  # (S*S, 3)
        palette = {tuple(c) for c in LABEL_PALETTE.tolist()}
        assert {tuple(p) for p in pixels.tolist()} <= palette
    if name == "edges2photo":  # black edges on a mostly white background
        assert set(item["A"].unique().tolist()) <= {-1.0, 1.0} and item["A"].mean() > 0
    assert len(recwarn) == 0


def test_digits_build_class_folders(tmp_path, no_network):
    root = build_demo("digits", tmp_path / "digits")
    ds = ImageDataset(root, image_size=32)
    assert (len(ds), ds.num_classes, ds.channels) == (1797, 10, 1)
    assert ds.class_names == [str(d) for d in range(10)]
    counts = torch.bincount(ds.labels, minlength=10)
    assert counts.sum() == 1797 and counts.min() >= 170
    assert json.loads((root / MARKER).read_text())["kind"] == "labeled"


def test_faces_build_a_flat_folder_of_the_faces(tmp_path, no_network):
    root = build_demo("faces", tmp_path / "faces", size=16)
    ds = ImageDataset(root, image_size=16)
    assert (len(ds), ds.num_classes, ds.channels) == (100, 0, 1)
    assert ds.get(0, torch.Generator())["x"].shape == (1, 16, 16)
    assert json.loads((root / MARKER).read_text())["kind"] == "images"


def test_size_count_and_seed(tmp_path):
    a = build_demo("edges2photo", tmp_path / "a", size=32, count=30, seed=1)
    b = build_demo("edges2photo", tmp_path / "b", size=32, count=30, seed=1)
    c = build_demo("edges2photo", tmp_path / "c", size=32, count=30, seed=2)
    files = [p.relative_to(a) for p in pngs(a)]
    assert len(files) == 30 + 2
    assert [p.relative_to(b) for p in pngs(b)] == files
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files)
    assert PairedDataset(a, image_size=32, augment=False).get(0, torch.Generator())["B"].shape == (
        3,
        32,
        32,
    )
    digits = build_demo("digits", tmp_path / "d", size=16, count=50, seed=3)
    assert len(ImageDataset(digits, image_size=16)) == 50


def test_rebuilds_a_demo_folder_but_refuses_any_other(tmp_path):
    root = build_demo("faces", tmp_path / "faces", count=10)
    build_demo("faces", root, count=5)
    assert len(pngs(root)) == 5
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        build_demo("faces", tmp_path / "mine")
    assert (tmp_path / "mine" / "precious.txt").exists()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"unknown demo dataset 'cifar'.*edges2photo.*faces"):
        build_demo("cifar", tmp_path)
    with pytest.raises(ValueError, match="between 1 and 100"):
        build_demo("faces", tmp_path / "f", count=101)
    with pytest.raises(ValueError, match="size"):
        build_demo("digits", tmp_path / "d", size=2)
    assert set(DEMOS) == {"edges2photo", "grey2colour", "labels2photo", "digits", "faces"}


def run_demo(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "training.demo", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_builds_a_demo(tmp_path):
    out = tmp_path / "digits"
    result = run_demo("digits", "--out", str(out), "--size", "16", "--count", "40", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    assert len(pngs(out)) == 40
    assert ImageDataset(out, image_size=16).num_classes == 10


def test_cli_unknown_name_exits_2_listing_the_valid_ones(tmp_path):
    result = run_demo("cifar", "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "unknown demo dataset 'cifar'" in result.stderr
    assert "edges2photo, grey2colour, labels2photo, digits, faces" in result.stderr
    assert not (tmp_path / "x").exists()
