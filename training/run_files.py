"""The files a training run writes as it goes (stylegan2-ada-pytorch's run folder).

<out>/options.json        the run's options and the family's hyperparameters
<out>/stats.jsonl         one JSON object of losses and counters per logged step
<out>/tensorboard/        the same scalars and the sample grids, for TensorBoard
<out>/samples/*.png       sample grids from fixed inputs
<out>/model/              the model folder (models checkpoint format), updated at checkpoints
<out>/training_state.pt   what --resume needs (training.state)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from core.model_folder import atomic_write
from core.storage import (
    RUN_OPTIONS_FILE,
    RUN_SAMPLES_DIR,
    RUN_STATS_FILE,
    sample_grid_name,
)
from training.images import grid

MODEL_DIR = "model"


def _step_of(line: str, unreadable: int) -> int:
    """The step of a stats line; `unreadable` for a line that is not a whole JSON object."""
    try:
        row = json.loads(line)
    except ValueError:
        return unreadable
    return row["step"] if isinstance(row, dict) and isinstance(row.get("step"), int) else unreadable


class RunFiles:
    """Writer of a run folder's options, stats, TensorBoard events and sample grids."""

    def __init__(self, out: Path) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        (out / RUN_SAMPLES_DIR).mkdir(exist_ok=True)
        self._tensorboard = SummaryWriter(log_dir=str(out / "tensorboard"))

    @property
    def model_dir(self) -> Path:
        """Where the run's model folder lives."""
        return self.out / MODEL_DIR

    def write_options(self, options: dict[str, Any]) -> None:
        """Record the run's options as JSON."""
        text = json.dumps(options, indent=2, default=str) + "\n"
        atomic_write(self.out / RUN_OPTIONS_FILE, lambda tmp: Path(tmp).write_text(text))

    def log(self, step: int, stats: dict[str, float]) -> None:
        """Append one line to stats.jsonl and the scalars to TensorBoard."""
        with (self.out / RUN_STATS_FILE).open("a") as f:
            f.write(json.dumps({"step": step, **stats}) + "\n")
        for key, value in stats.items():
            self._tensorboard.add_scalar(key, value, step)

    def truncate_stats(self, step: int) -> None:
        """Drop stats lines logged after the checkpoint a resumed run restarts from, and a last
        line cut off by a worker that died while writing it (or its copy uploaded meanwhile)."""
        path = self.out / RUN_STATS_FILE
        if not path.is_file():
            return
        kept = [line for line in path.read_text().splitlines() if _step_of(line, step + 1) <= step]
        text = "".join(line + "\n" for line in kept)
        atomic_write(path, lambda tmp: Path(tmp).write_text(text))

    def sample(self, step: int, images: torch.Tensor, columns: int) -> Path:
        """Save a grid of samples as PNG and show it in TensorBoard."""
        picture = grid(images, columns)
        path = self.out / RUN_SAMPLES_DIR / sample_grid_name(step)
        # readers (the gateway's preview) never see half a file; the hidden temporary file's
        # name (".step_...png.XXXX") is not matched by the gateway's "step_*.png" glob
        atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))
        array = np.asarray(picture)
        self._tensorboard.add_image(
            "samples", array, step, dataformats="HW" if array.ndim == 2 else "HWC"
        )
        return path

    def close(self) -> None:
        """Flush TensorBoard."""
        self._tensorboard.close()
