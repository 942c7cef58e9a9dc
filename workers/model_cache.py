"""Networks loaded on demand in the worker process, kept in a bounded least-recently-used cache.

Generators (`get`) serve translations and samples; discriminators (`get_discriminator`, from a
model folder's `discriminator.safetensors`) serve inspections. A version's files come from the
object store through `Storage.folders` (the stored folder itself on the local backend; on S3 a
download kept under the data directory and keyed by the version's content digest, so a worker
host downloads a version once). An entry is keyed by the model reference and the role, and holds
the content digest of the version it was loaded from, so a model that a training run registers
under the same id (a new version, a new digest) is loaded afresh at its next job: no worker
restarts. At most `capacity` networks (`GANSERVE_MODEL_CACHE_SIZE`) stay loaded; the least
recently used goes first.

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
from core.model_registry import ModelMissing, ModelRegistry, VersionRecord, parse_ref
from core.settings import get_settings
from core.storage import Storage
from models.devices import resolve_device
from workers import metrics
from workers.errors import JobFailure
from workers.fast_path import FastPath
from workers.jobs import storage as worker_storage

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


def model_version(registry: ModelRegistry, model_id: str) -> tuple[VersionRecord, str]:
    """The model version `model_id` names (`<id>@<n>`, as jobs pin it; a bare `<id>`: its
    newest version) and its content digest; `model_not_found` when there is no such version (it
    may have been deleted after the job was queued)."""
    ref = parse_ref(model_id)
    if ref is None:
        raise JobFailure("model_not_found", f"there is no model called {model_id!r}")
    try:
        _, version = registry.resolve(ref)
        return version, registry.version_digest(version)
    except ModelMissing as exc:
        raise JobFailure(
            "model_not_found", f"{exc} (it may have been deleted after the job was queued)"
        ) from None


def _gone(model_id: str) -> JobFailure:
    return JobFailure(
        "model_not_found",
        f"there is no model called {model_id!r} (it may have been deleted after the job was "
        "queued)",
    )


def _missing(folder: Path, model_id: str, role: Role) -> JobFailure:
    """The failure for a model whose files are not all there."""
    if not folder.is_dir():
        return _gone(model_id)
    if role == "discriminator" and (folder / CONFIG_FILE).is_file():
        return JobFailure(
            "no_discriminator",
            f"model {model_id!r} carries no discriminator ({DISCRIMINATOR_FILE}), which "
            "inspections, filtered samples and projections with its feature loss need; the "
            "models that training runs register keep theirs",
        )
    return JobFailure(
        "model_unloadable",
        f"the model file could not be loaded: {model_id} lacks {WEIGHTS_FILE} or {CONFIG_FILE}",
    )


class ModelCache:
    """Least-recently-used cache of loaded networks from one store's models."""

    def __init__(
        self, storage: Storage, capacity: int, device: torch.device | str | None = None
    ) -> None:
        if capacity < 1:
            raise ValueError(f"the model cache holds at least 1 model, not {capacity}")
        self.registry = ModelRegistry.of(storage)
        self.capacity = capacity
        self._device = torch.device(device) if device is not None else None
        self._entries: OrderedDict[tuple[Role, str], tuple[str, LoadedModel]] = OrderedDict()
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
        folder = self._folder(model_id, model_version(self.registry, model_id)[0])
        if not folder.is_dir():
            raise _missing(folder, model_id, "generator")
        try:
            return models.read_card(folder)
        except models.CheckpointError as exc:
            raise JobFailure("model_unloadable", f"the model could not be read: {exc}") from None

    def _folder(self, model_id: str, version: VersionRecord) -> Path:
        """The version's files on disk (`model_not_found` when they went meanwhile)."""
        try:
            return self.registry.local_folder(version)
        except (FileNotFoundError, ModelMissing):
            raise _gone(model_id) from None

    def _get(self, model_id: str, role: Role) -> LoadedModel:
        part = PARTS[role]
        entry_key = (role, model_id)
        try:
            version, digest = model_version(self.registry, model_id)
        except JobFailure:
            with self._lock:
                self._entries.pop(entry_key, None)
            raise
        with self._lock:
            cached = self._entries.get(entry_key)
            if cached is not None and cached[0] == digest:
                self._entries.move_to_end(entry_key)
                metrics.model_cache("hit")
                return cached[1]
            self._entries.pop(entry_key, None)  # stale: another version, other files
            folder = self._folder(model_id, version)
            if not (folder / part.weights).is_file() or not (folder / CONFIG_FILE).is_file():
                raise _missing(folder, model_id, role)
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
            self._entries[entry_key] = (digest, loaded)
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
        _cache = ModelCache(worker_storage(), settings.model_cache_size)
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
