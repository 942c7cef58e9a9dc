"""The checkpoint format: a model is a folder holding `model.safetensors` and `config.json`.

The file names and the card's required fields are `core.model_folder`'s (shared with the
torch-free gateway); this module writes and loads the weights.

`config.json` records what rebuilds the network (architecture name and config, as in nanoGPT's
checkpoints), the network's runtime state where it has one (Progressive GAN's growth stage and
fade-in alpha, via `runtime_state()` / `load_runtime_state()`), and what a service needs to list
it (family, task, image size, channels, classes, provenance, metrics). Weights are safetensors
only: loading never unpickles anything, so a `.pt` or `.pth` pickle is refused. Tensors are
written from the CPU, so checkpoints written on CUDA load on CPU and vice versa.

A folder may also carry the trained discriminator, for realness maps (`models.realness`):
its weights in `discriminator.safetensors` and, under `config.json`'s `"discriminator"` key,
`{"architecture": <registered name>, "config": {...}}` plus `"runtime_state"` where the network
has one. A folder has a discriminator when both are there, which a reader without torch can check
from the JSON and the file alone. `save` writes the generator's card afresh, so a training run
calls `save_discriminator` after every `save`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from core.model_folder import (
    CONFIG_FILE,
    DISCRIMINATOR_FILE,
    DISCRIMINATOR_KEY,
    WEIGHTS_FILE,
    ModelCard,
    ModelFolderError,
    atomic_write,
    card_text,
    read_card_json,
)
from models.registry import architecture_of, get_architecture

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")


class CheckpointError(ModelFolderError):
    """A model folder that cannot be loaded; the message says why in words."""


class NoDiscriminator(CheckpointError):
    """A model folder that carries no discriminator (an older run, or saved without one)."""


def card_for(
    model: nn.Module,
    *,
    provenance: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> ModelCard:
    """Describe a built generator as the card its checkpoint will carry."""
    arch = architecture_of(model)
    config = model.config
    return ModelCard(
        architecture=arch.name,
        family=arch.family,
        task=arch.task,
        config=dataclasses.asdict(config),
        image_size=int(config.image_size),
        channels=int(config.channels),
        num_classes=int(config.num_classes),
        provenance=dict(provenance or {}),
        metrics=dict(metrics or {}),
        runtime_state=model.runtime_state() if hasattr(model, "runtime_state") else {},
    )


def _cpu_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def save(
    model: nn.Module,
    folder: str | os.PathLike[str],
    *,
    provenance: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> ModelCard:
    """Write `model` (a registered network) as a model folder; returns the card written."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    card = card_for(model, provenance=provenance, metrics=metrics)
    tensors = _cpu_tensors(model)
    atomic_write(
        out / WEIGHTS_FILE,
        lambda tmp: save_file(tensors, tmp, metadata={"architecture": card.architecture}),
    )
    text = card_text(card.to_json())
    atomic_write(out / CONFIG_FILE, lambda tmp: Path(tmp).write_text(text))
    return card


def _refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"refusing to load {path.name}: it is a pickle file, and unpickling can run arbitrary "
            f"code. ganserve loads only model folders with {WEIGHTS_FILE} and {CONFIG_FILE}."
        )


def _read_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked card JSON of a model folder (`core.model_folder`), or a CheckpointError."""
    path = Path(folder)
    _refuse_pickle(path)
    try:
        return read_card_json(path)
    except ModelFolderError as exc:
        raise CheckpointError(str(exc)) from None


def read_card(folder: str | os.PathLike[str]) -> ModelCard:
    """Read and check `config.json` of a model folder without touching its weights."""
    raw = _read_config(folder)
    known = {f.name for f in dataclasses.fields(ModelCard)}
    return ModelCard(**{k: v for k, v in raw.items() if k in known})


MAX_PARAMETERS = 300_000_000  # pix2pix's unet_256 has 54.4 M, PGGAN's 1024 px G about 23 M


def _build(architecture: str, config: dict[str, Any], source: str, weights: Path) -> nn.Module:
    """The network `config.json` describes, built only once its shapes are known to match the
    weights file's header: the description is first built on the meta device (no memory), its
    size bounded and its tensors' names and shapes compared with the file's, so a card that lies
    about its network, or describes a huge one, allocates nothing."""
    try:
        arch = get_architecture(architecture)
        with torch.device("meta"):
            described = arch.module(arch.build_config(**config))
    except (ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{source} does not describe a buildable network: {exc}") from None
    size = sum(p.numel() for p in described.parameters())
    if size > MAX_PARAMETERS:
        raise CheckpointError(
            f"{source} describes a network of {size} parameters, more than the limit of "
            f"{MAX_PARAMETERS}"
        )
    _check_shapes(described, weights, f"{architecture} {config}")
    return arch.module(arch.build_config(**config))


def _reason(exc: Exception) -> str:
    """Why a file could not be read, without the path it lies at."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).split(": /", 1)[0]


