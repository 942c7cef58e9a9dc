"""The resumable training state: `training_state.pt` in a run folder.

Holds what the model folder does not: the step, the images seen, G, D and the EMA copy, both
optimizers, the family's own state and the random number generators, so that `--resume`
continues exactly as an uninterrupted run would. Written atomically with `torch.save` and read
with `torch.load(..., weights_only=True)`, which refuses anything but tensors and plain
containers (no arbitrary pickled objects).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.model_folder import atomic_write
from core.storage import RUN_STATE_FILE


class StateError(ValueError):
    """A training state that cannot be resumed from."""


def rng_state() -> dict[str, Any]:
    """The CPU (and CUDA, where present) random number generator states."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put the generators back as `rng_state` found them."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(state: dict[str, Any], folder: Path) -> Path:
    """Write `state` to `folder/training_state.pt` through a temporary file and a rename."""
    path = folder / RUN_STATE_FILE
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    return path


def load_state(folder: Path) -> dict[str, Any] | None:
    """The saved state of a run folder, or None when it has none yet."""
    path = folder / RUN_STATE_FILE
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which and why
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise StateError(f"cannot resume from the run's {RUN_STATE_FILE}: {detail}") from None
