"""The models the service can use, read from the model registry as plain JSON.

A model is an id with an owner and immutable versions (`core.model_registry`, in the object
store); each version is a model folder holding `config.json` and `model.safetensors`, and
`discriminator.safetensors` when it carries its trained discriminator (recorded under
`discriminator` in `config.json`), which realness maps (`POST /v1/inspections`) need. The gateway
never loads weights: it reads JSON only (`config.json`, read from the store), so it needs neither
torch nor the `models` package. A version's card is read once per content digest (which covers
the card and the weights) and kept; the model's record and the version's marker are read at
every request, so a deleted model or version is unknown at once. A request names `<id>` (the
newest version) or `<id>@<n>`; what it resolves to carries the pinned `ref` and the version's
content `digest`, which the job records. A model whose card cannot be read is skipped (and
logged), never failing the list; its owner or an operator can still delete it.

A model's owner is its record's (`model.json`), fixed for its life; a caller sees the models
`service.security.Caller.sees` allows, and any other id is unknown to it (404). The name and
description a user gave it (`PATCH /v1/models/{id}`) are the record's listing. What a model was
trained on (`run`, `dataset`) comes from the version's registration record, which only the
service writes, never from an uploaded card.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

from pydantic import BaseModel, Field

from core.families import FAMILIES, Capability, capable_titles
from core.model_folder import (
    CONFIG_FILE,
    DISCRIMINATOR_FILE,
    DISCRIMINATOR_KEY,
    ModelFolderError,
    check_card_json,
    parse_card,
)
from core.model_registry import (
    ModelMissing,
    ModelRecord,
    ModelRef,
    ModelRegistry,
    VersionRecord,
    parse_ref,
)
from core.public_jobs import iso_time
from core.storage import SAFE_ID, Storage
from core.usage import dataset_owner
from service.errors import ApiError
from service.examples import example_sources
from service.security import Caller

log = logging.getLogger(__name__)


class VersionInfo(BaseModel):
    """One immutable version of a model."""

    version: int
    ref: str  # `<id>@<version>`: what a request names to pin it
    digest: str  # sha256 of its files, as jobs record it
    created_at: str
    run: str | None = None  # the training run that registered it
    step: int | None = None  # the run's step it was registered at (checkpoints)
    source: str = "installed"  # training, import, installed


class ModelInfo(BaseModel):
    """What the API says about one model (at its newest version, or the version asked for)."""

    id: str
    version: int  # the version described
    ref: str  # `<id>@<version>`
    digest: str  # the version's content digest
    name: str
    description: str = ""
    family: str
    task: str
    architecture: str
    image_size: int
    channels: int
    classes: list[str]  # class k's name (a dataset's `classes`); [] when unconditional
    class_count: int  # len(classes): class labels run from 0 to class_count - 1
    latent_dim: int | None = None  # sampling models: the length of a latent vector
    metrics: dict[str, Any]
    run: str | None
    created_at: str
    discriminator: bool
    dataset: str | None = None  # id of the dataset it was trained on, when known
    direction: str = "AtoB"  # translation models: which side of a pair is the input
    examples: int = 0  # translation models: example inputs at /v1/models/{id}/examples/{k}
    shared: bool = True  # offered to every key (demo and operator-installed models)
    versions: list[VersionInfo] | None = None  # GET /v1/models/{id}: every version, oldest first
    owner: str | None = Field(default=None, exclude=True)  # never shown
    training_job: str | None = Field(default=None, exclude=True)  # the run that registers it
    prefix: str = Field(exclude=True)  # the key prefix of the version's files (never shown)


def class_names(card: dict[str, Any]) -> list[str]:
    """A card's class names: those its training run recorded (the dataset's class folders), or
    the labels' numbers for a model saved without them."""
    count = int(card["num_classes"])
    recorded = (card.get("provenance") or {}).get("class_names")
    if isinstance(recorded, list) and len(recorded) == count:
        return [str(name) for name in recorded]
    return [str(k) for k in range(count)]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _latent_dim(card: dict[str, Any]) -> int | None:
    value = (card.get("config") or {}).get("latent_dim")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _finite_metrics(metrics: Any) -> dict[str, Any]:
    """The card's metrics that JSON can carry (numbers finite, keys text), others dropped."""
    if not isinstance(metrics, dict):
        return {}
    kept: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if isinstance(value, str | int | float | bool) or value is None:
            kept[str(key)] = value
    return kept


def _source(version: VersionRecord, card: dict[str, Any], flat: bool) -> dict[str, Any]:
    """What registered the version: its registration record, or for a flat folder (installed
    by an operator, or registered before versions) its card's provenance."""
    if not flat:
        return version.source
    provenance = card.get("provenance")
    return provenance if isinstance(provenance, dict) else {}


def _version_info(model_id: str, version: VersionRecord, digest: str) -> VersionInfo:
    source = version.source
    step = source.get("step")
    return VersionInfo(
        version=version.version,
        ref=str(version.ref(model_id)),
        digest=digest,
        created_at=iso_time(version.created) or "",
        run=_text(source.get("run")),
        step=step if isinstance(step, int) and not isinstance(step, bool) else None,
        source=_text(source.get("kind")) or "installed",
    )


