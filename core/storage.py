"""Where files live under the storage root (`GANSERVE_DATA_DIR`), shared by gateway and workers.

models/<model id>/            model folders (models checkpoint format)
datasets/<dataset id>/        extracted dataset archives, with dataset.json
uploads/<job id>/input.png    images uploaded for jobs
results/<job id>/<k>.png      result images of jobs
runs/<job id>/                training run folders (training.run_files layout), whose sample
                              grids `samples/step_<n>.png` the gateway serves as previews
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# A training run folder (written by training.run_files, read by the gateway's previews):
RUN_OPTIONS_FILE = "options.json"  # the run's options and the family's hyperparameters
RUN_STATS_FILE = "stats.jsonl"  # one JSON object of losses and counters per logged step
RUN_SAMPLES_DIR = "samples"  # sample grids samples/step_<n:07d>.png
SAMPLE_GRID_PREFIX = "step_"
# Pillow modes read as grey ("L"), everything else as RGB: uploads and training data alike.
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def sample_grid_name(step: int) -> str:
    """The file name of a run's sample grid at `step` (`step_0000100.png`)."""
    return f"{SAMPLE_GRID_PREFIX}{step:07d}.png"


DATASET_FILE = "dataset.json"  # a dataset's record, in its folder beside its files
INPUT_FILE = "input.png"  # the image uploaded for a job, in uploads/<job id>/
PROJECTION_PREVIEW_FILE = "preview.png"  # a projection's current reconstruction, in uploads/<job>/
LATENTS_FILE = "latents.npy"  # a job's latents, float32 (N, latent_dim), in results/<job id>/
# zlib level of the PNGs the service writes (uploads kept for jobs, results): Pillow's default 6
# took 35 ms to encode a smooth 256x256 photo on one core, level 1 took 4.7 ms for 16% more bytes,
# which was most of a translation's overhead through the stack.
PNG_COMPRESS_LEVEL = 1
# A model or dataset id: a plain folder name (no separators, no leading dot).
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Storage:
    """Paths under one storage root."""

    root: Path

    @property
    def models(self) -> Path:
        """Model folders."""
        return self.root / "models"

    @property
    def datasets(self) -> Path:
        """Extracted datasets."""
        return self.root / "datasets"

    def upload_dir(self, job_id: str) -> Path:
        """Inputs uploaded for a job."""
        return self.root / "uploads" / job_id

    def result_dir(self, job_id: str) -> Path:
        """Result images of a job."""
        return self.root / "results" / job_id

    def run_dir(self, job_id: str) -> Path:
        """A training run's folder."""
        return self.root / "runs" / job_id

    def sample_grids(self, job_id: str) -> dict[int, Path]:
        """A training run's sample grids so far, by step (`samples/step_<n>.png`)."""
        grids = {}
        for path in (self.run_dir(job_id) / RUN_SAMPLES_DIR).glob(f"{SAMPLE_GRID_PREFIX}*.png"):
            number = path.stem.removeprefix(SAMPLE_GRID_PREFIX)
            if number.isdigit():
                grids[int(number)] = path
        return grids

    def ensure(self) -> None:
        """Create the top-level folders."""
        for path in (
            self.models,
            self.datasets,
            self.root / "uploads",
            self.root / "results",
            self.root / "runs",
        ):
            path.mkdir(parents=True, exist_ok=True)


@contextmanager
def staging_folder(final: Path) -> Iterator[Path]:
    """A new hidden folder beside `final` (`.<name>.<random>`), its parent created if need be.

    The caller fills it and renames it into place (as `final`) inside the `with` block; when the
    block raises, the staging folder is removed with whatever it holds.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
