"""The model-folder format every process agrees on: file names, `config.json`'s required fields.

A model is a folder holding `model.safetensors` and `config.json` (the checkpoint format of
`models.checkpoint`, which writes and loads the weights with torch). This torch-free module owns
what a reader needs without weights: the file names, the card fields every `config.json` has,
reading and checking the card's JSON, and whether the folder carries its discriminator (the
`"discriminator"` entry and its weights file). The gateway's catalog lists models with it; the
worker and `models.checkpoint` use the same names and rules.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
DISCRIMINATOR_FILE = "discriminator.safetensors"
DISCRIMINATOR_KEY = "discriminator"
REQUIRED_CARD_FIELDS = frozenset(
    {"architecture", "family", "task", "config", "image_size", "channels", "num_classes"}
)


class ModelFolderError(ValueError):
    """A folder whose `config.json` cannot be read as a model card; the message says why."""


def read_card_json(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked JSON object of a model folder's `config.json` (required fields present,
    a format version this code reads), or ModelFolderError saying why not."""
    path = Path(folder)
    if not path.is_dir():
        raise ModelFolderError(f"{path} is not a model folder")
    config_path = path / CONFIG_FILE
    try:
        raw = json.loads(config_path.read_text())
    except FileNotFoundError:
        raise ModelFolderError(f"{path} has no {CONFIG_FILE}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFolderError(f"{config_path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ModelFolderError(f"{config_path} must hold a JSON object")
    missing = sorted(REQUIRED_CARD_FIELDS - raw.keys())
    if missing:
        raise ModelFolderError(f"{config_path} lacks {', '.join(missing)}")
    version = raw.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFolderError(
            f"{config_path} has format_version {version!r}; this ganserve reads up to "
            f"{FORMAT_VERSION}"
        )
    return raw


def has_discriminator(folder: str | os.PathLike[str], card: dict[str, Any] | None = None) -> bool:
    """Whether a model folder carries a discriminator: the card's entry and the weights file."""
    path = Path(folder)
    if card is None:
        try:
            card = read_card_json(path)
        except ModelFolderError:
            return False
    return isinstance(card.get(DISCRIMINATOR_KEY), dict) and (path / DISCRIMINATOR_FILE).is_file()
