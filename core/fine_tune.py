"""Fine-tuning: a training run that starts from a registered model (`init_from`), torch-free.

The run must build the very networks the model holds, so its architecture fields come from the
model's card: a field the job's `config` leaves out is taken from the model (its width, norm,
latent size, image size; pix2pix also its direction), and one the job sets to another value is
refused, naming every field that differs (the gateway answers 422 `init_mismatch`). What only
the dataset decides (image channels, a U-Net GAN's classes) is checked against the dataset the
gateway knows, and again by the training worker, which compares the built networks' configs with
the card before it loads the weights. Progressive GAN runs cannot start from a model: their
growth schedule starts at 4x4 and sets the networks' stage itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from core.families import FAMILIES
from core.training_runs import InvalidConfig


class InitMismatch(InvalidConfig):
    """A fine-tune run whose config or dataset differs from the model's architecture."""


def _model_values(card: dict[str, Any]) -> dict[str, Any]:
    """The run config values that rebuild the card's generator."""
    family = FAMILIES[card["family"]]
    values = {run: card["config"].get(g) for run, g in family.generator_fields}
    values["image_size"] = card["image_size"]
    hyperparameters = {f.name for f in dataclasses.fields(family.config)}
    if "unconditional" in hyperparameters:
        values["unconditional"] = int(card["num_classes"]) == 0
    training = (card.get("provenance") or {}).get("training")
    if "direction" in hyperparameters and isinstance(training, dict) and "direction" in training:
        values["direction"] = training["direction"]  # which side of a pair is the input
    return values


def fine_tune_config(
    family: str, card: dict[str, Any], config: dict[str, Any], classes: int | None = None
) -> dict[str, Any]:
    """The job's config with the model's architecture fields filled in; InitMismatch naming
    every field that differs from the model's. `classes`: the dataset's class count if known."""
    if card["family"] != family:
        raise InitMismatch(
            "family", f"the model is a {card['family']} model; a {family} run cannot start from it"
        )
    if not FAMILIES[family].generator_fields:
        raise InitMismatch(
            "init_from",
            f"a {family} run cannot start from a model: its growth schedule starts at 4x4 and "
            "sets the networks' stage itself",
        )
    wanted = _model_values(card)
    differing = [
        f"{key} ({config[key]!r} here, {value!r} in the model)"
        for key, value in wanted.items()
        if key in config and config[key] != value
    ]
    model_classes = int(card["num_classes"])
    conditional = "unconditional" in wanted and not config.get(
        "unconditional", wanted["unconditional"]
    )
    if conditional and classes is not None and classes != model_classes:
        differing.append(f"classes ({classes} in the dataset, {model_classes} in the model)")
    if differing:
        first = differing[0].split(" ", 1)[0]
        raise InitMismatch(
            first,
            "the run must build the model's networks, but these differ: " + "; ".join(differing),
        )
    return {**wanted, **config}
