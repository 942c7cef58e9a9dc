"""Where a model's exports are cached: `exports/<model id>/<stamp>.<format>` under the storage root.

`GET /v1/models/{id}[@<version>]/export` answers from this cache; an export is made once per
model version. The stamp names the version and the files it was made from (modification time in
ns, size and inode of `config.json`, the weights and, for the folder zip, the discriminator), so
a model's next version (a training run's next checkpoint) is exported afresh, and an export is
never served for other weights than its own. The ONNX export is written by an infer worker (an
export job, `workers.model_export`) with a JSON description of its inputs and outputs beside it
(`<stamp>.onnx.json`); the folder zip by the gateway. The sweeper removes the exports of deleted
models. Torch-free.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from core.model_archive import FOLDER_FILES

EXPORTS_DIR = "exports"
FORMATS = ("onnx", "safetensors")
SUFFIX = {"onnx": ".onnx", "safetensors": ".zip"}


def export_stamp(folder: Path, version: int) -> str:
    """The identity of a model version's files ("v<n>_" then "<mtime_ns>-<size>-<inode>" of
    each file, joined)."""
    parts = [f"v{version}"]
    for name in FOLDER_FILES:
        path = folder / name
        if path.is_file():
            stat = path.stat()
            parts.append(f"{stat.st_mtime_ns:x}-{stat.st_size:x}-{stat.st_ino:x}")
    return "_".join(parts)


def export_path(root: Path, model_id: str, stamp: str, fmt: str) -> Path:
    """The cached export of one model's files in one format."""
    return root / EXPORTS_DIR / model_id / f"{stamp}{SUFFIX[fmt]}"


def remove_exports(root: Path, model_id: str, version: int | None = None) -> None:
    """Remove the cached exports of one version of a model (all of them when None)."""
    folder = root / EXPORTS_DIR / model_id
    if version is None:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for path in folder.glob(f"v{version}_*"):
        path.unlink(missing_ok=True)


def description_path(export: Path) -> Path:
    """The JSON description (inputs, outputs) written beside an ONNX export."""
    return export.with_name(export.name + ".json")
