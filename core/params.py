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
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from core.families import FamilyName
from core.jobs import JobKind

# Every number a job takes is bounded here; the gateway's request bodies and forms reuse these
# fields and constants (docs/api/limits.md).
MAX_SEED = 2**32 - 1
MAX_SAMPLES = 64
MAX_LATENT_DIM = 4096
# Latent values: the generators are trained on N(0, 1) latents (|z| > 6 has probability 2e-9);
# 100 leaves room for extrapolating along a direction while refusing values whose activations
# overflow (bf16/fp16) or make every pixel saturate.
MAX_LATENT_ABS = 100.0
MIN_FRAMES, MAX_FRAMES = 2, 120
MAX_FPS = 50
# The most latents a job keeps (a sample's images, an interpolation's frames): indices below it.
MAX_KEPT_LATENTS = max(MAX_SAMPLES, MAX_FRAMES)
DEFAULT_PROJECTION_STEPS = 300  # the digits demo, class search and D loss: about 15 s on 2 cores
MAX_PROJECTION_STEPS = 5000
# Truncation (BigGAN's truncation trick, Brock et al. 2019): every latent entry is drawn from
# N(0, 1) restricted to [-t, t]. BigGAN's Figure 2 goes from 2 down to 0.04; below 0.02 every
# latent is (nearly) the zero vector, so every image is the same; above 4 less than 0.007 % of
# the entries would be redrawn: no truncation at all in effect.
MIN_TRUNCATION, MAX_TRUNCATION = 0.02, 4.0
MAX_CLASSES = 100_000  # a class label lies in 0..MAX_CLASSES - 1 (and below the model's count)
MAX_CLASS_LABEL = MAX_CLASSES - 1
# A stored upload's width or height: PNG's own largest; what bounds an upload is its width x
# height, GANSERVE_MAX_IMAGE_PIXELS (a setting), checked before it is stored.
MAX_IMAGE_SIDE = 2**31 - 1
# Discriminator-guided sampling: the most candidates a filter draws (top: count / keep, DRS:
# burn-in, and after it), so the smallest `keep` lets the most images be kept.
MAX_FILTER_CANDIDATES = 16_384
MIN_KEEP = MAX_SAMPLES / MAX_FILTER_CANDIDATES  # 1/256: 64 images from 16384 candidates
MAX_BURN_IN = 4096
MIN_BURN_IN = 8
MAX_PIXEL_WEIGHT = 10.0
# The filters' defaults (`models.discriminator_filter` uses the same): keep half of the
# candidates; DRS (Azadi et al., ICLR 2019) calibrates on 256 candidates, sets gamma at the
# 95th percentile of F (their section 3.2) and draws at most 2048 more.
DEFAULT_KEEP = 0.5
DEFAULT_BURN_IN = 256
DEFAULT_PERCENTILE = 95.0
DEFAULT_MAX_CANDIDATES = 2048
# Result images (translations, samples): PNG by default (lossless, what every older record
# holds); WebP and JPEG at a quality of 1..100, 90 unless asked (docs/api/translations-samples.md).
ResultFormat = Literal["png", "webp", "jpeg"]
LOSSY_FORMATS = ("webp", "jpeg")
MIN_QUALITY, MAX_QUALITY = 1, 100
DEFAULT_QUALITY = 90


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
    default=None,
    ge=0,
    le=MAX_CLASS_LABEL,
    description="Class of every image (class-conditional models only).",
)
TRUNCATION = Field(
    default=None,
    ge=MIN_TRUNCATION,
    le=MAX_TRUNCATION,
    allow_inf_nan=False,
    description=f"Truncation of the latent draw, {MIN_TRUNCATION} to {MAX_TRUNCATION} "
    "(smaller: less varied; BigGAN's truncation trick).",
)
WIDTH = Field(default=None, ge=1, le=MAX_IMAGE_SIDE)
HEIGHT = Field(default=None, ge=1, le=MAX_IMAGE_SIDE)
ClassLabel = Annotated[int, Field(ge=0, le=MAX_CLASS_LABEL)]
KeptIndex = Annotated[int, Field(ge=0, lt=MAX_KEPT_LATENTS)]


class JobParams(BaseModel):
    """Common to every kind: stored records may hold keys of older versions, which are ignored."""

    model_config = ConfigDict(extra="ignore")


TranslationMode = Literal["native", "resize"]


def quality_error(format: str | None, quality: int | None) -> str | None:
    """Why `quality` does not go with `format` (None when it does): only a lossy format has a
    quality."""
    if quality is not None and (format or "png") not in LOSSY_FORMATS:
        return "quality is for webp and jpeg; png is lossless (leave quality out)"
    return None


