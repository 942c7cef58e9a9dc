"""Where a model's exports are cached: `exports/<model id>/<stamp>.<format>` in the object store.

`GET /v1/models/{id}[@<version>]/exports/{format}` answers from this cache, streamed from the
store; an export is made once per model version. The stamp names the version and its content
digest (`v<n>_<digest>`), so a model's next version (a training run's next checkpoint) is exported
afresh, and an export is never served for other weights than its own. The ONNX export is written
by an infer worker (an export job, `workers.model_export`) with a JSON description of its inputs
and outputs beside it (`<stamp>.onnx.json`, written after the export); the folder zip by the
gateway. Both are uploaded whole (atomic). Deleting a model or a version removes its exports; the
sweeper removes the exports of models that are gone. Torch-free.
"""

from __future__ import annotations

from core.object_store import ObjectStore

EXPORTS_DIR = "exports"
FORMATS = ("onnx", "safetensors")
SUFFIX = {"onnx": ".onnx", "safetensors": ".zip"}
_STAMP_DIGITS = 32  # hex digits of the content digest in a stamp (128 bits)


def export_stamp(version: int, digest: str) -> str:
    """The identity of a model version's files: `v<n>_<hex digits of its content digest>`."""
    return f"v{version}_{digest.removeprefix('sha256:')[:_STAMP_DIGITS]}"


def export_key(model_id: str, stamp: str, fmt: str) -> str:
    """The key of the cached export of one model version in one format."""
    return f"{EXPORTS_DIR}/{model_id}/{stamp}{SUFFIX[fmt]}"


def description_key(export: str) -> str:
    """The key of the JSON description (inputs, outputs) stored beside an ONNX export."""
    return f"{export}.json"


def remove_exports(objects: ObjectStore, model_id: str, version: int | None = None) -> None:
    """Remove the cached exports of one version of a model (all of them when None)."""
    prefix = f"{EXPORTS_DIR}/{model_id}"
    if version is None:
        objects.delete_prefix(prefix)
        return
    for info in objects.list(prefix):
        if info.key[len(prefix) + 1 :].startswith(f"v{version}_"):
            objects.delete(info.key)
