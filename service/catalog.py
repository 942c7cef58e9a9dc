"""The models the service can use, read from model folders as plain JSON.

A model is a folder `<data_dir>/models/<id>/` holding both `config.json` and `model.safetensors`
(the checkpoint format of the `models` package), and `discriminator.safetensors` when it carries
its trained discriminator (recorded under `discriminator` in `config.json`), which realness maps
(`POST /v1/inspections`) need. The gateway never loads weights: it reads `config.json` only, so it
needs neither torch nor the `models` package. Folders being written
(hidden names, or without the weights yet) and folders with an unreadable `config.json` are skipped.

A model's owner is `provenance.owner` in its card (the key that trained or imported it); a caller
sees the models `service.security.Caller.sees` allows, and any other id is unknown to it (404).
`provenance.listing` holds the name and description a user gave it (`PATCH /v1/models/{id}`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from core.families import INSPECTABLE_FAMILIES
from core.model_folder import CONFIG_FILE, WEIGHTS_FILE, has_discriminator, read_card_json
from core.storage import SAFE_ID
from service.errors import ApiError
from service.examples import example_sources
from service.security import Caller

log = logging.getLogger(__name__)


class ModelInfo(BaseModel):
    """What the API says about one model."""

    id: str
    name: str
    description: str = ""
    family: str
    task: str
    architecture: str
    image_size: int
    channels: int
    classes: int
    latent_dim: int | None = None  # sampling models: the length of a latent vector
    metrics: dict[str, Any]
    run: str | None
    created: str
    discriminator: bool
    dataset: str | None = None  # id of the dataset it was trained on, when known
    direction: str = "AtoB"  # translation models: which side of a pair is the input
    examples: int = 0  # translation models: example inputs at /v1/models/{id}/examples/{k}
    shared: bool = True  # offered to every key (demo and operator-installed models)
    owner: str | None = Field(default=None, exclude=True)  # never shown
    training_job: str | None = Field(default=None, exclude=True)  # the run that registers it


def iso_time(timestamp: float | None) -> str | None:
    """A Unix time as an ISO 8601 UTC string (`2024-01-31T12:00:00.000Z`)."""
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read_model(models_dir: Path, model_id: str, caller: Caller | None = None) -> ModelInfo | None:
    """The model with this id, or None when there is no usable model folder of that name (or,
    given a `caller`, none it may see)."""
    info = _read_folder(models_dir, model_id)
    if info is None or (caller is not None and not caller.sees(info.owner)):
        return None
    if caller is not None:
        info.shared = info.owner is None or info.owner in caller.shared_owners
    return info


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _latent_dim(card: dict[str, Any]) -> int | None:
    value = (card.get("config") or {}).get("latent_dim")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _read_folder(models_dir: Path, model_id: str) -> ModelInfo | None:
    if not SAFE_ID.match(model_id):
        return None
    folder = models_dir / model_id
    weights = folder / WEIGHTS_FILE
    if not ((folder / CONFIG_FILE).is_file() and weights.is_file()):
        return None
    try:
        card = read_card_json(folder)
        provenance = card.get("provenance") or {}
        if not isinstance(provenance, dict):
            provenance = {}
        run = provenance.get("run") or provenance.get("job")
        dataset = provenance.get("dataset")
        listing = provenance.get("listing")
        listing = listing if isinstance(listing, dict) else {}
        training = provenance.get("training")
        direction = training.get("direction", "AtoB") if isinstance(training, dict) else "AtoB"
        dataset = dataset if isinstance(dataset, str) and SAFE_ID.match(dataset) else None
        examples = 0
        if dataset is not None and card["task"] == "translate":
            examples = len(example_sources(models_dir.parent / "datasets" / dataset, direction))
        return ModelInfo(
            id=model_id,
            name=_text(listing.get("name")) or _text(provenance.get("name")) or model_id,
            description=_text(listing.get("description")) or "",
            family=str(card["family"]),
            task=str(card["task"]),
            architecture=str(card["architecture"]),
            image_size=int(card["image_size"]),
            channels=int(card["channels"]),
            classes=int(card["num_classes"]),
            latent_dim=_latent_dim(card),
            metrics=card.get("metrics") or {},
            run=str(run) if run is not None else None,
            created=iso_time(weights.stat().st_mtime) or "",
            discriminator=has_discriminator(folder, card),
            dataset=dataset,
            direction=str(direction),
            examples=examples,
            owner=_text(provenance.get("owner")),
            training_job=_text(provenance.get("job")) if provenance.get("run") else None,
        )
    except (OSError, ValueError, TypeError) as exc:
        log.warning("skipping model folder %s: %s", folder, exc)
        return None


def list_models(models_dir: Path, caller: Caller | None = None) -> list[ModelInfo]:
    """Every usable model (that `caller` may see), sorted by id."""
    if not models_dir.is_dir():
        return []
    found = (
        read_model(models_dir, p.name, caller) for p in sorted(models_dir.iterdir()) if p.is_dir()
    )
    return [m for m in found if m is not None]


def find_model(models_dir: Path, model_id: str, caller: Caller) -> ModelInfo:
    """A model the caller may see; 404 `model_not_found` for unknown ids and others' models."""
    info = read_model(models_dir, model_id, caller)
    if info is None:
        raise ApiError(404, "model_not_found", f"There is no model {model_id!r}.")
    return info


def require_model(models_dir: Path, model_id: str, task: str, caller: Caller) -> ModelInfo:
    """The model for a job: 404 `model_not_found`, 422 `wrong_model_task` if it cannot do `task`."""
    info = find_model(models_dir, model_id, caller)
    if info is None:
        raise ApiError(404, "model_not_found", f"There is no model {model_id!r}.")
    if info.task != task:
        raise ApiError(
            422,
            "wrong_model_task",
            f"The model {model_id!r} is a {info.family} model for {info.task!r}, not {task!r}.",
        )
    return info


def require_inspectable(models_dir: Path, model_id: str, caller: Caller) -> ModelInfo:
    """A model whose discriminator can draw a realness map: 404 `model_not_found`, 422
    `not_inspectable` (Progressive GAN), 409 `no_discriminator` (no trained D in its folder)."""
    info = find_model(models_dir, model_id, caller)
    if info.family not in INSPECTABLE_FAMILIES:
        raise ApiError(
            422,
            "not_inspectable",
            f"The model {model_id!r} is a {info.family} model: its critic scores whole images and "
            "draws no realness map. Use a pix2pix or U-Net GAN model.",
        )
    require_discriminator(info, "inspect with it")
    return info


def require_discriminator(info: ModelInfo, purpose: str) -> None:
    """409 `no_discriminator` when the model's folder carries no trained discriminator."""
    if not info.discriminator:
        raise ApiError(
            409,
            "no_discriminator",
            f"The model {info.id!r} has no trained discriminator in its folder, which is needed "
            f"to {purpose}; models trained by this service save theirs, so train it again.",
        )


def check_class_label(info: ModelInfo, class_label: int | None) -> None:
    """422 `invalid_field` unless `class_label` is None or a class of a conditional model."""
    if class_label is None:
        return
    if info.classes == 0:
        raise ApiError(
            422,
            "invalid_field",
            f"The field 'class_label' is not allowed: the model {info.id!r} is unconditional.",
        )
    if not 0 <= class_label < info.classes:
        raise ApiError(
            422,
            "invalid_field",
            f"The field 'class_label' must be from 0 to {info.classes - 1}, the classes of the "
            f"model {info.id!r}.",
        )
