"""Tiny real models for the worker tests (random weights, saved in the checkpoint format).

The storage fixture saves generators only; `save_tiny_discriminator` adds a model's discriminator.
"""

from __future__ import annotations

from pathlib import Path

import torch

import models

TINY_MODELS = {
    "p2p": ("pix2pix-generator", {"image_size": 32, "base_width": 4}),
    "p2p-grey": ("pix2pix-generator", {"image_size": 32, "base_width": 4, "in_channels": 1}),
    "digits": (
        "unetgan-generator",
        {"image_size": 32, "width": 4, "latent_dim": 8, "num_classes": 3},
    ),
    "faces": (
        "pggan-generator",
        {"max_resolution": 8, "channels": 1, "latent_dim": 8, "fmap_base": 16, "fmap_max": 8},
    ),
}


def save_tiny_model(models_dir: Path, model_id: str, seed: int = 0, **overrides) -> Path:
    """Write one of TINY_MODELS (random weights from `seed`, config `overrides` applied) as
    `models_dir/model_id`."""
    name, config = TINY_MODELS[model_id]
    torch.manual_seed(seed)
    model = models.create(name, **(config | overrides))
    folder = models_dir / model_id
    models.save(model, folder, provenance={"run": "test"}, metrics={"swd_avg": 1.0})
    return folder


TINY_DISCRIMINATORS = {
    "p2p": ("pix2pix-discriminator", {"base_width": 4}),
    "p2p-grey": ("pix2pix-discriminator", {"base_width": 4, "in_channels": 1}),
    "digits": ("unetgan-discriminator", {"image_size": 32, "width": 4, "num_classes": 3}),
    "faces": (
        "pggan-discriminator",
        {"max_resolution": 8, "channels": 1, "fmap_base": 16, "fmap_max": 8},
    ),
}


def save_tiny_discriminator(models_dir: Path, model_id: str, seed: int = 0, **overrides) -> Path:
    """Add the discriminator of one of TINY_MODELS (random weights, config `overrides` applied)
    to its saved folder."""
    name, config = TINY_DISCRIMINATORS[model_id]
    config = config | overrides
    torch.manual_seed(seed)
    folder = models_dir / model_id
    models.save_discriminator(folder, models.create(name, **config), name, config)
    return folder
