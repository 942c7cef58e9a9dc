"""The model-folder format every process agrees on: file names, `config.json`'s required fields.

A model is a folder holding `model.safetensors` and `config.json` (the checkpoint format of
`models.checkpoint`, which writes and loads the weights with torch). This torch-free module owns
what a reader needs without weights: the file names, the card (`ModelCard`, its required fields
and its JSON layout), reading and checking it, merging provenance into it (a training run
registering its model), atomic writes, and whether the folder carries its discriminator (the
`"discriminator"` entry and its weights file). The gateway's catalog lists models with it; the
worker and `models.checkpoint` use the same names and rules.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class ModelCard:
    """What `config.json` says about a model folder."""

    architecture: str
    family: str
    task: str
    config: dict[str, Any]
    image_size: int
    channels: int
    num_classes: int
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    runtime_state: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored as `config.json`."""
        return dataclasses.asdict(self)


def card_text(card: dict[str, Any]) -> str:
    """`config.json`'s text for a card (the one layout every writer uses)."""
    return json.dumps(card, indent=2, sort_keys=True) + "\n"


def atomic_write(path: Path, write: Callable[[str], Any]) -> None:
    """Write through a temporary file in the same folder, then rename, so readers never see half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_provenance(folder: Path, provenance: dict[str, Any]) -> dict[str, Any]:
    """Merge `provenance` into a model folder's card, written atomically; the new card."""
    card = read_card_json(folder)
    card["provenance"] = {**(card.get("provenance") or {}), **provenance}
    text = card_text(card)
    atomic_write(folder / CONFIG_FILE, lambda tmp: Path(tmp).write_text(text))
    return card


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
    return check_card_json(raw, str(config_path))


def check_card_json(raw: Any, where: str) -> dict[str, Any]:
    """`raw` (the parsed `config.json` found at `where`) if it is a card this code reads: a JSON
    object with the required fields and a format version up to `FORMAT_VERSION`; else
    ModelFolderError saying why not."""
    if not isinstance(raw, dict):
        raise ModelFolderError(f"{where} must hold a JSON object")
    missing = sorted(REQUIRED_CARD_FIELDS - raw.keys())
    if missing:
        raise ModelFolderError(f"{where} lacks {', '.join(missing)}")
    version = raw.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFolderError(
            f"{where} has format_version {version!r}; this ganserve reads up to {FORMAT_VERSION}"
        )
    if not isinstance(raw["config"], dict):
        raise ModelFolderError(f"{where}: 'config' must be a JSON object")
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
