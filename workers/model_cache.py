"""Generators loaded on demand in the worker process, kept in a bounded least-recently-used cache.

An entry is keyed by the model id and the identity of its two files (modification time, size and
inode of `model.safetensors` and `config.json`), so a model that a training run registers or
re-registers under the same id is loaded afresh at its next job: no worker restarts. At most
`capacity` models (`GANSERVE_MODEL_CACHE_SIZE`) stay loaded; the least recently used goes first.

The device is chosen when the first model is loaded, inside the worker process (CUDA when it is
available, else the CPU), never at import: the Celery parent must not touch CUDA before it forks.
`GANSERVE_TORCH_THREADS` sets the CPU threads torch uses per worker process (useful when several
workers share a machine's cores).
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import models
from models.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from workers.errors import JobFailure

MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
FileKey = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class LoadedModel:
    """A generator ready to run, with its card and the device it lives on."""

    id: str
    model: nn.Module
    card: models.ModelCard
    device: torch.device


_configured_pid: int | None = None


def configure_torch() -> None:
    """Apply GANSERVE_TORCH_THREADS once per process (a no-op when it is unset)."""
    global _configured_pid
    if _configured_pid == os.getpid():
        return
    _configured_pid = os.getpid()
    threads = os.environ.get("GANSERVE_TORCH_THREADS", "").strip()
    if threads:
        torch.set_num_threads(max(1, int(threads)))


def resolve_device() -> torch.device:
    """CUDA when this process sees a GPU, else the CPU (called lazily, inside the worker)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_folder(models_dir: Path, model_id: str) -> Path:
    """The folder of `model_id`; an id that is not a plain folder name is refused."""
    if not isinstance(model_id, str) or not MODEL_ID.match(model_id):
        raise JobFailure("model_not_found", f"there is no model called {model_id!r}")
    return models_dir / model_id


def _file_key(folder: Path) -> FileKey:
    stats = [os.stat(folder / name) for name in (WEIGHTS_FILE, CONFIG_FILE)]
    return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in stats)


class ModelCache:
    """Least-recently-used cache of loaded generators from one models folder."""

    def __init__(
        self, models_dir: Path, capacity: int, device: torch.device | str | None = None
    ) -> None:
        if capacity < 1:
            raise ValueError(f"the model cache holds at least 1 model, not {capacity}")
        self.models_dir = Path(models_dir)
        self.capacity = capacity
        self._device = torch.device(device) if device is not None else None
        self._entries: OrderedDict[str, tuple[FileKey, LoadedModel]] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many times a model was read from disk (for tests and logs)

    @property
    def device(self) -> torch.device:
        """The device models are loaded on, chosen at first use."""
        if self._device is None:
            self._device = resolve_device()
        return self._device

    def __len__(self) -> int:
        return len(self._entries)

    def ids(self) -> list[str]:
        """Ids of the loaded models, least recently used first."""
        return list(self._entries)

    def get(self, model_id: str) -> LoadedModel:
        """The loaded model `model_id`, from the cache when its files have not changed.

        Raises `JobFailure` with code `model_not_found` (no such folder) or `model_unloadable`
        (a folder that `models.load` refuses, with its reason).
        """
        folder = model_folder(self.models_dir, model_id)
        with self._lock:
            try:
                key = _file_key(folder)
            except FileNotFoundError:
                self._entries.pop(model_id, None)
                if folder.is_dir():
                    raise JobFailure(
                        "model_unloadable",
                        f"the model file could not be loaded: {folder.name} lacks "
                        f"{WEIGHTS_FILE} or {CONFIG_FILE}",
                    ) from None
                raise JobFailure(
                    "model_not_found",
                    f"there is no model called {model_id!r} (it may have been deleted after "
                    "the job was queued)",
                ) from None
            cached = self._entries.get(model_id)
            if cached is not None and cached[0] == key:
                self._entries.move_to_end(model_id)
                return cached[1]
            self._entries.pop(model_id, None)  # stale: its files changed
            try:
                card = models.read_card(folder)
                model = models.load(folder, device=self.device)
            except models.CheckpointError as exc:
                raise JobFailure(
                    "model_unloadable", f"the model file could not be loaded: {exc}"
                ) from None
            self.loads += 1
            loaded = LoadedModel(model_id, model, card, self.device)
            self._entries[model_id] = (key, loaded)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
            return loaded

    def clear(self) -> None:
        """Forget every loaded model."""
        with self._lock:
            self._entries.clear()


_cache: ModelCache | None = None
_cache_pid: int | None = None


def get_cache() -> ModelCache:
    """This worker process's cache, created at first use from the settings."""
    global _cache, _cache_pid
    if _cache is None or _cache_pid != os.getpid():
        from ganserve.settings import get_settings

        settings = get_settings()
        _cache = ModelCache(settings.models_dir, settings.model_cache_size)
        _cache_pid = os.getpid()
    return _cache
