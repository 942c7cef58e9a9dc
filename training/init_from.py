"""Starting a training run from a registered model (fine-tuning, `RunOptions.init_from`).

The family builds its networks from the run's config as for any run; this module then checks
that the model folder describes exactly those networks (architecture and every config field;
the gateway filled the fields in from the model's card, `core.fine_tune`) and copies the model's
weights in: the generator (and the EMA generator, which starts equal to it) from
`model.safetensors`, the discriminator from `discriminator.safetensors` when the folder carries
one whose config matches, else the run's fresh D. A mismatch raises `ValueError` naming every
differing field, before any step. At step 0 the run's generator computes what the model does.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from torch import nn

import models
from models.checkpoint import NoDiscriminator
from training.family import GANFamily

log = logging.getLogger(__name__)


def _differences(built: nn.Module, loaded: nn.Module) -> list[str]:
    """Sentences naming how `loaded`'s architecture and config differ from `built`'s."""
    built_arch = models.architecture_of(built).name
    loaded_arch = models.architecture_of(loaded).name
    if built_arch != loaded_arch:
        return [f"architecture ({built_arch} here, {loaded_arch} in the model)"]
    ours, theirs = dataclasses.asdict(built.config), dataclasses.asdict(loaded.config)
    return [
        f"{key} ({ours.get(key)!r} here, {theirs.get(key)!r} in the model)"
        for key in sorted(ours.keys() | theirs.keys())
        if ours.get(key) != theirs.get(key)
    ]


def start_from(family: GANFamily, folder: Path) -> bool:
    """Load the model folder's networks into `family`'s (before any step); whether its
    discriminator was loaded too (logged). ValueError naming the fields when the networks
    differ."""
    source = models.load(folder)
    differing = _differences(family.G, source)
    if differing:
        raise ValueError(
            f"init_from: the model {folder.name!r} is not the network this run builds: "
            + "; ".join(differing)
        )
    family.G.load_state_dict(source.state_dict())
    if family.G_ema is not None:
        family.G_ema.load_state_dict(source.state_dict())
    try:
        critic = models.load_discriminator(folder)
    except NoDiscriminator:
        log.info("starting from %s: its generator, and a fresh discriminator", folder.name)
        return False
    if _differences(family.D, critic):  # e.g. another PatchGAN size
        log.info("starting from %s: its generator; its D differs, a fresh one", folder.name)
        return False
    family.D.load_state_dict(critic.state_dict())
    log.info("starting from %s: its generator and discriminator", folder.name)
    return True
