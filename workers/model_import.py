"""Model import jobs: an uploaded model zip or pix2pix reference checkpoint registered as a model.

The gateway has checked the upload's layout and stored it in the job's upload folder
(`core.model_archive` names the files). Here the weights are opened for the first time:

- **folder**: only `config.json`, `model.safetensors` and `discriminator.safetensors` are copied
  out of the zip (streamed, capped at `GANSERVE_MAX_MODEL_BYTES`), then loaded with
  `models.load` / `models.load_discriminator`, exactly as a worker loads a model to serve it: a
  zip that does not load is refused (`not_a_model`) and nothing is registered.
- **reference**: the `*_net_G.pth` (and `*_net_D.pth`) of Isola et al.'s reference implementation
  is read with `torch.load(weights_only=True)` (`models.pix2pix_reference`): a pickle that would
  call anything but the tensor rebuilders is refused before it runs (`unsafe_checkpoint`). Its
  keys are mapped onto ganserve's U-Net and PatchGAN, loaded strictly, and saved as safetensors.

The folder is written in a hidden staging folder under `models/` and renamed into place, so the
catalog never lists half a model. Its card records the importing key as owner, the job, and
the name and description given; a folder zip's old provenance is kept under `imported.origin`
except what names things of the other installation (its dataset, run, job and owner).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import models
from core.jobs import JobStatus
from core.model_archive import (
    UPLOADED_DISCRIMINATOR,
    UPLOADED_FOLDER,
    UPLOADED_GENERATOR,
    NotAModel,
    extract_folder,
)
from core.model_folder import (
    CONFIG_FILE,
    DISCRIMINATOR_FILE,
    DISCRIMINATOR_KEY,
    ModelFolderError,
    add_provenance,
    card_text,
    has_discriminator,
    read_card_json,
)
from core.params import ImportParams
from core.storage import staging_folder
from models.pix2pix_reference import (
    ReferenceCheckpointError,
    UnsafeCheckpoint,
    convert_discriminator,
    convert_generator,
    read_state_dict,
)
from workers.errors import JobFailure
from workers.inference import job_params
from workers.jobs import JobContext, Outcome
from workers.model_cache import configure_torch

LOCAL_PROVENANCE = frozenset({"dataset", "dataset_name", "run", "job", "owner", "published_step"})
GENERATOR = "pix2pix-generator"
DISCRIMINATOR = "pix2pix-discriminator"


def _from_folder_zip(upload: Path, staging: Path, max_bytes: int) -> dict[str, Any]:
    """Extract and load a folder zip into `staging`; its old provenance (without local ids)."""
    try:
        extract_folder(upload, staging, max_bytes)
        card = read_card_json(staging)
        models.load(staging)
        if has_discriminator(staging, card):
            models.load_discriminator(staging)
    except (NotAModel, ModelFolderError) as exc:
        raise JobFailure(
            "not_a_model", f"the zip is not a model ganserve can load: {exc}"
        ) from None
    if not has_discriminator(staging, card):  # a stray weights file or a dangling entry
        (staging / DISCRIMINATOR_FILE).unlink(missing_ok=True)
        if DISCRIMINATOR_KEY in card:
            card.pop(DISCRIMINATOR_KEY)
            (staging / CONFIG_FILE).write_text(card_text(card))
    old = card.get("provenance") if isinstance(card.get("provenance"), dict) else {}
    return {k: v for k, v in old.items() if k not in LOCAL_PROVENANCE}


def _from_reference(upload_dir: Path, staging: Path, with_discriminator: bool) -> None:
    """Convert the reference's G (and D) into a model folder in `staging`."""
    try:
        fields, tensors = convert_generator(read_state_dict(upload_dir / UPLOADED_GENERATOR))
        generator = models.create(GENERATOR, **fields)
        generator.load_state_dict(tensors, strict=True)
        models.save(generator, staging)
        if with_discriminator:
            d_state = read_state_dict(upload_dir / UPLOADED_DISCRIMINATOR)
            d_fields, d_tensors = convert_discriminator(d_state, fields)
            discriminator = models.create(DISCRIMINATOR, **d_fields)
            discriminator.load_state_dict(d_tensors, strict=True)
            models.save_discriminator(staging, discriminator, DISCRIMINATOR, d_fields)
    except UnsafeCheckpoint as exc:
        raise JobFailure("unsafe_checkpoint", str(exc)) from None
    except (ReferenceCheckpointError, RuntimeError, ValueError, TypeError) as exc:
        raise JobFailure(
            "unsupported_checkpoint",
            f"the checkpoint cannot be imported as a pix2pix model: {exc}",
        ) from None


def _free_id(models_dir: Path, params: ImportParams) -> str:
    """The id to register under: the chosen one (taken -> `model_exists`), else the first free
    of `<id>`, `<id>-2`, `<id>-3`, ..."""
    if params.id_given:
        if (models_dir / params.model_id).exists():
            raise JobFailure("model_exists", f"there is already a model {params.model_id!r}")
        return params.model_id
    candidate, n = params.model_id, 1
    while (models_dir / candidate).exists():
        n += 1
        candidate = f"{params.model_id}-{n}"
    return candidate


def import_model(ctx: JobContext) -> Outcome:
    """Register the job's uploaded model; the result names the new model's id."""
    params = job_params(ctx)
    assert isinstance(params, ImportParams)
    configure_torch()
    upload_dir = ctx.storage.upload_dir(ctx.job_id)
    models_dir = ctx.storage.models
    model_id = _free_id(models_dir, params)
    with staging_folder(models_dir / model_id) as staging:
        origin: dict[str, Any] = {}
        if params.source == "folder":
            origin = _from_folder_zip(
                upload_dir / UPLOADED_FOLDER, staging, 2 * ctx.settings.max_model_bytes
            )
        else:
            _from_reference(upload_dir, staging, params.discriminator)
        ctx.report(0.8)
        listing = {
            k: v for k, v in (("name", params.name), ("description", params.description)) if v
        }
        imported: dict[str, Any] = {"source": params.source, "filename": params.filename}
        if origin:
            imported["origin"] = origin
        provenance: dict[str, Any] = {
            "owner": ctx.job.owner,
            "job": ctx.job_id,
            "name": params.name or model_id,
            "imported": imported,
        }
        if isinstance(origin.get("training"), dict):
            provenance["training"] = origin["training"]  # e.g. which side of a pair is input
        if listing:
            provenance["listing"] = listing
        card = add_provenance(staging, provenance)
        final = _free_id(models_dir, params.model_copy(update={"model_id": model_id}))
        staging.rename(models_dir / final)
    return Outcome(
        JobStatus.succeeded,
        {
            "model": final,
            "family": card["family"],
            "architecture": card["architecture"],
            "source": params.source,
            "discriminator": has_discriminator(models_dir / final),
        },
    )
