"""The models the service can use, read from model folders as plain JSON.

A model is a folder `<data_dir>/models/<id>/` holding both `config.json` and `model.safetensors`
(the checkpoint format of the `models` package). The gateway never loads weights: it reads
`config.json` only, so it needs neither torch nor the `models` package. Folders being written
(hidden names, or without the weights yet) and folders with an unreadable `config.json` are skipped.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from service.errors import ApiError

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_REQUIRED = ("architecture", "family", "task", "image_size", "channels", "num_classes")


class ModelInfo(BaseModel):
    """What the API says about one model."""

    id: str
    family: str
    task: str
    architecture: str
    image_size: int
    channels: int
    classes: int
    metrics: dict[str, Any]
    run: str | None
    created: str


def iso_time(timestamp: float | None) -> str | None:
    """A Unix time as an ISO 8601 UTC string (`2024-01-31T12:00:00.000Z`)."""
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read_model(models_dir: Path, model_id: str) -> ModelInfo | None:
    """The model with this id, or None when there is no usable model folder of that name."""
    if not SAFE_ID.match(model_id):
        return None
    folder = models_dir / model_id
    config_path, weights = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not (config_path.is_file() and weights.is_file()):
        return None
    try:
        card = json.loads(config_path.read_text())
        if not isinstance(card, dict):
            raise ValueError("config.json is not a JSON object")
        missing = [k for k in _REQUIRED if k not in card]
        if missing:
            raise ValueError(f"config.json lacks {', '.join(missing)}")
        provenance = card.get("provenance") or {}
        run = None
        if isinstance(provenance, dict):
            run = provenance.get("run") or provenance.get("job")
        return ModelInfo(
            id=model_id,
            family=str(card["family"]),
            task=str(card["task"]),
            architecture=str(card["architecture"]),
            image_size=int(card["image_size"]),
            channels=int(card["channels"]),
            classes=int(card["num_classes"]),
            metrics=card.get("metrics") or {},
            run=str(run) if run is not None else None,
            created=iso_time(weights.stat().st_mtime) or "",
        )
    except (OSError, ValueError, TypeError) as exc:
        log.warning("skipping model folder %s: %s", folder, exc)
        return None


def list_models(models_dir: Path) -> list[ModelInfo]:
    """Every usable model, sorted by id."""
    if not models_dir.is_dir():
        return []
    found = (read_model(models_dir, p.name) for p in sorted(models_dir.iterdir()) if p.is_dir())
    return [m for m in found if m is not None]


def require_model(models_dir: Path, model_id: str, task: str) -> ModelInfo:
    """The model for a job: 404 `model_not_found`, 422 `wrong_model_task` if it cannot do `task`."""
    info = read_model(models_dir, model_id)
    if info is None:
        raise ApiError(404, "model_not_found", f"There is no model {model_id!r}.")
    if info.task != task:
        raise ApiError(
            422,
            "wrong_model_task",
            f"The model {model_id!r} is a {info.family} model for {info.task!r}, not {task!r}.",
        )
    return info
