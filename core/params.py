"""The parameters of each job kind, typed once: the gateway validates with them, the worker parses.

A job record's `params` is the JSON of one of these models (`PARAMS_OF_KIND`). The gateway
builds it from the request (its request bodies reuse these fields, so one definition decides
every bound: a seed lies in 0..2**32-1 everywhere); the worker reads it back with
`parse_params`, which tolerates keys that older records carried (storage paths that workers now
derive from the job id) and refuses wrong types and out-of-range values with a message naming the
field. Torch-free.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.families import FamilyName
from core.jobs import JobKind

MAX_SEED = 2**32 - 1
MAX_SAMPLES = 64


def random_seed() -> int:
    """A seed for a job that did not ask for one (recorded, so the job can be repeated)."""
    return secrets.randbelow(MAX_SEED + 1)


SEED = Field(
    default=None,
    ge=0,
    le=MAX_SEED,
    description="Seed of the random draw (0 to 2**32-1); a random one is chosen and recorded "
    "if omitted.",
)
CLASS_LABEL = Field(
    default=None, ge=0, description="Class of every image (class-conditional models only)."
)


class JobParams(BaseModel):
    """Common to every kind: stored records may hold keys of older versions, which are ignored."""

    model_config = ConfigDict(extra="ignore")


TranslationMode = Literal["native", "resize"]


class TranslationParams(JobParams):
    """A translation: the dropout seed, the resolution mode, and the stored upload's size
    (informational)."""

    seed: int | None = SEED
    mode: TranslationMode = Field(
        default="native",
        description="native: the generator runs at the image's own resolution (tiled above "
        "GANSERVE_MAX_TILE_PIXELS); resize: the image is squeezed to the model's square size "
        "and the output stretched back.",
    )
    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)


class SampleParams(JobParams):
    """A sampling job: how many images, from which seed, of which class, how truncated."""

    count: int = Field(default=1, ge=1, le=MAX_SAMPLES, description="How many images (1-64).")
    seed: int | None = SEED
    class_label: int | None = CLASS_LABEL
    truncation: float | None = Field(
        default=None, gt=0, description="Truncation of the latent draw (smaller: less varied)."
    )


class InspectionParams(JobParams):
    """A realness map: the stored image (and the pix2pix input it translates) as paths under
    the storage root, its size, the class to judge it as, and the job whose result it is."""

    image: str
    input: str | None = None
    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)
    class_label: int | None = CLASS_LABEL
    source_job: str | None = None
    source_image: int | None = Field(default=None, ge=0)


class TrainingParams(JobParams):
    """A training run: family, dataset, the registered model's name, config overrides."""

    family: FamilyName
    dataset: str
    dataset_kind: str | None = None
    name: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    background: bool = False
    init_from: str | None = None  # a model id: start from its generator (and discriminator)


ImportSource = Literal["folder", "reference"]


class ImportParams(JobParams):
    """A model import: what was uploaded (`core.model_import` names the files in the job's
    upload folder), the id to register it under, and the name and description it is listed with.
    `id_given`: the caller chose the id (taken meanwhile -> the job fails); else the worker
    takes the next free `<id>-2`, `<id>-3`, ..."""

    source: ImportSource
    model_id: str
    id_given: bool = False
    filename: str | None = None
    discriminator: bool = False  # reference import: a `*_net_D.pth` came with it
    name: str | None = None
    description: str | None = None


ExportFormat = Literal["onnx"]


class ExportParams(JobParams):
    """An export of a model's generator to a file that runs outside ganserve."""

    format: ExportFormat = "onnx"


PARAMS_OF_KIND: dict[JobKind, type[JobParams]] = {
    JobKind.translation: TranslationParams,
    JobKind.sample: SampleParams,
    JobKind.inspection: InspectionParams,
    JobKind.training: TrainingParams,
    JobKind.model_import: ImportParams,
    JobKind.model_export: ExportParams,
}


class InvalidParams(ValueError):
    """A job record's params that do not fit its kind; the message names the field."""


def parse_params(kind: JobKind, params: dict[str, Any]) -> JobParams:
    """The typed params of a job record, or InvalidParams naming the first bad field."""
    try:
        return PARAMS_OF_KIND[kind].model_validate(params)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ())) or "params"
        raise InvalidParams(f"{field}: {first.get('msg', 'invalid')}") from None
