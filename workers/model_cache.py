"""Networks loaded on demand in the worker process, kept in a bounded least-recently-used cache.

Generators (`get`) serve translations and samples; discriminators (`get_discriminator`, from a
model folder's `discriminator.safetensors`) serve inspections. An entry is keyed by the model id,
the role and the identity of the two files it was loaded from (modification time, size and inode
of the weights and of `config.json`), so a model that a training run registers or re-registers
under the same id is loaded afresh at its next job: no worker restarts. At most `capacity`
networks (`GANSERVE_MODEL_CACHE_SIZE`) stay loaded; the least recently used goes first.

The device is chosen when the first model is loaded, inside the worker process (CUDA when it is
available, else the CPU), never at import: the Celery parent must not touch CUDA before it forks.
Networks are put in the fast path's memory layout as they load (`workers.fast_path`).
`GANSERVE_TORCH_THREADS` sets the CPU threads torch uses per worker process (useful when several
workers share a machine's cores).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

import models
from core.model_folder import CONFIG_FILE, DISCRIMINATOR_FILE, WEIGHTS_FILE
from core.model_registry import ModelMissing, ModelRegistry, parse_ref
from core.settings import get_settings
from training.distributed import resolve_device
from workers import metrics
from workers.errors import JobFailure
from workers.fast_path import FastPath

FileKey = tuple[tuple[int, int, int], ...]
Role = Literal["generator", "discriminator"]


@dataclass(frozen=True)
class _Part:
    """How one role's network is stored in a model folder and loaded from it."""

    weights: str
    load: Callable[..., nn.Module]
    what: str  # how an error message names it


PARTS: dict[Role, _Part] = {
    "generator": _Part(WEIGHTS_FILE, models.load, "the model file"),
    "discriminator": _Part(DISCRIMINATOR_FILE, models.load_discriminator, "the discriminator"),
}


@dataclass(frozen=True)
class LoadedModel:
    """A network ready to run (generator or discriminator), with the model's card and device."""

    id: str
    model: nn.Module
    card: models.ModelCard
    device: torch.device


_configured_pid: int | None = None


def configure_torch() -> None:
    """Apply `Settings.torch_threads` (GANSERVE_TORCH_THREADS) once per process (a no-op when
    it is unset)."""
    global _configured_pid
    if _configured_pid == os.getpid():
        return
    _configured_pid = os.getpid()
    threads = get_settings().torch_threads
    if threads is not None:
        torch.set_num_threads(threads)


def model_folder(models_dir: Path, model_id: str) -> Path:
    """The folder of the model version `model_id` names (`<id>@<n>`, as jobs pin it; a bare
    `<id>`: its newest version); `model_not_found` when there is no such version (it may have
    been deleted after the job was queued)."""
    ref = parse_ref(model_id)
    if ref is None:
        raise JobFailure("model_not_found", f"there is no model called {model_id!r}")
    try:
        _, version = ModelRegistry(models_dir).resolve(ref)
    except ModelMissing as exc:
        raise JobFailure(
            "model_not_found", f"{exc} (it may have been deleted after the job was queued)"
        ) from None
    return version.folder


def _file_key(folder: Path, weights: str) -> FileKey:
    stats = [os.stat(folder / name) for name in (weights, CONFIG_FILE)]
    return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in stats)


def _missing(folder: Path, model_id: str, role: Role) -> JobFailure:
    """The failure for a model whose files are not all there."""
    if not folder.is_dir():
        return JobFailure(
            "model_not_found",
            f"there is no model called {model_id!r} (it may have been deleted after the job was "
            "queued)",
        )
    if role == "discriminator" and (folder / CONFIG_FILE).is_file():
        return JobFailure(
            "no_discriminator",
            f"model {model_id!r} carries no discriminator ({DISCRIMINATOR_FILE}), which "
            "inspections, filtered samples and projections with its feature loss need; the "
            "models that training runs register keep theirs",
        )
    return JobFailure(
        "model_unloadable",
        f"the model file could not be loaded: {folder.name} lacks {WEIGHTS_FILE} or {CONFIG_FILE}",
    )


