"""Model import jobs: an uploaded model zip or pix2pix reference checkpoint registered as a model.

The gateway has checked the upload's layout and stored it in the job's upload folder
(`core.model_archive` names the files). Here the weights are opened for the first time:

- **folder**: only `config.json`, `model.safetensors` and `discriminator.safetensors` are copied
  out of the zip (streamed, capped at `GANSERVE_MAX_MODEL_BYTES`). The card is not trusted:
  `models.check_card` derives family, task, image size, channels and classes from its network
  and compares every tensor's shape with the weights files' headers before anything is
  allocated; then the weights are loaded with `models.load` / `models.load_discriminator`,
  exactly as a worker loads a model to serve it. A zip that fails is refused (`not_a_model`)
  and nothing is registered.
- **reference**: the `*_net_G.pth` (and `*_net_D.pth`) of Isola et al.'s reference implementation
  is read with `torch.load(weights_only=True)` (`models.pix2pix.reference`): a pickle that would
  call anything but the tensor rebuilders is refused before it runs (`unsafe_checkpoint`). Its
  keys are mapped onto ganserve's U-Net and PatchGAN, loaded strictly, and saved as safetensors.

The import claims the model id for the importing key (`core.model_registry`: an id of the key's own
model gets a new version; another key's id fails `model_exists`), writes the folder in a hidden
staging folder and registers it as the model's next version (`workers.registration`: uploaded to the
object store, its marker last), so the catalog never lists half a model. Its card's provenance is
replaced: the importing key, the job and, under `imported.origin`, the zip's own provenance as the
uploader's description only, without what names things of the other installation (its dataset, run,
job and owner); nothing the service acts on is read from it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
    atomic_write,
    card_text,
    has_discriminator,
    read_card_json,
)
from core.model_registry import ModelRegistry, ModelTaken
from core.params import ImportParams
from core.storage import staging_folder, upload_key
from models.pix2pix.reference import (
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
from workers.registration import register_version

LOCAL_PROVENANCE = frozenset({"dataset", "dataset_name", "run", "job", "owner", "published_step"})
GENERATOR = "pix2pix-generator"
DISCRIMINATOR = "pix2pix-discriminator"


def _as_uploaded(message: str, staging: Path, members: dict[str, str]) -> str:
    """`message` with the staging folder's files named as the zip names them (`m/config.json`),
    so that no error names a path on the server."""
    for name, member in members.items():
        message = message.replace(str(staging / name), member)
    return message.replace(str(staging), "the model folder")


def _from_folder_zip(upload: Path, staging: Path, max_bytes: int) -> dict[str, Any]:
    """Extract and load a folder zip into `staging`; its old provenance (without local ids)."""
    members: dict[str, str] = {}
    try:
        members = extract_folder(upload, staging, max_bytes)
        card = read_card_json(staging)
        models.check_card(staging)
        models.load(staging)
        if has_discriminator(staging, card):
            models.load_discriminator(staging)
    except (NotAModel, ModelFolderError) as exc:
        message = _as_uploaded(str(exc), staging, members)
        raise JobFailure(
            "not_a_model", f"the zip is not a model ganserve can load: {message}"
        ) from None
    if not has_discriminator(staging, card):  # a stray weights file or a dangling entry
        (staging / DISCRIMINATOR_FILE).unlink(missing_ok=True)
        if DISCRIMINATOR_KEY in card:
            card.pop(DISCRIMINATOR_KEY)
            (staging / CONFIG_FILE).write_text(card_text(card))
    old = card.get("provenance") if isinstance(card.get("provenance"), dict) else {}
    return {k: v for k, v in old.items() if k not in LOCAL_PROVENANCE}


def _from_reference(
    upload_dir: Path, staging: Path, with_discriminator: bool, generator_name: str
) -> None:
    """Convert the reference's G (and D) into a model folder in `staging`; errors name the
    generator's file as `generator_name` (the uploaded file's name)."""
    try:
        fields, tensors = convert_generator(
            read_state_dict(upload_dir / UPLOADED_GENERATOR, name=generator_name)
        )
        generator = models.create(GENERATOR, **fields)
        generator.load_state_dict(tensors, strict=True)
        models.save(generator, staging)
        if with_discriminator:
            d_state = read_state_dict(
                upload_dir / UPLOADED_DISCRIMINATOR, name="the discriminator file"
            )
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


def _claim_id(registry: ModelRegistry, params: ImportParams, owner: str) -> str:
    """The id to register under, claimed for `owner`: the chosen one (a new version when it is
    the owner's model; another owner's -> `model_exists`), else the first free of `<id>`,
    `<id>-2`, `<id>-3`, ..."""
    if params.id_given:
        try:
            registry.claim(params.model_id, owner)
        except ModelTaken:
            raise JobFailure(
                "model_exists", f"the model id {params.model_id!r} belongs to another owner"
            ) from None
        return params.model_id
    n = 1
    while True:
        candidate = params.model_id if n == 1 else f"{params.model_id}-{n}"
        try:
            registry.claim(candidate, owner, fresh=True)
            return candidate
        except ModelTaken:
            n += 1


@contextmanager
def _uploads(ctx: JobContext) -> Iterator[Path]:
    """The job's uploaded files, downloaded from the store into a local folder for the block
    (hidden, beside the models' staging folders, so a killed worker's leftover is swept)."""
    ctx.storage.models.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ctx.storage.models, prefix=".import-") as folder:
        try:
            ctx.storage.objects.download_folder(upload_key(ctx.job_id, ""), Path(folder))
        except OSError:
            raise JobFailure(
                "storage_unavailable", "the uploaded model could not be read from storage"
            ) from None
        yield Path(folder)


def import_model(ctx: JobContext) -> Outcome:
    """Register the job's uploaded model; the result names the new model's id."""
    params = job_params(ctx)
    assert isinstance(params, ImportParams)
    configure_torch()
    with (
        staging_folder(ctx.storage.models / params.model_id) as staging,
        _uploads(ctx) as upload_dir,
    ):
        origin: dict[str, Any] = {}
        if params.source == "folder":
            origin = _from_folder_zip(
                upload_dir / UPLOADED_FOLDER, staging, 2 * ctx.settings.max_model_bytes
            )
        else:
            _from_reference(
                upload_dir, staging, params.discriminator, params.filename or "the checkpoint"
            )
        ctx.report(0.8)
        listing = {
            k: v for k, v in (("name", params.name), ("description", params.description)) if v
        }
        imported: dict[str, Any] = {"source": params.source, "filename": params.filename}
        if origin:
            imported["origin"] = origin
        card = read_card_json(staging)
        card["provenance"] = {"owner": ctx.job.owner, "job": ctx.job_id, "imported": imported}
        atomic_write(staging / CONFIG_FILE, lambda tmp: Path(tmp).write_text(card_text(card)))
        discriminator = has_discriminator(staging, card)
        model_id = _claim_id(ModelRegistry.of(ctx.storage), params, ctx.job.owner)
        version = register_version(
            ctx, model_id, staging, {"kind": "import", "filename": params.filename}
        )
    if listing:
        ModelRegistry.of(ctx.storage).update_listing(model_id, listing)
    return Outcome(
        JobStatus.succeeded,
        {
            "model": model_id,
            "version": version.version,
            "model_ref": str(version.ref(model_id)),
            "model_digest": version.digest,
            "family": card["family"],
            "architecture": card["architecture"],
            "source": params.source,
            "discriminator": discriminator,
        },
    )
