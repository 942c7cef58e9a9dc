"""Fine-tuning (`RunOptions.init_from`): a run that starts from a registered model's networks."""

import dataclasses
from pathlib import Path

import pytest
import torch

import models
from core.families import FAMILIES
from core.fine_tune import InitMismatch, fine_tune_config
from core.model_folder import read_card_json
from core.training_runs import check_config
from models.pix2pix.translation import translate
from training.demo import build_demo
from training.loop import RunOptions, Trainer, train

DEMO = FAMILIES["pix2pix"].demo


def run_options(data: Path, out: Path, run: dict, **extra) -> RunOptions:
    return RunOptions(data=data, out=out, device="cpu", progress_bar=False, **{**run, **extra})


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory) -> Path:
    """The demo pix2pix model's networks (its own config and dataset), after 2 steps."""
    root = tmp_path_factory.mktemp("demo-model")
    data = build_demo(DEMO.dataset, root / "data", size=64, count=8)
    run, config = check_config("pix2pix", {**DEMO.config, "steps": 2, "checkpoint_every": 2})
    result = train("pix2pix", run_options(data, root / "run", run, sample_every=2), config)
    return result.model_dir


def test_step_zero_computes_what_the_source_model_computes(demo_model, tmp_path):
    data = build_demo(DEMO.dataset, tmp_path / "pairs", size=64, count=8, seed=7)  # new pairs
    card = read_card_json(demo_model)
    merged = fine_tune_config("pix2pix", card, {"steps": 3, "batch_size": 2})
    assert merged["width"] == DEMO.config["width"] and merged["norm"] == "instance"
    run, config = check_config("pix2pix", merged)
    out = tmp_path / "tuned"
    trainer = Trainer("pix2pix", run_options(data, out, run, init_from=demo_model), config)
    source = models.load(demo_model)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        assert torch.equal(translate(trainer.family.G, x, seed=9), translate(source, x, seed=9))
    critic = models.load_discriminator(demo_model)
    for key, value in critic.state_dict().items():
        assert torch.equal(trainer.family.D.state_dict()[key], value), key  # its D too
    result = trainer.run()
    assert result.status == "completed" and result.step == 3
    tuned = models.load(result.model_dir)
    with torch.no_grad():
        moved = translate(tuned, x, seed=9) - translate(source, x, seed=9)
    assert moved.abs().max() > 0  # it trained from there


def test_a_mismatched_model_is_refused_naming_the_fields(demo_model, tmp_path):
    card = read_card_json(demo_model)
    with pytest.raises(InitMismatch) as caught:
        fine_tune_config("pix2pix", card, {"width": 8, "image_size": 128})
    assert "width (8 here, 32 in the model)" in caught.value.message
    assert "image_size (128 here, 64 in the model)" in caught.value.message
    with pytest.raises(InitMismatch, match="unetgan run cannot start from it"):
        fine_tune_config("unetgan", card, {})
    with pytest.raises(InitMismatch, match="growth schedule"):
        fine_tune_config("pggan", {**card, "family": "pggan"}, {})
    # the trainer checks the built networks too (here: other channels than the dataset's)
    data = build_demo("edges2photo", tmp_path / "edges", size=64, count=4)  # grey inputs
    run, config = check_config("pix2pix", fine_tune_config("pix2pix", card, {"steps": 1}))
    with pytest.raises(ValueError, match="in_channels"):
        Trainer("pix2pix", run_options(data, tmp_path / "out", run, init_from=demo_model), config)


def test_without_a_discriminator_the_run_trains_a_fresh_one(demo_model, tmp_path):
    bare = tmp_path / "bare"
    generator = models.load(demo_model)
    models.save(generator, bare)
    data = build_demo(DEMO.dataset, tmp_path / "pairs", size=64, count=4, seed=7)
    run, config = check_config("pix2pix", fine_tune_config("pix2pix", read_card_json(bare), {}))
    torch.manual_seed(0)
    trainer = Trainer("pix2pix", run_options(data, tmp_path / "out", run, init_from=bare), config)
    critic = models.load_discriminator(demo_model)
    differs = [
        key
        for key, value in critic.state_dict().items()
        if value.is_floating_point() and not torch.equal(trainer.family.D.state_dict()[key], value)
    ]
    assert differs  # a fresh D, not the demo's
    assert dataclasses.asdict(trainer.family.G.config) == dataclasses.asdict(generator.config)