class ModelCache:
    """Least-recently-used cache of loaded networks from one models folder."""

    def __init__(
        self, models_dir: Path, capacity: int, device: torch.device | str | None = None
    ) -> None:
        if capacity < 1:
            raise ValueError(f"the model cache holds at least 1 model, not {capacity}")
        self.models_dir = Path(models_dir)
        self.capacity = capacity
        self._device = torch.device(device) if device is not None else None
        self._entries: OrderedDict[tuple[Role, str], tuple[FileKey, LoadedModel]] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many times a network was read from disk (for tests and logs)

    @property
    def device(self) -> torch.device:
        """The device models are loaded on, chosen at first use (CUDA when there is a GPU)."""
        if self._device is None:
            self._device = resolve_device("auto")
        return self._device

    def __len__(self) -> int:
        return len(self._entries)

    def ids(self, role: Role = "generator") -> list[str]:
        """Ids of the models whose `role` network is loaded, least recently used first."""
        return [model_id for kind, model_id in self._entries if kind == role]

    def get(self, model_id: str) -> LoadedModel:
        """The loaded generator of `model_id`, from the cache when its files have not changed.

        Raises `JobFailure` with code `model_not_found` (no such folder) or `model_unloadable`
        (a folder that `models.load` refuses, with its reason).
        """
        return self._get(model_id, "generator")

    def get_discriminator(self, model_id: str) -> LoadedModel:
        """The loaded discriminator of `model_id`, cached like generators.

        Raises `JobFailure` with code `model_not_found`, `no_discriminator` (the folder carries
        none) or `model_unloadable` (a discriminator that `models.load_discriminator` refuses).
        """
        return self._get(model_id, "discriminator")

    def card(self, model_id: str) -> models.ModelCard:
        """The card of `model_id` read afresh (`model_not_found` / `model_unloadable`)."""
        folder = model_folder(self.models_dir, model_id)
        if not folder.is_dir():
            raise _missing(folder, model_id, "generator")
        try:
            return models.read_card(folder)
        except models.CheckpointError as exc:
            raise JobFailure("model_unloadable", f"the model could not be read: {exc}") from None

    def _get(self, model_id: str, role: Role) -> LoadedModel:
        part = PARTS[role]
        entry_key = (role, model_id)
        try:
            folder = model_folder(self.models_dir, model_id)
        except JobFailure:
            with self._lock:
                self._entries.pop(entry_key, None)
            raise
        with self._lock:
            try:
                key = _file_key(folder, part.weights)
            except FileNotFoundError:
                self._entries.pop(entry_key, None)
                raise _missing(folder, model_id, role) from None
            cached = self._entries.get(entry_key)
            if cached is not None and cached[0] == key:
                self._entries.move_to_end(entry_key)
                metrics.model_cache("hit")
                return cached[1]
            self._entries.pop(entry_key, None)  # stale: its files changed
            try:
                card = models.read_card(folder)
                network = fast_path(self.device).prepare(part.load(folder, device=self.device))
            except models.NoDiscriminator as exc:
                raise JobFailure("no_discriminator", str(exc)) from None
            except models.CheckpointError as exc:
                if not folder.is_dir():  # the version was deleted while it loaded
                    raise _missing(folder, model_id, role) from None
                raise JobFailure(
                    "model_unloadable", f"{part.what} could not be loaded: {exc}"
                ) from None
            self.loads += 1
            metrics.model_cache("load")
            loaded = LoadedModel(model_id, network, card, self.device)
            self._entries[entry_key] = (key, loaded)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
                metrics.model_cache("evict")
            return loaded


_cache: ModelCache | None = None
_cache_pid: int | None = None


def get_cache() -> ModelCache:
    """This worker process's cache, created at first use from the settings."""
    global _cache, _cache_pid
    if _cache is None or _cache_pid != os.getpid():
        settings = get_settings()
        _cache = ModelCache(settings.models_dir, settings.model_cache_size)
        _cache_pid = os.getpid()
    return _cache


_fast_paths: dict[tuple[int, str], FastPath] = {}


def fast_path(device: torch.device | None = None) -> FastPath:
    """This process's fast path on `device` (default: the cache's), from the settings."""
    device = device if device is not None else get_cache().device
    key = (os.getpid(), str(device))
    if key not in _fast_paths:
        _fast_paths[key] = FastPath.from_settings(get_settings(), device)
    return _fast_paths[key]
