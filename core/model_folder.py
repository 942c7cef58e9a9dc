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
import math
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
        raise ModelFolderError(f"{path.name!r} is not a model folder")
    config_path = path / CONFIG_FILE
    try:
        raw = parse_card(config_path.read_bytes())
    except FileNotFoundError:
        raise ModelFolderError(f"the model folder {path.name!r} has no {CONFIG_FILE}") from None
    return check_card_json(raw, CONFIG_FILE)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def parse_card(text: bytes | str) -> Any:
    """A card's JSON parsed, NaN and Infinity refused (ModelFolderError saying why)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelFolderError(f"{CONFIG_FILE} is not valid JSON: {exc}") from None


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
    check_card_bounds(raw, where)
    return raw


# Bounds on a card's numbers, enforced before any network is built from it: the papers' largest
# sizes (Progressive GAN's 1024 px, pix2pix's 512 px maps, BigGAN's 1000 ImageNet classes) with
# room, far below what would exhaust a worker's memory.
MAX_IMAGE_SIZE = 1024
CHANNELS = (1, 3)
MAX_CLASSES = 1000
MAX_CONFIG_INT = 16384  # widths, latent sizes, feature-map bases (PGGAN's fmap_base is 8192)
MAX_CARD_DEPTH = 8


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_numbers(value: Any, where: str, bounded: bool, depth: int = 0) -> None:
    """Every number in `value` finite and, when `bounded`, every integer within bounds."""
    if depth > MAX_CARD_DEPTH:
        raise ModelFolderError(f"{where} is nested too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_numbers(item, f"{where}.{key}", bounded, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_numbers(item, f"{where}[{index}]", bounded, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ModelFolderError(f"{where} is not a finite number")
    elif bounded and _int(value) and not -MAX_CONFIG_INT <= value <= MAX_CONFIG_INT:
        raise ModelFolderError(f"{where} is {value}, outside -{MAX_CONFIG_INT}..{MAX_CONFIG_INT}")


def check_card_bounds(raw: dict[str, Any], where: str = CONFIG_FILE) -> None:
    """ModelFolderError unless the card's sizes are in bounds and its numbers finite: image
    size 1..`MAX_IMAGE_SIZE`, channels 1 or 3, classes 0..`MAX_CLASSES`, config integers within
    +-`MAX_CONFIG_INT` (metrics: finite)."""
    size, channels, classes = raw["image_size"], raw["channels"], raw["num_classes"]
    if not (_int(size) and 1 <= size <= MAX_IMAGE_SIZE):
        raise ModelFolderError(f"{where}: image_size must be 1..{MAX_IMAGE_SIZE}, not {size!r}")
    if not (_int(channels) and channels in CHANNELS):
        raise ModelFolderError(f"{where}: channels must be 1 or 3, not {channels!r}")
    if not (_int(classes) and 0 <= classes <= MAX_CLASSES):
        raise ModelFolderError(f"{where}: num_classes must be 0..{MAX_CLASSES}, not {classes!r}")
    for key in ("config", "runtime_state", DISCRIMINATOR_KEY):
        _check_numbers(raw.get(key), f"{where}: {key}", bounded=True)
    for key in ("metrics", "provenance"):
        _check_numbers(raw.get(key), f"{where}: {key}", bounded=False)


def has_discriminator(folder: str | os.PathLike[str], card: dict[str, Any] | None = None) -> bool:
    """Whether a model folder carries a discriminator: the card's entry and the weights file."""
    path = Path(folder)
    if card is None:
        try:
            card = read_card_json(path)
        except ModelFolderError:
            return False
    return isinstance(card.get(DISCRIMINATOR_KEY), dict) and (path / DISCRIMINATOR_FILE).is_file()
