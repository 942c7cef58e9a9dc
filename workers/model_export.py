"""Model export jobs: a model version's generator written as ONNX, once per version.

`POST /v1/models/{id}/exports` (format onnx) queues this job, pinned to the model version asked
for, when the cache (`core.exports`) has no export of that version's files. The graph is
`models.onnx_export`'s: for pix2pix the paper's test-time computation (per-image normalisation)
with dropout off, for the sampling generators `z` (and a class label) in, images out. The file
and a JSON description of its inputs
and outputs are written through temporary files and renamed, so a request never serves half.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.exports import description_path, export_path, export_stamp
from core.jobs import JobStatus
from core.model_folder import atomic_write
from core.model_registry import ModelMissing, ModelRef, ModelRegistry, parse_ref
from models.onnx_export import ExportError, export_onnx
from workers.errors import JobFailure
from workers.jobs import JobContext, Outcome
from workers.model_cache import configure_torch


def export_model(ctx: JobContext) -> Outcome:
    """Export the job's model as ONNX into the cache; the result describes the file."""
    if not ctx.job.model:
        raise JobFailure("invalid_parameter", "the job names no model")
    ref = parse_ref(ctx.job.model)
    try:
        _, version = ModelRegistry(ctx.storage.models).resolve(ref or ModelRef(""))
    except ModelMissing as exc:
        raise JobFailure("model_not_found", str(exc)) from None
    folder = version.folder
    stamp = export_stamp(folder, version.version)
    target = export_path(ctx.storage.root, ref.id, stamp, "onnx")
    described = description_path(target)
    if not (target.is_file() and described.is_file()):
        configure_torch()
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            description = export_onnx(folder, target)
        except ExportError as exc:
            raise JobFailure("not_exportable", str(exc)) from None
        text = json.dumps(description, indent=2)
        atomic_write(described, lambda tmp: Path(tmp).write_text(text))
    description = json.loads(described.read_text())
    return Outcome(
        JobStatus.succeeded,
        {
            "format": "onnx",
            "stamp": stamp,
            "bytes": target.stat().st_size,
            "download": f"/v1/models/{ref.id}@{version.version}/exports/onnx",
            **description,
        },
    )