def _header_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors file's header (no tensor is read)."""
    try:
        with safe_open(weights, framework="pt", device="cpu") as handle:
            return {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(
            f"{weights.name} is not a readable safetensors file: {_reason(exc)}"
        ) from None


def _check_shapes(described: nn.Module, weights: Path, what: str) -> None:
    """CheckpointError naming the tensors on which `described` and the weights disagree."""
    expected = {k: tuple(v.shape) for k, v in described.state_dict().items()}
    problems = _mismatches(expected, _header_shapes(weights))
    if problems:
        shown = "; ".join(problems[:5])
        if len(problems) > 5:
            shown += f"; and {len(problems) - 5} more"
        raise CheckpointError(f"{weights.name} does not match its config ({what}): {shown}")


def check_card(folder: str | os.PathLike[str]) -> ModelCard:
    """The card of a model folder once everything it says is checked against the weights: its
    architecture is a registered generator, its family and task are that architecture's, its
    image size, channels and classes are its config's, and its generator (and discriminator)
    tensors match the weights files' headers. CheckpointError says what disagrees."""
    path = Path(folder)
    card = read_card(path)
    try:
        arch = get_architecture(card.architecture)
        config = arch.build_config(**card.config)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"config.json does not describe a buildable network: {exc}") from None
    if arch.role != "generator":
        raise CheckpointError(f"config.json names a {arch.role}, {arch.name}, as its generator")
    derived = {
        "family": arch.family,
        "task": arch.task,
        "image_size": int(config.image_size),
        "channels": int(config.channels),
        "num_classes": int(getattr(config, "num_classes", 0)),
    }
    wrong = [
        f"{k} is {getattr(card, k)!r}, its network's is {v!r}"
        for k, v in derived.items()
        if getattr(card, k) != v
    ]
    if wrong:
        raise CheckpointError(f"config.json disagrees with its network: {'; '.join(wrong)}")
    _build(card.architecture, card.config, "config.json", path / WEIGHTS_FILE)
    return card


def _mismatches(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]
) -> list[str]:
    """Sentences naming every key or shape on which the weights and the config disagree."""
    problems = [f"missing tensor {k}" for k in sorted(expected.keys() - found.keys())]
    problems += [f"unexpected tensor {k}" for k in sorted(found.keys() - expected.keys())]
    problems += [
        f"{k} has shape {found[k]} but the config needs {expected[k]}"
        for k in sorted(expected.keys() & found.keys())
        if expected[k] != found[k]
    ]
    return problems


def _load_weights(model: nn.Module, weights: Path, runtime_state: dict[str, Any]) -> None:
    """Fill `model` from a safetensors file (and its runtime state), refusing any mismatch."""
    try:
        tensors = load_file(weights, device="cpu")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(
            f"{weights.name} is not a readable safetensors file: {_reason(exc)}"
        ) from None
    model.load_state_dict(tensors, strict=True)
    if runtime_state:
        try:
            model.load_runtime_state(runtime_state)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"config.json's runtime_state is unusable: {exc}") from None


def load(folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the generator of a model folder on `device`, in eval mode, with its weights."""
    path = Path(folder)
    card = read_card(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"the model folder {path.name!r} has no {WEIGHTS_FILE}")
    model = _build(card.architecture, card.config, "config.json", weights)
    _load_weights(model, weights, card.runtime_state)
    return model.to(device).eval()


def save_discriminator(
    folder: str | os.PathLike[str],
    discriminator: nn.Module,
    architecture: str,
    config: dict[str, Any],
) -> dict[str, Any]:
    """Add a trained discriminator to a model folder that `save` wrote; returns its JSON entry.

    `architecture` is the discriminator's registered name and `config` its constructor config's
    fields; both must describe `discriminator` exactly (else `ValueError`), so that the entry
    rebuilds it. The weights are written first and the `config.json` entry second, each
    atomically: a reader that sees the entry finds the file.
    """
    out = Path(folder)
    arch = get_architecture(architecture)
    if arch.role != "discriminator":
        raise ValueError(f"{architecture} is a {arch.role}, not a discriminator")
    if architecture_of(discriminator).name != architecture:
        raise ValueError(
            f"the network is a {architecture_of(discriminator).name}, not a {architecture}"
        )
    fields = dict(config)
    if arch.build_config(**fields) != discriminator.config:
        raise ValueError(f"config {fields} does not describe this {architecture}")
    raw = _read_config(out)
    entry: dict[str, Any] = {"architecture": architecture, "config": fields}
    if hasattr(discriminator, "runtime_state"):
        entry["runtime_state"] = discriminator.runtime_state()
    tensors = _cpu_tensors(discriminator)
    atomic_write(
        out / DISCRIMINATOR_FILE,
        lambda tmp: save_file(tensors, tmp, metadata={"architecture": architecture}),
    )
    text = card_text({**raw, DISCRIMINATOR_KEY: entry})
    atomic_write(out / CONFIG_FILE, lambda tmp: Path(tmp).write_text(text))
    return entry


def load_discriminator(
    folder: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> nn.Module:
    """Rebuild the discriminator a model folder carries on `device`, in eval mode.

    Raises `NoDiscriminator` when the folder has none, `CheckpointError` when it is unusable.
    """
    path = Path(folder)
    raw = _read_config(path)
    entry = raw.get(DISCRIMINATOR_KEY)
    weights = path / DISCRIMINATOR_FILE
    if entry is None:
        raise NoDiscriminator(
            f"{path.name} carries no discriminator: its {CONFIG_FILE} has no "
            f'"{DISCRIMINATOR_KEY}" entry (it was saved without one, or before runs saved them)'
        )
    if not weights.is_file():
        raise NoDiscriminator(f"{path.name} carries no discriminator: it has no {weights.name}")
    source = f'{CONFIG_FILE}\'s "{DISCRIMINATOR_KEY}" entry'
    if not (
        isinstance(entry, dict)
        and isinstance(entry.get("architecture"), str)
        and isinstance(entry.get("config"), dict)
        and isinstance(entry.get("runtime_state", {}), dict)
    ):
        raise CheckpointError(
            f'{source} must be an object with "architecture" (a name) and "config" (an object)'
        )
    try:
        role = get_architecture(entry["architecture"]).role
    except ValueError as exc:
        raise CheckpointError(f"{source} does not describe a buildable network: {exc}") from None
    if role != "discriminator":
        raise CheckpointError(f"{source} names a {role}, {entry['architecture']}")
    model = _build(entry["architecture"], entry["config"], source, weights)
    _load_weights(model, weights, entry.get("runtime_state", {}))
    return model.to(device).eval()
