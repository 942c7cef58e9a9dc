"""Small demo models of each family, trained through the normal API and training queue.

When a fresh `ganserve up` finds no model, it builds the demo datasets from images that ship
inside installed packages (`training.demo`), uploads them with `POST /v1/datasets` and starts one
training run per family with `POST /v1/training-runs`, in the order a newcomer needs them: a
pix2pix translation model first, then the sampling models. They train as background runs: each
registers its model at every checkpoint (usable early, better every checkpoint), takes turns with
the other demos (`GANSERVE_BACKGROUND_SLICE_SECONDS`) and steps aside whenever a user's training
run waits. `benchmarks/demo_quality.py` measures them.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from core.families import FAMILY_TABLE

MARKER = "demo_jobs.json"  # under the storage root: the demo runs already asked for


@dataclass(frozen=True)
class DemoModel:
    """One demo: the `training.demo` dataset to build, and the training run to start on it."""

    name: str
    family: str
    config: dict[str, Any] = field(default_factory=dict)


# One per family, in the family table's order (a translation model first), from its `demo` row.
DEMOS = tuple(DemoModel(f.demo.dataset, f.name, f.demo.config) for f in FAMILY_TABLE)


def _zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                zf.write(path, path.relative_to(folder).as_posix())
    return archive


def request_demo_models(base_url: str, data_dir: Path, api_key: str | None = None) -> list[str]:
    """Queue the demo training runs unless models exist or they were queued before.

    Returns the ids of the jobs started (empty when nothing was needed).
    """
    models_dir = data_dir / "models"
    marker = data_dir / MARKER
    if marker.exists() or any(p.is_dir() for p in models_dir.glob("*")):
        return []
    from training import demo as datasets  # torch is imported only when demos are built

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    jobs = []
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
            run = client.post(
                "/v1/training-runs",
                json={
                    "family": demo.family,
                    "dataset": response.json()["id"],
                    "name": demo.name,
                    "config": demo.config,
                    "background": True,
                },
            )
            run.raise_for_status()
            jobs.append(run.json()["id"])
    marker.write_text(json.dumps({"jobs": jobs}, indent=2) + "\n")
    return jobs
