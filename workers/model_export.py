"""Model export jobs: a model version's generator written as ONNX, once per version.

`POST /v1/models/{id}/exports` (format onnx) queues this job, pinned to the model version asked
for, when the cache (`core.exports`) has no export of that version. The graph is
`models.onnx_export`'s: for pix2pix the paper's test-time computation (per-image normalisation)
with dropout off, for the sampling generators `z` (and a class label) in, images out. The file is
written locally, uploaded to the object store whole (atomic), and a JSON description of its
inputs and outputs uploaded after it, so a request never serves half.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from core.exports import description_key, export_key, export_stamp
from core.jobs import JobStatus
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
    registry = ModelRegistry.of(ctx.storage)
    try:
        _, version = registry.resolve(ref or ModelRef(""))
        stamp = export_stamp(version.version, registry.version_digest(version))
        folder = registry.local_folder(version)
    except (ModelMissing, FileNotFoundError) as exc:
        raise JobFailure("model_not_found", str(exc)) from None
    objects = ctx.storage.objects
    target = export_key(ref.id, stamp, "onnx")
    described = description_key(target)
    description_bytes = objects.read(described) if objects.exists(target) else None
    if description_bytes is None:
        configure_torch()
        with tempfile.TemporaryDirectory(dir=ctx.storage.root, prefix=".export-") as tmp:
            local = Path(tmp) / "model.onnx"
            try:
                description = export_onnx(folder, local)
            except ExportError as exc:
                raise JobFailure("not_exportable", str(exc)) from None
            objects.upload_file(target, local)
        description_bytes = json.dumps(description, indent=2).encode()
        objects.put(described, description_bytes)
    info = objects.info(target)
    return Outcome(
        JobStatus.succeeded,
        {
            "format": "onnx",
            "stamp": stamp,
            "bytes": info.size if info is not None else 0,
            "download": f"/v1/models/{ref.id}@{version.version}/exports/onnx",
            **json.loads(description_bytes),
        },
    )
