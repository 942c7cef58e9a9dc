"""The shared training loop: real steps on real demo images, checkpoints, resume, cancellation."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import models
from core.model_folder import has_discriminator
from core.storage import RUN_STATE_FILE
from training.data import DatasetError
from training.demo import build_demo
from training.families.pggan import PGGANConfig
from training.families.pix2pix import Pix2PixConfig
from training.families.unetgan import UNetGANConfig
from training.loop import RunOptions, Trainer, train
from training.state import StateError

TINY = {
    "pix2pix": Pix2PixConfig(width=4),
    "unetgan": UNetGANConfig(width=4, latent_dim=8, warmup_steps=2),
    "pggan": PGGANConfig(
        latent_dim=16, fmap_base=64, fmap_max=16, phase_images=8, batch_sizes="4:4,8:4,16:4,32:4"
    ),
}


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("demo")
    return {
        "pix2pix": build_demo("edges2photo", root / "edges2photo", size=32, count=12),
        "unetgan": build_demo("digits", root / "digits", size=32, count=40),
        "pggan": build_demo("faces", root / "faces", size=16, count=20),
    }


def options(data: Path, out: Path, **overrides) -> RunOptions:
    base = {
        "data": data,
        "out": out,
        "image_size": 32,
        "batch_size": 2,
        "steps": 4,
        "seed": 3,
        "device": "cpu",
        "sample_every": 2,
        "checkpoint_every": 2,
        "log_every": 1,
        "sample_count": 4,
        "progress_bar": False,
    }
    return RunOptions(**{**base, **overrides})


@pytest.mark.parametrize("family", ["pix2pix", "unetgan", "pggan"])
def test_every_family_trains_and_writes_a_loadable_model(family, demo_data, tmp_path):
    size = 16 if family == "pggan" else 32
    seen = []
    result = train(
        family,
        options(demo_data[family], tmp_path / "run", image_size=size),
        TINY[family],
        on_progress=seen.append,
    )
    assert result.status == "completed" and result.step == result.total
    lines = [json.loads(x) for x in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, result.total + 1))
    losses = [v for x in lines for k, v in x.items() if k.startswith(("D_", "G_"))]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    assert [p.step for p in seen] == list(range(1, result.total + 1))
    assert list((tmp_path / "run" / "samples").glob("*.png"))
    assert list((tmp_path / "run" / "tensorboard").iterdir())
    g = models.load(result.model_dir)
    card = models.read_card(result.model_dir)
    assert card.family == family and card.image_size == size
    assert card.provenance["step"] == result.total
    assert g is not None
    # the trained discriminator sits beside the generator, equal to the one in the state
    assert has_discriminator(result.model_dir)
    d = models.load_discriminator(result.model_dir)
    assert models.architecture_of(d).name == f"{family}-discriminator"
    trained = torch.load(tmp_path / "run" / RUN_STATE_FILE, weights_only=True)["nets"]["D"]
    assert all(torch.equal(tensor, trained[k]) for k, tensor in d.state_dict().items())


def test_resume_equals_an_uninterrupted_run(demo_data, tmp_path):
    data = demo_data["pix2pix"]
    straight = train("pix2pix", options(data, tmp_path / "a", steps=6), TINY["pix2pix"])
    assert (straight.status, straight.step) == ("completed", 6)
    stops = iter([False, False, False, True])
    cancelled = train(
        "pix2pix",
        options(data, tmp_path / "b", steps=6),
        TINY["pix2pix"],
        should_stop=lambda: next(stops),
    )
    assert (cancelled.status, cancelled.step) == ("cancelled", 3)
    assert models.read_card(cancelled.model_dir).provenance["step"] == 3  # last checkpoint kept
    resumed = train("pix2pix", options(data, tmp_path / "b", steps=6, resume=True), TINY["pix2pix"])
    assert (resumed.status, resumed.step) == ("completed", 6)
    a = torch.load(tmp_path / "a" / RUN_STATE_FILE, weights_only=True)
    b = torch.load(tmp_path / "b" / RUN_STATE_FILE, weights_only=True)
    for net in ("G", "D"):
        for key, tensor in a["nets"][net].items():
            assert torch.equal(tensor, b["nets"][net][key]), f"{net}.{key} differs"
    assert (
        load_file(tmp_path / "a" / "model" / "model.safetensors").keys()
        == load_file(tmp_path / "b" / "model" / "model.safetensors").keys()
    )
    steps_b = [
        json.loads(x)["step"] for x in (tmp_path / "b" / "stats.jsonl").read_text().splitlines()
    ]
    assert steps_b == list(range(1, 7))


def test_existing_run_needs_resume(demo_data, tmp_path):
    train("pix2pix", options(demo_data["pix2pix"], tmp_path / "r", steps=2), TINY["pix2pix"])
    with pytest.raises(StateError, match="pass --resume"):
        Trainer("pix2pix", options(demo_data["pix2pix"], tmp_path / "r", steps=2), TINY["pix2pix"])


def test_corrupt_training_state_is_a_clear_error(demo_data, tmp_path):
    train("pix2pix", options(demo_data["pix2pix"], tmp_path / "r", steps=2), TINY["pix2pix"])
    state = tmp_path / "r" / RUN_STATE_FILE
    state.write_bytes(state.read_bytes()[:50])
    with pytest.raises(StateError, match="cannot resume from"):
        Trainer(
            "pix2pix", options(demo_data["pix2pix"], tmp_path / "r", resume=True), TINY["pix2pix"]
        )


def test_unknown_family_and_empty_dataset(tmp_path):
    with pytest.raises(ValueError, match="unknown family 'stylegan'"):
        Trainer("stylegan", options(tmp_path, tmp_path / "out"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError):
        Trainer("unetgan", options(tmp_path / "empty", tmp_path / "out"), TINY["unetgan"])


def test_same_seed_same_weights_on_cpu(demo_data, tmp_path):
    config = TINY["unetgan"]  # CutMix and its random masks included (warm-up of 2 steps)
    for run in ("a", "b"):
        train("unetgan", options(demo_data["unetgan"], tmp_path / run, steps=5), config)
    a = load_file(tmp_path / "a" / "model" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = train("unetgan", options(demo_data["unetgan"], tmp_path / "c", steps=5, seed=4), config)
    c = load_file(other.model_dir / "model.safetensors")
    assert any(not torch.equal(a[k], c[k]) for k in a)
