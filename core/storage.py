"""Where objects live in the store (`GANSERVE_STORAGE_URL`, by default the data directory),
shared by gateway and workers. Keys, and on the local backend the same paths under the root:

models/<model id>/            model folders (models checkpoint format)
datasets/<dataset id>/        extracted dataset archives, with dataset.json
uploads/<job id>/input.png    images uploaded for jobs
results/<job id>/<k>.png      result images of jobs (`<k>.webp`, `<k>.jpg` in the format asked
                              for: the result's `format`, `result_image_name`)
runs/<job id>/                training run folders (training.run_files layout), whose sample
                              grids `samples/step_<n>.png` the gateway serves as previews

A dataset is complete once its record `dataset.json`, uploaded last, exists: a dataset without it
is invisible. A training run writes a working copy of its folder under the data directory
(`work/runs/<job id>/`, this host's own) that `workers.run_sync` uploads to `runs/<job id>/`.

Every layer reads and writes them through `Storage.objects` (`core.object_store`), by key; a
process that needs a stored folder on disk asks `Storage.folders` (`core.folder_cache`). `root`
stays the local data directory: the store's root on the local backend, and with S3 this host's
cache (`cache/`) and training runs' working copies (`work/`).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.folder_cache import FolderCache
from core.object_store import ObjectStore

if TYPE_CHECKING:
    from core.settings import Settings

# A training run folder (written by training.run_files, read by the gateway's previews):
RUN_OPTIONS_FILE = "options.json"  # the run's options and the family's hyperparameters
RUN_STATS_FILE = "stats.jsonl"  # one JSON object of losses and counters per logged step
RUN_SAMPLES_DIR = "samples"  # sample grids samples/step_<n:07d>.png
SAMPLE_GRID_PREFIX = "step_"
RUN_STATE_FILE = "training_state.pt"  # the resumable training state (training.state)
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
# A result image format (`core.params.ResultFormat`): its file extension and media type.
RESULT_IMAGE_TYPES = {
    "png": ("png", "image/png"),
    "webp": ("webp", "image/webp"),
    "jpeg": ("jpg", "image/jpeg"),
}
# A model or dataset id: a plain folder name (no separators, no leading dot).
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


STORE_AREAS = ("models", "datasets", "uploads", "results", "runs")  # the store's top-level keys
CACHE_DIR = "cache"  # under the data directory: downloads of stored folders (S3 only)
WORK_DIR = "work"  # under the data directory: training runs' working copies (workers.run_sync)
DEFAULT_CACHE_BYTES = 20 * 1024**3


def upload_key(job_id: str, name: str = INPUT_FILE) -> str:
    """The key of a file uploaded for a job (the prefix of them all when `name` is empty)."""
    return f"uploads/{job_id}/{name}" if name else f"uploads/{job_id}"


def result_key(job_id: str, name: str) -> str:
    """The key of a job's result file (`0.png`, `latents.npy`, ...; the prefix of them all
    when `name` is empty)."""
    return f"results/{job_id}/{name}" if name else f"results/{job_id}"


def result_image_format(result: Mapping[str, Any] | None) -> str:
    """The format of a job's result images as its result records it: png when it records
    none (every job before formats, and the kinds that always write PNG)."""
    format = (result or {}).get("format")
    return format if format in RESULT_IMAGE_TYPES else "png"


def result_image_name(index: int, format: str = "png") -> str:
    """The file name of result image `index` in `format` (`0.png`, `3.webp`, `1.jpg`)."""
    return f"{index}.{RESULT_IMAGE_TYPES[format][0]}"


def dataset_key(dataset_id: str, name: str = "") -> str:
    """The key (prefix, when `name` is empty) of a dataset's folder or one of its files."""
    return f"datasets/{dataset_id}/{name}" if name else f"datasets/{dataset_id}"


def run_key(job_id: str, name: str = "") -> str:
    """The key (prefix, when `name` is empty) of a training run's folder or one of its files."""
    return f"runs/{job_id}/{name}" if name else f"runs/{job_id}"


@dataclass(frozen=True)
class Storage:
    """The store of one deployment and this host's local data directory."""

    root: Path
    objects: ObjectStore = field(default=None)  # type: ignore[assignment]  # set in __post_init__
    cache_max_bytes: int = DEFAULT_CACHE_BYTES
    folders: FolderCache = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.objects is None:  # the local backend on the data directory itself
            object.__setattr__(self, "objects", ObjectStore.local(self.root))
        cache = FolderCache(self.objects, self.root / CACHE_DIR, self.cache_max_bytes)
        object.__setattr__(self, "folders", cache)

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        """The storage the settings name (`GANSERVE_STORAGE_URL`, `GANSERVE_DATA_DIR`)."""
        objects = ObjectStore.open(settings.storage_url, settings.data_dir)
        return cls(settings.data_dir, objects, settings.cache_max_bytes)

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
        """A training run's stored folder on the local backend (`runs/<job id>/`)."""
        return self.root / "runs" / job_id

    def run_working_copy(self, job_id: str) -> Path:
        """The folder this host's training process writes a run into (`workers.run_sync`
        uploads it to `runs/<job id>/`)."""
        return self.root / WORK_DIR / "runs" / job_id

    def sample_grids(self, job_id: str) -> dict[int, str]:
        """A training run's stored sample grids so far: their keys by step
        (`runs/<job id>/samples/step_<n>.png`)."""
        grids = {}
        for info in self.objects.list(run_key(job_id, RUN_SAMPLES_DIR)):
            name = info.key.rsplit("/", 1)[-1]
            number = name.removeprefix(SAMPLE_GRID_PREFIX).removesuffix(".png")
            if name.startswith(SAMPLE_GRID_PREFIX) and name.endswith(".png") and number.isdigit():
                grids[int(number)] = info.key
        return grids

    def ensure(self) -> None:
        """Create the data directory and, for a local store, its top-level folders (an S3 store
        has no folders: a host then keeps only its cache and working copies here)."""
        self.root.mkdir(parents=True, exist_ok=True)
        store_root = self.objects.local_path("")
        if store_root is not None:
            for area in STORE_AREAS:
                (store_root / area).mkdir(parents=True, exist_ok=True)


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