def read_card(registry: ModelRegistry, version: VersionRecord) -> dict[str, Any]:
    """The checked card (`config.json`) of a stored version; ModelFolderError saying why not."""
    data = registry.objects.read(version.key(CONFIG_FILE))
    if data is None:
        raise ModelFolderError(f"the model version has no {CONFIG_FILE}")
    return check_card_json(parse_card(data), CONFIG_FILE)


def version_card(storage: Storage, info: ModelInfo) -> dict[str, Any]:
    """The checked card of the version `info` describes, read again from the store;
    ModelFolderError when it cannot be read (the version was deleted meanwhile)."""
    data = storage.objects.read(f"{info.prefix}/{CONFIG_FILE}")
    if data is None:
        raise ModelFolderError(f"the model version has no {CONFIG_FILE}")
    return check_card_json(parse_card(data), CONFIG_FILE)


def _has_discriminator(registry: ModelRegistry, version: VersionRecord, card: dict) -> bool:
    """Whether the version carries a discriminator: the card's entry and the weights file."""
    listed = isinstance(card.get(DISCRIMINATOR_KEY), dict)
    return listed and registry.objects.exists(version.key(DISCRIMINATOR_FILE))


_CARDS: dict[str, tuple[dict[str, Any], bool]] = {}
_CARDS_LOCK = threading.Lock()
MAX_CACHED_CARDS = 256


def _card_and_discriminator(
    registry: ModelRegistry, version: VersionRecord, digest: str
) -> tuple[dict[str, Any], bool]:
    """The checked card of a version with the content `digest`, and whether it carries a
    discriminator; read once per digest. The digest covers the card and both weights files
    (`core.model_registry`), so it names their content: what is kept for it never goes stale."""
    with _CARDS_LOCK:
        cached = _CARDS.get(digest)
    if cached is None:
        card = read_card(registry, version)
        cached = (card, _has_discriminator(registry, version, card))
        with _CARDS_LOCK:
            if len(_CARDS) >= MAX_CACHED_CARDS:
                del _CARDS[next(iter(_CARDS))]  # the oldest
            _CARDS[digest] = cached
    return cached


def _describe(
    storage: Storage,
    registry: ModelRegistry,
    record: ModelRecord,
    version: VersionRecord,
    *,
    examples: bool = True,
) -> ModelInfo | None:
    """The model at `version`, or None (logged) when its card cannot be read; `examples`:
    count its example inputs (a listing of its dataset, which a job does not need)."""
    try:
        digest = registry.version_digest(version)
        card, discriminator = _card_and_discriminator(registry, version, digest)
        source = _source(version, card, record.flat)
        run = source.get("run")
        dataset = _text(source.get("dataset"))
        training = source.get("training")
        direction = training.get("direction", "AtoB") if isinstance(training, dict) else "AtoB"
        direction = direction if direction in ("AtoB", "BtoA") else "AtoB"
        dataset = dataset if dataset is not None and SAFE_ID.match(dataset) else None
        # a flat folder's card is only its word: it names a dataset of the model's owner, or none
        if record.flat and dataset and dataset_owner(storage.objects, dataset) != record.owner:
            dataset = None
        count = 0
        if examples and dataset is not None and card["task"] == "translate":
            count = len(example_sources(storage.objects, dataset, direction))
        provenance_name = _text((card.get("provenance") or {}).get("name")) if record.flat else None
        return ModelInfo(
            id=record.id,
            version=version.version,
            ref=str(version.ref(record.id)),
            digest=digest,
            name=_text(record.listing.get("name")) or provenance_name or record.id,
            description=_text(record.listing.get("description")) or "",
            family=str(card["family"]),
            task=str(card["task"]),
            architecture=str(card["architecture"]),
            image_size=int(card["image_size"]),
            channels=int(card["channels"]),
            classes=class_names(card),
            class_count=int(card["num_classes"]),
            latent_dim=_latent_dim(card),
            metrics=_finite_metrics(card.get("metrics")),
            run=str(run) if isinstance(run, str) else None,
            created_at=iso_time(version.created) or "",
            discriminator=discriminator,
            dataset=dataset,
            direction=str(direction),
            examples=count,
            owner=record.owner,
            training_job=record.training_job,
            prefix=version.prefix,
        )
    except (OSError, ValueError, TypeError, KeyError, OverflowError) as exc:
        log.warning("skipping model %s version %s: %s", record.id, version.version, exc)
        return None


def resolve_model(
    storage: Storage,
    ref: ModelRef,
    caller: Caller | None = None,
    *,
    all_versions: bool = False,
    examples: bool = True,
) -> ModelInfo | None:
    """The model version `ref` names, or None when there is none (or, given a `caller`, none it
    may see); `all_versions` lists the model's versions too; `examples`: count its example
    inputs (else `examples` is 0)."""
    registry = ModelRegistry.of(storage)
    try:
        record, version = registry.resolve(ref)
    except (ModelMissing, OSError):
        return None
    if caller is not None and not caller.sees(record.owner):
        return None
    info = _describe(storage, registry, record, version, examples=examples)
    if info is None:
        return None
    if caller is not None:
        info.shared = record.owner is None or record.owner in caller.shared_owners
    if all_versions:
        info.versions = [
            _version_info(record.id, v, registry.version_digest(v))
            for v in registry.versions(record.id)
        ]
    return info


