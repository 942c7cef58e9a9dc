"""A training run's config is checked once (`core.training_runs`), by the gateway and the worker."""

from __future__ import annotations

import pytest

from core.training_config import PGGANConfig, UNetGANConfig
from core.training_runs import InvalidConfig, check_config


@pytest.mark.parametrize(
    ("family", "config", "field", "needle"),
    [
        ("pix2pix", {"colour": "red"}, "colour", "unknown field for pix2pix"),
        ("pix2pix", {"steps": -3}, "steps", "greater than or equal to 1"),
        ("pix2pix", {"lr": "fast"}, "lr", "valid number"),
        ("pix2pix", {"image_size": 7}, "image_size", "greater than or equal to 8"),
        ("pix2pix", {"image_size": 48}, "image_size", "built for image sizes 8, 16"),
        ("unetgan", {"image_size": 16}, "image_size", "32, 64, 128, 256"),
        ("unetgan", {"p_mix_max": 2.0}, "config", "p_mix_max must lie in [0, 1]"),
        ("unetgan", {"steps": True}, "steps", "valid integer"),
        ("pggan", {"steps": 100}, "steps", "phase_images"),
        ("pggan", {"batch_size": 4}, "batch_size", "batch_sizes"),
        ("pix2pix", ["steps", 3], "config", "must be a JSON object"),
        ("stylegan", {}, "family", "unknown family"),
        ("pix2pix", {"steps": 10_000_001}, "steps", "less than or equal to 10000000"),
        ("pix2pix", {"metrics_images": 50_001}, "metrics_images", "less than or equal to 50000"),
        ("pix2pix", {"width": 4096}, "width", "less than or equal to 1024"),
        ("pix2pix", {"lr": 0.0}, "lr", "greater than 0"),
        ("unetgan", {"latent_dim": 100_000}, "latent_dim", "less than or equal to 4096"),
        ("unetgan", {"g_lr": float("nan")}, "g_lr", "finite number"),
        ("unetgan", {"beta2": 1.0}, "beta2", "less than 1"),
        ("pggan", {"fmap_base": 1 << 20}, "fmap_base", "less than or equal to 16384"),
        ("pggan", {"phase_images": 0}, "phase_images", "greater than or equal to 1"),
        ("pggan", {"drift": float("inf")}, "drift", "finite number"),
    ],
)
def test_a_bad_config_names_its_field(family, config, field, needle):
    with pytest.raises(InvalidConfig) as raised:
        check_config(family, config)
    assert raised.value.field == field, raised.value
    assert needle in raised.value.message


def test_defaults_fill_in_and_a_flat_image_set_trains_unconditionally():
    run, config = check_config("unetgan", {"steps": 40, "g_lr": 1e-4}, kind="images")
    assert run["steps"] == 40 and run["image_size"] == 32  # the service defaults
    assert isinstance(config, UNetGANConfig) and config.unconditional and config.g_lr == 1e-4
    run, config = check_config("unetgan", {}, kind="labeled")
    assert not config.unconditional
    run, config = check_config("pggan", {"phase_images": 100})
    assert isinstance(config, PGGANConfig) and "steps" not in run


def test_the_worker_runs_records_queued_before_the_strict_rules():
    old = {"steps": "40", "batch_size": 8, "phase_images": 100}
    with pytest.raises(InvalidConfig):
        check_config("pggan", old)  # the gateway refuses it now
    run, config = check_config("pggan", old, strict=False)  # the worker runs it as before
    assert "batch_size" not in run and "steps" not in run and config.phase_images == 100
    run, _ = check_config("pix2pix", {"steps": "40"}, strict=False)
    assert run["steps"] == 40