class ResultImageParams(JobParams):
    """How a job's result images are encoded: `format`, and `quality` for the lossy ones."""

    format: ResultFormat | None = Field(
        default=None,
        description="Format of the result images: png (lossless; the default, also when "
        "absent or null), webp or jpeg (smaller, lossy, at `quality`).",
    )
    quality: int | None = Field(
        default=None,
        ge=MIN_QUALITY,
        le=MAX_QUALITY,
        description=f"Quality of webp and jpeg results, {MIN_QUALITY}-{MAX_QUALITY} (higher: "
        f"larger, closer to the PNG); {DEFAULT_QUALITY} if omitted. Not for png.",
    )

    @field_validator("quality")
    @classmethod
    def _lossy_only(cls, quality: int | None, info: ValidationInfo) -> int | None:
        if "format" in info.data and (error := quality_error(info.data["format"], quality)):
            raise PydanticCustomError("quality_not_lossy", error)
        return quality

    def encoding(self) -> tuple[str, int | None]:
        """The result images' format and quality as they are written (None for png)."""
        format = self.format or "png"
        if format not in LOSSY_FORMATS:
            return format, None
        return format, DEFAULT_QUALITY if self.quality is None else self.quality


class TranslationParams(ResultImageParams):
    """A translation: the dropout seed, the resolution mode, and the stored upload's size
    (informational)."""

    seed: int | None = SEED
    mode: TranslationMode = Field(
        default="native",
        description="native: the generator runs at the image's own resolution (tiled above "
        "GANSERVE_MAX_TILE_PIXELS); resize: the image is squeezed to the model's square size "
        "and the output stretched back.",
    )
    width: int | None = WIDTH
    height: int | None = HEIGHT


# A latent vector: finite numbers within +-MAX_LATENT_ABS (a 422 names the entry: `latents.0.3`).
Latent = Annotated[
    list[Annotated[float, Field(ge=-MAX_LATENT_ABS, le=MAX_LATENT_ABS, allow_inf_nan=False)]],
    Field(min_length=1, max_length=MAX_LATENT_DIM),
]


class LatentsOfJob(BaseModel):
    """Latents an earlier sample, interpolation or projection job kept (its `latents.npy`)."""

    model_config = ConfigDict(extra="forbid")

    job: str = Field(description="Id of an earlier sample, interpolation or projection job.")
    indices: list[KeptIndex] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SAMPLES,
        description="Which of its latents (its image indices, from 0); all of them if omitted.",
    )


def _latents_tag(value: Any) -> str:
    return "list" if isinstance(value, list) else "job"


# Tagged, so an error names the field the way the caller wrote it (`latents.0.3`).
LatentsSource = Annotated[
    Annotated[list[Latent], Tag("list")] | Annotated[LatentsOfJob, Tag("job")],
    Discriminator(_latents_tag),
]


class TopFilter(BaseModel):
    """Keep the most real: draw count/keep candidates, keep the `count` that the model's
    discriminator scores most real."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["top"]
    keep: float = Field(
        default=DEFAULT_KEEP,
        ge=MIN_KEEP,
        le=1,
        allow_inf_nan=False,
        description=f"Share of the candidates kept (count/keep drawn, at most "
        f"{MAX_FILTER_CANDIDATES}): {MIN_KEEP} to 1.",
    )
    pixel_weight: float = Field(
        default=0.0,
        ge=0,
        le=MAX_PIXEL_WEIGHT,
        allow_inf_nan=False,
        description="U-Net GAN: weight of the mean per-pixel logit added to the global one.",
    )


class DrsFilter(BaseModel):
    """Discriminator Rejection Sampling (Azadi et al., ICLR 2019): candidates accepted with a
    probability from the discriminator's logit, calibrated on a burn-in batch."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["drs"]
    burn_in: int = Field(
        default=DEFAULT_BURN_IN,
        ge=MIN_BURN_IN,
        le=MAX_BURN_IN,
        description="Candidates scored to calibrate (max logit).",
    )
    percentile: float = Field(
        default=DEFAULT_PERCENTILE,
        ge=0,
        le=100,
        allow_inf_nan=False,
        description="gamma: this percentile of F(x) on the burn-in batch (higher: stricter).",
    )
    max_candidates: int = Field(
        default=DEFAULT_MAX_CANDIDATES,
        ge=1,
        le=MAX_FILTER_CANDIDATES,
        description="Most candidates drawn after the burn-in; short of `count` accepted, the "
        "best rejected ones fill up (the result says so).",
    )


SampleFilter = Annotated[TopFilter | DrsFilter, Field(discriminator="method")]