def read_model(
    storage: Storage, model_id: str, caller: Caller | None = None, *, examples: bool = True
) -> ModelInfo | None:
    """The newest version of the model `model_id` (`<id>` or `<id>@<n>`), or None."""
    ref = parse_ref(model_id)
    return None if ref is None else resolve_model(storage, ref, caller, examples=examples)


def list_models(storage: Storage, caller: Caller | None = None) -> list[ModelInfo]:
    """Every usable model (that `caller` may see) at its newest version, sorted by id; a model
    whose folder cannot be read is skipped."""
    found = []
    for model_id in ModelRegistry.of(storage).ids():
        info = resolve_model(storage, ModelRef(model_id), caller)
        if info is not None:
            found.append(info)
    return found


def record_for(storage: Storage, model_id: str, caller: Caller) -> ModelRecord:
    """The record of a model the caller may see, even when no version of it can be read (so
    its owner can still delete it); 404 `model_not_found` otherwise."""
    ref = parse_ref(model_id)
    record = None if ref is None else ModelRegistry.of(storage).record(ref.id)
    if record is None or record.deleted or not caller.sees(record.owner):
        raise ApiError(404, "model_not_found", f"There is no model {model_id!r}.")
    return record


def find_model(
    storage: Storage, model_id: str, caller: Caller, *, examples: bool = True
) -> ModelInfo:
    """A model version the caller may see (`<id>`: the newest; `<id>@<n>`: that one); 404
    `model_not_found` for unknown ids, versions and others' models. `examples`: count its
    example inputs (else `examples` is 0)."""
    info = read_model(storage, model_id, caller, examples=examples)
    if info is None:
        raise ApiError(404, "model_not_found", f"There is no model {model_id!r}.")
    return info


def require_model(storage: Storage, model_id: str, task: str, caller: Caller) -> ModelInfo:
    """The model for a job: 404 `model_not_found`, 422 `wrong_model_task` if it cannot do `task`
    (its example inputs are not counted: `examples` is 0)."""
    info = find_model(storage, model_id, caller, examples=False)
    if info.task != task:
        raise ApiError(
            422,
            "wrong_model_task",
            f"The model {model_id!r} is a {info.family} model for {info.task!r}, not {task!r}.",
        )
    return info


def capable(info: ModelInfo, capability: Capability) -> bool:
    """Whether the model's family has the capability flag (`core.families`); a family this
    server lacks has none."""
    family = FAMILIES.get(info.family)
    return family is not None and getattr(family, capability)


def require_capable(info: ModelInfo, capability: Capability, purpose: str) -> None:
    """422 `not_<capability>` unless the model's family has the capability flag; `purpose` says
    what it takes (`... which cannot <purpose>`)."""
    if not capable(info, capability):
        raise ApiError(
            422,
            f"not_{capability}",
            f"The model {info.id!r} is a {info.family} model, which cannot {purpose}. Use a "
            f"{capable_titles(capability)} model.",
        )


def require_inspectable(storage: Storage, model_id: str, caller: Caller) -> ModelInfo:
    """A model whose discriminator can draw a realness map: 404 `model_not_found`, 422
    `not_inspectable` (a family that is not `inspectable`: Progressive GAN), 409
    `no_discriminator` (no trained D in its folder)."""
    info = find_model(storage, model_id, caller, examples=False)
    if not capable(info, "inspectable"):
        raise ApiError(
            422,
            "not_inspectable",
            f"The model {model_id!r} is a {info.family} model: its discriminator draws no "
            f"realness map. Use a {capable_titles('inspectable')} model.",
        )
    require_discriminator(info, "inspect with it")
    return info


def require_discriminator(info: ModelInfo, purpose: str) -> None:
    """409 `no_discriminator` when the model's folder carries no trained discriminator."""
    if not info.discriminator:
        raise ApiError(
            409,
            "no_discriminator",
            f"The model {info.id!r} has no trained discriminator in its folder, which is needed "
            f"to {purpose}; models trained by this service save theirs, so train it again.",
        )


def check_class_label(info: ModelInfo, class_label: int | None) -> None:
    """422 `invalid_field` unless `class_label` is None or a class of a conditional model."""
    if class_label is None:
        return
    if info.class_count == 0:
        raise ApiError(
            422,
            "invalid_field",
            f"The field 'class_label' is not allowed: the model {info.id!r} is unconditional.",
        )
    if not 0 <= class_label < info.class_count:
        raise ApiError(
            422,
            "invalid_field",
            f"The field 'class_label' must be from 0 to {info.class_count - 1}, the classes of the "
            f"model {info.id!r}.",
        )
