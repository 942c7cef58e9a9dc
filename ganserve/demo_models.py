"""The demo models: pretrained weights that ship with ganserve, registered at a fresh start.

When a fresh `ganserve up` finds no model, it builds the demo datasets from images that ship
inside installed packages (`training.demo`) and uploads them with `POST /v1/datasets` (they are
the translation model's example inputs and the Train view's ready-made datasets). Then it
registers the pretrained demo models of `ganserve/demo_weights/` (one model folder per demo:
half-precision safetensors and a card recording the exact command, steps, seed and time that
trained it, made by `benchmarks/train_demo_models.sh` and `benchmarks/ship_demo_models.py`) as
version 1 of `labels2photo`, `digits` and `faces` in the object store (`GANSERVE_STORAGE_URL`):
owned by the operator, so every key shares them, each naming its dataset by the id it just got.
They serve at once, and nothing trains. What was installed is recorded in the store
(`demo_jobs.json`), so a start on another host installs nothing again.

With `train` (`ganserve up --train-demos`, `GANSERVE_TRAIN_DEMOS`) one background training run
per family also starts on the demo datasets (and so does the run of a demo whose weights do not
ship, e.g. in a checkout that left `ganserve/demo_weights/` out), in the family table's order:
each registers its own model at every checkpoint, the runs take turns
(`GANSERVE_BACKGROUND_SLICE_SECONDS`) and
step aside whenever a user's training run waits. `benchmarks/demo_quality.py` measures both.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from core.families import FAMILY_TABLE
from core.model_folder import add_provenance
from core.model_registry import ModelRegistry
from core.storage import Storage, staging_folder

MARKER = "demo_jobs.json"  # a key in the store: what the first start installed
WEIGHTS_DIR = Path(__file__).resolve().parent / "demo_weights"


@dataclass(frozen=True)
class DemoModel:
    """One demo: the `training.demo` dataset to build, and the training run to start on it."""

    name: str
    family: str
    config: dict[str, Any] = field(default_factory=dict)


# One per family with a demo, in the family table's order (a translation model first), from
# its `demo` row.
DEMOS = tuple(
    DemoModel(f.demo.dataset, f.name, f.demo.config) for f in FAMILY_TABLE if f.demo is not None
)


@dataclass
class Installed:
    """What a first start did: the datasets uploaded (demo -> id), the demo models registered,
    the background training runs queued."""

    datasets: dict[str, str] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)


def _zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                zf.write(path, path.relative_to(folder).as_posix())
    return archive


def register_shipped_model(storage: Storage, demo: DemoModel, owner: str, dataset: str) -> bool:
    """Register the shipped weights of `demo` (if they ship) as a version of the model of its
    name, owned by `owner`, trained on the dataset `dataset`; whether it was registered."""
    shipped = WEIGHTS_DIR / demo.name
    if not (shipped / "model.safetensors").is_file():
        return False
    registry = ModelRegistry.of(storage)
    registry.claim(demo.name, owner)
    source = {"kind": "demo", "dataset": dataset, "training": {"direction": "AtoB"}}
    with staging_folder(storage.models / demo.name) as staging:
        shutil.copytree(shipped, staging, dirs_exist_ok=True)
        add_provenance(staging, {"dataset": dataset, "owner": owner})
        registry.add_version(demo.name, owner, staging, source)
    return True


def install_demo_models(
    base_url: str,
    storage: Storage,
    owner: str,
    api_key: str | None = None,
    *,
    train: bool = False,
) -> Installed | None:
    """At a fresh start (no model, never installed before): upload the demo datasets, register
    the shipped demo models under `owner` and, with `train`, queue the background training runs.
    None when there was nothing to do."""
    if storage.objects.exists(MARKER) or ModelRegistry.of(storage).ids():
        return None
    from training import demo as datasets  # torch is imported only when demos are built

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    done = Installed()
    with (
        httpx.Client(base_url=base_url, headers=headers, timeout=120) as client,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for demo in DEMOS:
            folder = datasets.build_demo(demo.name, Path(tmp) / demo.name)
            archive = _zip_folder(folder, Path(tmp) / f"{demo.name}.zip")
            with archive.open("rb") as f:
                response = client.post(
                    "/v1/datasets",
                    data={"name": demo.name, "kind": datasets.DEMOS[demo.name].kind},
                    files={"archive": (archive.name, f, "application/zip")},
                )
            response.raise_for_status()
            dataset = response.json()["id"]
            done.datasets[demo.name] = dataset
            shipped = register_shipped_model(storage, demo, owner, dataset)
            if shipped:
                done.models.append(demo.name)
            if train or not shipped:  # a demo whose weights do not ship is trained instead
                run = client.post(
                    "/v1/training-runs",
                    json={
                        "family": demo.family,
                        "dataset": dataset,
                        "name": demo.name,
                        "config": demo.config,
                        "background": True,
                    },
                )
                run.raise_for_status()
                done.jobs.append(run.json()["id"])
    storage.objects.put(MARKER, (json.dumps(done.__dict__, indent=2) + "\n").encode())
    return done