class SampleParams(ResultImageParams):
    """A sampling job: how many images, from which seed (or which latents), of which class, how
    truncated, how a discriminator filters them, and how its images are encoded."""

    count: int = Field(default=1, ge=1, le=MAX_SAMPLES, description="How many images (1-64).")
    seed: int | None = SEED
    class_label: int | None = CLASS_LABEL
    truncation: float | None = TRUNCATION
    latents: LatentsSource | None = Field(
        default=None,
        description="Draw these latents instead of a seed's: a list of vectors of the model's "
        "latent_dim (finite numbers), or an earlier job's latents by its id and indices. The "
        "same latent gives the same image, bit for bit on the CPU.",
    )
    class_labels: list[ClassLabel] | None = Field(
        default=None,
        max_length=MAX_SAMPLES,
        description="With `latents`, for class-conditional models: one class per latent.",
    )
    filter: SampleFilter | None = Field(
        default=None,
        description="Discriminator-guided sampling: {'method': 'top', 'keep': 0.5} or "
        "{'method': 'drs'} (needs the model's discriminator).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> SampleParams:
        if self.latents is None:
            if self.class_labels is not None:
                raise ValueError("class_labels go with latents; use class_label for a seed's draw")
            return self
        for field in ("seed", "truncation", "filter"):
            if getattr(self, field) is not None:
                raise ValueError(f"{field} shapes a random draw; it does not go with given latents")
        if self.class_label is not None and self.class_labels is not None:
            raise ValueError("give class_label (one for all) or class_labels, not both")
        if isinstance(self.latents, list):
            if not self.latents:
                raise ValueError("latents must hold at least one vector")
            if len(self.latents) > MAX_SAMPLES:
                raise ValueError(f"at most {MAX_SAMPLES} latents per job")
            if len({len(z) for z in self.latents}) > 1:
                raise ValueError("every latent must have the same length")
        return self


class LatentEndpoint(BaseModel):
    """One end of an interpolation: a seed's first latent, a vector, or an earlier job's latent."""

    model_config = ConfigDict(extra="forbid")

    seed: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SEED,
        description="The latent of image 0 of a sample job with this seed (and truncation).",
    )
    latent: Latent | None = Field(default=None, description="A vector of latent_dim numbers.")
    job: str | None = Field(
        default=None, description="An earlier sample, interpolation or projection job."
    )
    index: int = Field(
        default=0, ge=0, lt=MAX_KEPT_LATENTS, description="Which latent of `job`, from 0."
    )
    class_label: int | None = Field(
        default=None,
        ge=0,
        le=MAX_CLASS_LABEL,
        description="Class-conditional models: the class at this end (default: the seed's or "
        "the job's class; required with a vector).",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> LatentEndpoint:
        given = [f for f in ("seed", "latent", "job") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of seed, latent or job")
        return self


class InterpolationParams(JobParams):
    """Frames along a path between two latents (and, for conditional models, two classes)."""

    start: LatentEndpoint
    end: LatentEndpoint
    frames: int = Field(default=16, ge=MIN_FRAMES, le=MAX_FRAMES, description="Frames (2-120).")
    path: Literal["slerp", "linear"] = Field(
        default="slerp",
        description="slerp: along the great circle (for Gaussian latents); linear: straight.",
    )
    truncation: float | None = TRUNCATION  # of seed endpoints
    fps: int = Field(
        default=12, ge=1, le=MAX_FPS, description="Frames per second of the animation (1-50)."
    )


class ProjectionParams(JobParams):
    """A projection: the stored upload (a path under the storage root), its size, and how the
    latent is searched."""

    image: str
    width: int | None = WIDTH
    height: int | None = HEIGHT
    steps: int = Field(
        default=DEFAULT_PROJECTION_STEPS,
        ge=1,
        le=MAX_PROJECTION_STEPS,
        description="Optimisation steps (default 300: under a minute on a CPU for the demos).",
    )
    seed: int | None = SEED
    class_label: int | None = CLASS_LABEL
    discriminator_loss: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="The feature loss from the model's discriminator: auto uses it when the "
        "model folder carries one; on requires it (409 without); off never.",
    )


class InspectionParams(JobParams):
    """A realness map: the stored image (and the pix2pix input it translates) as paths under
    the storage root, its size, the class to judge it as, and the job whose result it is."""

    image: str
    input: str | None = None
    width: int | None = WIDTH
    height: int | None = HEIGHT
    class_label: int | None = CLASS_LABEL
    source_job: str | None = None
    source_image: int | None = Field(default=None, ge=0, lt=MAX_SAMPLES)


class TrainingParams(JobParams):
    """A training run: family, dataset, the registered model's name, config overrides."""

    family: FamilyName
    dataset: str
    dataset_kind: str | None = None
    name: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    background: bool = False
    init_from: str | None = None  # a model id: start from its generator (and discriminator)
    devices: int = Field(default=1, ge=1)  # > 1: under torchrun (workers.distributed_training)


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
    JobKind.interpolation: InterpolationParams,
    JobKind.projection: ProjectionParams,
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
