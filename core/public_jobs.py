"""A job as the API shows it (`public_job`: no owner, no storage paths), and its typed bodies:
what the job JSON holds in `params`, `result` and `progress_detail`, one model per job kind
(`core.jobs.JobKind`), joined in `AnyJob`, a union discriminated by `kind`. The gateway answers
with it; the workers' side will send it (webhooks), so it lives in `core`.

Each model describes what the server really sends: the result dict a worker records
(`workers.inference`, `workers.inspection`, `workers.interpolation`, `workers.projection`,
`workers.training_jobs`, `workers.model_import`, `workers.model_export`) after the gateway's
rewrite for clients (`_public_result`: `count` gives `images`, the URLs of the result
images; `latent_count` gives `latents_url`; `animation` becomes its URLs by format), the
`progress_detail` a worker reports, and the `params` the gateway recorded (`core.params`, without
the storage paths `INTERNAL_PARAMS`). A field a worker always writes is required; one
it writes only sometimes is optional with default None. A job that has not ended, or failed, has
no result (null); one cancelled while it ran has an empty result (`CancelledResult`), except a
training run, which says where it stopped (`TrainingCancelledResult`). Non-finite numbers are sent
as null (pydantic's JSON), so values that can be infinite or NaN in practice (a perfect
reconstruction's PSNR, a diverged training loss) are typed `float | None`.

Torch-free: imports `core` and pydantic.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.families import FamilyName
from core.jobs import Job, JobKind, JobStatus, animation_url, image_url, latents_url
from core.params import (
    DEFAULT_PROJECTION_STEPS,
    MAX_CLASS_LABEL,
    MAX_IMAGE_SIDE,
    MAX_PROJECTION_STEPS,
    MAX_QUALITY,
    MAX_SAMPLES,
    MAX_SEED,
    MIN_QUALITY,
    DrsFilter,
    ExportFormat,
    ExportParams,
    ImportParams,
    ImportSource,
    InterpolationParams,
    JobParams,
    LatentEndpoint,
    LatentsOfJob,
    ResultFormat,
    SampleParams,
    TopFilter,
    TrainingParams,
    TranslationParams,
)

# ---------------------------------------------------------------------------------------------
# Shared pieces

# How a result records the inference path (`workers.fast_path.FastPath.name`): the precision,
# with "+compile" when the network ran compiled (a tiled translation records the precision only).
Precision = Literal["fp32", "bf16", "fp32+compile", "bf16+compile"]


_PRECISION = "The arithmetic it ran in (null in records older than 2026-12-02)."


class JobError(BaseModel):
    """Why a job failed: a snake_case code and a sentence for a person."""

    code: str = Field(description="What went wrong, in snake_case.", examples=["model_not_found"])
    message: str = Field(
        description="What went wrong, as a sentence for a person.",
        examples=["There is no model 'digits@3'."],
    )


class CancelledResult(BaseModel):
    """The result of a job cancelled while it ran (every kind but training): an empty object."""

    # forbid: an empty object and nothing else, so that a result with fields is never taken
    # for this one (and the schema says `additionalProperties: false`)
    model_config = ConfigDict(extra="forbid")


class NoProgressDetail(BaseModel):
    """The progress detail of a job that reports none (yet): an empty object."""

    # forbid: as CancelledResult, an empty object and nothing else
    model_config = ConfigDict(extra="forbid")


class ImagesResult(BaseModel):
    """Result images: how many, and their URLs (`GET /v1/jobs/{id}/images/{k}`, PNG unless the
    result's `format` says otherwise)."""

    count: int = Field(ge=0, description="How many result images the job wrote.")
    images: list[str] = Field(
        description="URLs of the result images, in order (`/v1/jobs/{id}/images/{k}`; PNG "
        "unless the result's `format` says otherwise)."
    )


class EncodedImagesResult(ImagesResult):
    """Result images in the format the job asked for (translations, samples)."""

    format: ResultFormat | None = Field(
        default=None,
        description="Format of the result images: png, webp or jpeg (null in records written "
        "before result formats: png).",
    )
    quality: int | None = Field(
        default=None,
        ge=MIN_QUALITY,
        le=MAX_QUALITY,
        description="Quality the webp or jpeg images were encoded at; null for png.",
    )


class LatentsResult(BaseModel):
    """The latents a sample, interpolation or projection job keeps (`workers.latents`)."""

    latent_count: int = Field(ge=0, description="How many latents the job kept: one per image.")
    latent_dim: int = Field(ge=1, description="Numbers in each latent (the model's latent_dim).")
    class_labels: list[int] | None = Field(
        description="The class of each latent's image; null for unconditional models (and for "
        "an interpolation between two different classes, drawn with interpolated embeddings)."
    )
    latents: list[list[float]] | None = Field(
        default=None,
        description="The latents themselves (float32 values, exact), when they hold 4096 "
        "numbers or fewer; absent otherwise (read `latents_url`).",
    )
    latents_url: str = Field(
        description="URL of all the latents as a NumPy file (`latents.npy`, float32, "
        "(latent_count, latent_dim)); row k gives image k."
    )


# ---------------------------------------------------------------------------------------------
# translation


class TranslationJobParams(TranslationParams):
    """A translation's params as recorded: the dropout seed (chosen at submission when not
    given), the resolution mode and the upload's size."""

    width: int | None = Field(
        default=None, ge=1, le=MAX_IMAGE_SIDE, description="Width of the uploaded image (pixels)."
    )
    height: int | None = Field(
        default=None, ge=1, le=MAX_IMAGE_SIDE, description="Height of the uploaded image (pixels)."
    )


class TranslationResult(EncodedImagesResult):
    """A translation's result (`workers.inference.TranslationWork.finish`): one image of the
    input's size."""

    model: str = Field(description="The model version that translated, `<id>@<version>`.")
    seed: int = Field(ge=0, le=MAX_SEED, description="Seed of the dropout noise it ran with.")
    mode: Literal["native", "resize"] | None = Field(
        default=None,
        description="native: run at the image's own resolution; resize: squeezed to the model's "
        "size and stretched back (null in records written before the two modes).",
    )
    tiled: bool | None = Field(
        default=None,
        description="Whether the image was translated in tiles (native, large); null in "
        "records older than 2026-12-02.",
    )
    precision: Precision | None = Field(default=None, description=_PRECISION)
    width: int = Field(ge=1, description="Width of the output image (the input's).")
    height: int = Field(ge=1, description="Height of the output image (the input's).")


# ---------------------------------------------------------------------------------------------
# sample


class TopFilterReport(TopFilter):
    """What a `top` filter did: its settings, the candidates it drew and the kept scores."""

    model_config = ConfigDict(extra="ignore")  # a report, not a request: no refusal of keys

    method: Literal["top"] = Field(description="top: the most real candidates were kept.")
    candidates: int = Field(ge=1, description="Candidates drawn (ceil(count / keep)).")
    accepted: int = Field(ge=0, description="Candidates kept (the job's count).")
    scores: list[float] = Field(
        description="Discriminator logit of each kept image, in image order (4 decimals)."
    )


class DrsFilterReport(DrsFilter):
    """What a `drs` filter (Discriminator Rejection Sampling) did: its settings, the
    candidates, how many it accepted, and the calibration it ended with."""

    model_config = ConfigDict(extra="ignore")  # a report, not a request: no refusal of keys

    method: Literal["drs"] = Field(description="drs: Discriminator Rejection Sampling.")
    candidates: int = Field(ge=0, description="Candidates drawn, the burn-in included.")
    accepted: int = Field(ge=0, description="Candidates the rejection test accepted.")
    filled_up: bool = Field(
        description="Whether fewer than `count` were accepted and the best rejected ones "
        "filled the result up."
    )
    max_logit: float = Field(description="The largest discriminator logit seen (D~*_M).")
    gamma: float = Field(description="The acceptance shift gamma in effect at the end.")
    scores: list[float] = Field(
        description="Discriminator logit of each kept image, in image order (4 decimals)."
    )


FilterReport = Annotated[TopFilterReport | DrsFilterReport, Field(discriminator="method")]


class SampleResult(LatentsResult, EncodedImagesResult):
    """A sampling job's result (`workers.inference.SampleWork.finish`): `count` images and
    their latents."""

    model: str = Field(description="The model version that drew, `<id>@<version>`.")
    seed: int | None = Field(
        ge=0, le=MAX_SEED, description="Seed of the draw; null when given latents were drawn."
    )
    class_label: int | None = Field(
        ge=0,
        le=MAX_CLASS_LABEL,
        description="The one class asked for every image; null when none was (see "
        "`class_labels` for each image's).",
    )
    truncation: float | None = Field(description="Truncation of the draw; null for none.")
    precision: Precision | None = Field(default=None, description=_PRECISION)
    latents_from: LatentsOfJob | None = Field(
        default=None,
        description="The earlier job whose kept latents were drawn, and which of them; absent "
        "unless the job drew another job's latents.",
    )
    filter: FilterReport | None = Field(
        default=None,
        description="What the discriminator filter did; absent unless the job was filtered.",
    )


# ---------------------------------------------------------------------------------------------
# inspection


class InspectionJobParams(JobParams):
    """An inspection's params as clients see them (the stored image paths are left out)."""

    width: int | None = Field(
        default=None, ge=1, le=MAX_IMAGE_SIDE, description="Width of the inspected image (pixels)."
    )
    height: int | None = Field(
        default=None,
        ge=1,
        le=MAX_IMAGE_SIDE,
        description="Height of the inspected image (pixels).",
    )
    class_label: int | None = Field(
        default=None,
        ge=0,
        le=MAX_CLASS_LABEL,
        description="The class the image is judged as (asked for, or a source sample's class); "
        "absent: the class under which the discriminator finds it most real.",
    )
    source_job: str | None = Field(
        default=None, description="The earlier job whose result image is inspected, if any."
    )
    source_image: int | None = Field(
        default=None, ge=0, lt=MAX_SAMPLES, description="Which result image of `source_job`."
    )


class InspectionResult(ImagesResult):
    """An inspection's result (`workers.inspection.InspectionWork.finish`): image 0 is the
    realness map (grey, white = real), image 1 the map over the image with a legend."""

    model: str = Field(description="The model version whose discriminator judged.")
    global_score: float | None = Field(
        description="U-Net GAN: the encoder's realness of the whole image (0-1); null for "
        "pix2pix (PatchGAN scores patches only)."
    )
    map_mean: float = Field(description="Mean of the realness map (0-1, 1 = looks real).")
    map_min: float = Field(description="Minimum of the realness map (0-1).")
    least_real_box: list[int] = Field(
        min_length=4,
        max_length=4,
        description="The least real region, [x0, y0, x1, y1] in the image's pixels (x1, y1 "
        "exclusive).",
    )
    class_label: int | None = Field(
        description="The class it was judged as (class-conditional U-Net GAN); else null."
    )


# ---------------------------------------------------------------------------------------------
# interpolation


class InterpolationJobParams(InterpolationParams):
    """An interpolation's params as recorded (a job endpoint's class filled in)."""

    start: LatentEndpoint = Field(description="The first frame's latent (and class).")
    end: LatentEndpoint = Field(description="The last frame's latent (and class).")


class AnimationUrls(BaseModel):
    """URLs of an interpolation's frames as looping animations."""

    webp: str = Field(description="Animated WebP, lossless (`/v1/jobs/{id}/animation.webp`).")
    gif: str = Field(description="Animated GIF (`/v1/jobs/{id}/animation.gif`).")


class InterpolationResult(LatentsResult, ImagesResult):
    """An interpolation's result (`workers.interpolation.InterpolationWork.finish`): the frames
    as images, animations and latents."""

    model: str = Field(description="The model version that drew, `<id>@<version>`.")
    frames: int = Field(ge=1, description="How many frames (the same as `count`).")
    path: Literal["slerp", "linear"] = Field(description="How the latents were interpolated.")
    fps: int = Field(ge=1, description="Frames per second of the animations.")
    truncation: float | None = Field(description="Truncation of seed endpoints; null for none.")
    start_class: int | None = Field(
        description="The first frame's class (class-conditional models); else null."
    )
    end_class: int | None = Field(
        description="The last frame's class (class-conditional models); else null."
    )
    animation: AnimationUrls = Field(description="The frames as animations, by format.")
    precision: Precision | None = Field(default=None, description=_PRECISION)


# ---------------------------------------------------------------------------------------------
# projection


class ProjectionJobParams(JobParams):
    """A projection's params as clients see them (the stored image's path is left out)."""

    width: int | None = Field(
        default=None, ge=1, le=MAX_IMAGE_SIDE, description="Width of the uploaded image (pixels)."
    )
    height: int | None = Field(
        default=None,
        ge=1,
        le=MAX_IMAGE_SIDE,
        description="Height of the uploaded image (pixels).",
    )
    steps: int = Field(
        default=DEFAULT_PROJECTION_STEPS,
        ge=1,
        le=MAX_PROJECTION_STEPS,
        description="Optimisation steps.",
    )
    seed: int | None = Field(
        default=None, ge=0, le=MAX_SEED, description="Seed of the starting latent."
    )
    class_label: int | None = Field(
        default=None,
        ge=0,
        le=MAX_CLASS_LABEL,
        description="The class projected into; absent: every class is tried first and the "
        "best kept (class-conditional models).",
    )
    discriminator_loss: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Whether the discriminator's feature loss was asked for (auto: when the "
        "model carries one).",
    )


class ProjectionProgress(BaseModel):
    """A running projection's latest report (`workers.projection.run_projection`)."""

    step: int = Field(ge=0, description="Optimisation steps done.")
    total: int = Field(ge=1, description="Optimisation steps in all.")
    loss: float = Field(description="The loss at this step (6 decimals).")
    psnr: float | None = Field(
        description="PSNR (dB) of the current reconstruction against the target (3 decimals); "
        "null when infinite (identical)."
    )
    class_label: int | None = Field(
        description="The class being projected into (class-conditional models); else null."
    )


class ProjectionResult(LatentsResult, ImagesResult):
    """A projection's result (`workers.projection.run_projection`): image 0 the found latent's
    image, image 1 the target as the model sees it."""

    model: str = Field(description="The model version projected into, `<id>@<version>`.")
    seed: int = Field(ge=0, le=MAX_SEED, description="Seed of the starting latent.")
    steps: int = Field(ge=1, description="Optimisation steps run.")
    class_label: int | None = Field(
        description="The class found or asked for (class-conditional models); else null."
    )
    discriminator_loss: bool = Field(
        description="Whether the discriminator's feature loss was used."
    )
    loss: float = Field(description="The final loss (6 decimals).")
    start_loss: float = Field(description="The loss at the start (6 decimals).")
    psnr: float | None = Field(
        description="PSNR (dB) of image 0 against the target (3 decimals); null when infinite "
        "(identical)."
    )
    ssim: float = Field(description="SSIM of image 0 against the target (4 decimals).")
    precision: Precision = Field(description="The arithmetic the final image was drawn in.")
    latent: list[float] = Field(
        description="The found latent (latent_dim numbers); a sample job given it redraws image 0."
    )


# ---------------------------------------------------------------------------------------------
# training


class TrainingJobParams(TrainingParams):
    """A training run's params as recorded."""

    family: FamilyName = Field(description="The model family trained.")
    dataset: str = Field(description="Id of the dataset trained on.")
    dataset_kind: str | None = Field(
        default=None, description="That dataset's kind (paired, labeled, images) at submission."
    )
    name: str | None = Field(
        default=None, description="The run's name, from which the model's id is made."
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="Training option overrides by name, as given."
    )
    background: bool = Field(
        default=False,
        description="Whether the run trains in the background (registers at every checkpoint "
        "and yields to waiting runs).",
    )
    init_from: str | None = Field(
        default=None,
        description="Fine-tune: the model version `<id>@<version>` it starts from; absent for "
        "a fresh run.",
    )
    devices: int = Field(
        default=1,
        ge=1,
        description="Devices it trains on at once (more than 1: under torchrun, on GPUs of "
        "the training worker's host or in as many CPU processes).",
    )


class TrainingProgress(BaseModel):
    """A training run's latest report (`workers.training_jobs._progress_detail`)."""

    step: int = Field(ge=0, description="Steps done.")
    total: int = Field(ge=0, description="Steps in all.")
    losses: dict[str, float | None] = Field(
        description="The latest losses by name (the family's D* and G* terms, 6 decimals); "
        "null for a non-finite one."
    )
    preview_step: int | None = Field(
        description="Step of the newest sample grid (`GET /v1/jobs/{id}/preview`); null before "
        "the first."
    )


class TrainingResult(BaseModel):
    """A finished training run's result (`workers.training_jobs.run_training`): the model
    version it registered."""

    model: str = Field(description="Id of the model the run registered.")
    version: int = Field(ge=1, description="The version it registered.")
    model_ref: str | None = Field(
        default=None,
        description="That version, `<id>@<version>` (null in records older than 2026-12-07).",
    )
    model_digest: str = Field(description="That version's content digest (sha256 of its files).")
    run: str = Field(description="Id of the run (the job's id; its files are `runs/<id>/`).")
    steps: int = Field(ge=0, description="Steps trained.")
    metrics: dict[str, int | float | str] = Field(
        description="The registered card's metrics by name (e.g. swd_avg, fid; `step` where "
        "measured); a text value says why a metric is unavailable."
    )


class TrainingCancelledResult(BaseModel):
    """A training run cancelled while it ran: where it stopped (its checkpoint is kept)."""

    run: str = Field(description="Id of the run (the job's id).")
    step: int = Field(ge=0, description="The step it stopped at.")
    total: int = Field(ge=0, description="Steps the run was to take.")


# ---------------------------------------------------------------------------------------------
# model_import


class ImportJobParams(ImportParams):
    """A model import's params as recorded."""

    source: ImportSource = Field(
        description="folder: a model folder zip; reference: a pix2pix reference checkpoint."
    )
    model_id: str = Field(description="The id asked for, or derived from the file's name.")
    id_given: bool = Field(
        default=False,
        description="Whether the caller chose the id (else the next free `<id>-<n>` is taken).",
    )
    filename: str | None = Field(default=None, description="The uploaded file's name.")
    discriminator: bool = Field(
        default=False, description="Reference import: whether a discriminator came with it."
    )
    name: str | None = Field(default=None, description="The name to list the model under.")
    description: str | None = Field(default=None, description="The model's listed description.")


class ModelImportResult(BaseModel):
    """A finished import's result (`workers.model_import.import_model`): the version it
    registered."""

    model: str = Field(description="Id of the model registered.")
    version: int = Field(ge=1, description="The version registered.")
    model_ref: str | None = Field(
        default=None,
        description="That version, `<id>@<version>` (null in records older than 2026-12-07).",
    )
    model_digest: str = Field(description="That version's content digest (sha256 of its files).")
    family: FamilyName = Field(description="The model's family, read from its network.")
    architecture: str = Field(description="The generator's architecture name.")
    source: ImportSource = Field(description="What was uploaded: folder or reference.")
    discriminator: bool = Field(description="Whether the model carries a discriminator.")


# ---------------------------------------------------------------------------------------------
# model_export


class ExportJobParams(ExportParams):
    """A model export's params as recorded."""

    format: ExportFormat = Field(default="onnx", description="The file format exported.")


class OnnxValue(BaseModel):
    """One input or output of an exported graph."""

    name: str = Field(description="Its name in the graph (e.g. image, z, class_label).")
    shape: list[int | str] = Field(
        description="Its dimensions: numbers, or names of dynamic ones (e.g. N, 256*h)."
    )
    dtype: str = Field(description="Its element type as NumPy names it (e.g. float32, int64).")


class GrowthState(BaseModel):
    """A Progressive GAN's growth state, which the exported graph was traced at."""

    stage: int = Field(ge=0, description="The resolution stage.")
    alpha: float = Field(description="The fade-in of the newest stage (0-1).")


class ModelExportResult(BaseModel):
    """A finished export's result (`workers.model_export.export_model`): the file and what its
    graph takes and gives."""

    # allow: beyond the fields below, the result spreads the export's description file
    # (`models.onnx_export`, cached beside the export and written by whichever version of the
    # service exported it), whose family-specific extras may grow
    model_config = ConfigDict(extra="allow")

    format: ExportFormat = Field(description="The file format.")
    stamp: str = Field(description="Identity of the exported version's files (cache key).")
    bytes: int = Field(ge=0, description="Size of the exported file.")
    download: str = Field(description="URL of the file.")
    architecture: str = Field(description="The exported generator's architecture name.")
    inputs: list[OnnxValue] = Field(description="The graph's inputs.")
    outputs: list[OnnxValue] = Field(description="The graph's outputs.")
    opset: int = Field(description="The ONNX opset version.")
    dropout: Literal["off"] | None = Field(
        default=None, description="pix2pix: dropout is off in the graph; absent otherwise."
    )
    stride: int | None = Field(
        default=None,
        description="pix2pix: image sides must be multiples of this; absent otherwise.",
    )
    runtime_state: GrowthState | None = Field(
        default=None, description="Progressive GAN: the growth state traced; absent otherwise."
    )


# ---------------------------------------------------------------------------------------------
# The jobs


class JobBase(BaseModel):
    """A job as clients see it: what every kind has (each kind's model narrows `kind`,
    `params`, `result` and `progress_detail`). Times are ISO 8601 UTC."""

    id: str = Field(description="The job's id.")
    url: str = Field(description="Where to poll the job.")
    kind: JobKind = Field(description="What the job does.")
    status: JobStatus = Field(description="Where the job is in its life.")
    model: str | None = Field(
        description="The exact model version the job runs on, `<id>@<version>`, pinned when "
        "it was submitted (a training run: the version it fine-tunes, else null; an import: "
        "the id it registers under)."
    )
    model_digest: str | None = Field(
        default=None, description="The pinned version's content digest (sha256 of its files)."
    )
    created_at: str = Field(description="When the job was submitted.")
    started_at: str | None = Field(description="When its latest attempt started; null before.")
    finished_at: str | None = Field(description="When it ended; null before.")
    progress: float = Field(ge=0.0, le=1.0, description="How far it is, 0 to 1.")
    progress_detail: dict[str, Any] = Field(description="What the worker last reported.")
    result: dict[str, Any] | None = Field(
        description="What the job produced; null until it ends (and when it failed)."
    )
    error: JobError | None = Field(description="Why it failed; null unless it failed.")
    params: dict[str, Any] = Field(description="What was asked for, as recorded.")


_NO_DETAIL = Field(description="Jobs of this kind report no detail: an empty object.")
_NO_RESULT_YET = "null until it ends and when it failed; an empty object when it was cancelled"


class TranslationJob(JobBase):
    """A translation job (`POST /v1/translations`)."""

    kind: Literal[JobKind.translation] = Field(description="What the job does.")
    params: TranslationJobParams = Field(description="What was asked for.")
    progress_detail: NoProgressDetail = _NO_DETAIL
    result: TranslationResult | CancelledResult | None = Field(
        description=f"The translated image; {_NO_RESULT_YET}."
    )


class SampleJob(JobBase):
    """A sampling job (`POST /v1/samples`)."""

    kind: Literal[JobKind.sample] = Field(description="What the job does.")
    params: SampleParams = Field(description="What was asked for (a seed chosen if omitted).")
    progress_detail: NoProgressDetail = _NO_DETAIL
    result: SampleResult | CancelledResult | None = Field(
        description=f"The images and their latents; {_NO_RESULT_YET}."
    )


class InspectionJob(JobBase):
    """A realness map by a model's discriminator (`POST /v1/inspections`)."""

    kind: Literal[JobKind.inspection] = Field(description="What the job does.")
    params: InspectionJobParams = Field(description="What was asked for.")
    progress_detail: NoProgressDetail = _NO_DETAIL
    result: InspectionResult | CancelledResult | None = Field(
        description=f"The map, its overlay and numbers; {_NO_RESULT_YET}."
    )


class InterpolationJob(JobBase):
    """Frames between two latents (`POST /v1/interpolations`)."""

    kind: Literal[JobKind.interpolation] = Field(description="What the job does.")
    params: InterpolationJobParams = Field(description="What was asked for.")
    progress_detail: NoProgressDetail = _NO_DETAIL
    result: InterpolationResult | CancelledResult | None = Field(
        description=f"The frames, animations and latents; {_NO_RESULT_YET}."
    )


class ProjectionJob(JobBase):
    """The latent that redraws an uploaded image (`POST /v1/projections`)."""

    kind: Literal[JobKind.projection] = Field(description="What the job does.")
    params: ProjectionJobParams = Field(description="What was asked for.")
    progress_detail: ProjectionProgress | NoProgressDetail = Field(
        description="The latest step's numbers; an empty object before the first report."
    )
    result: ProjectionResult | CancelledResult | None = Field(
        description=f"The latent and its image; {_NO_RESULT_YET}."
    )


class TrainingJob(JobBase):
    """A training run (`POST /v1/training-runs`)."""

    kind: Literal[JobKind.training] = Field(description="What the job does.")
    params: TrainingJobParams = Field(description="What was asked for.")
    progress_detail: TrainingProgress | NoProgressDetail = Field(
        description="The latest step, losses and preview; an empty object before the first report."
    )
    result: TrainingResult | TrainingCancelledResult | None = Field(
        description="The registered model version; where it stopped when cancelled; null "
        "until it ends and when it failed."
    )


class ModelImportJob(JobBase):
    """A model import (`POST /v1/models`)."""

    kind: Literal[JobKind.model_import] = Field(description="What the job does.")
    params: ImportJobParams = Field(description="What was uploaded, and how to list it.")
    progress_detail: NoProgressDetail = _NO_DETAIL
    result: ModelImportResult | None = Field(
        description="The registered model version; null until it ends and when it failed."
    )


class ModelExportJob(JobBase):
    """An ONNX export of a model version (`POST /v1/models/{id}/exports`, format onnx)."""

    kind: Literal[JobKind.model_export] = Field(description="What the job does.")
    params: ExportJobParams = Field(description="What was asked for.")
    progress_detail: NoProgressDetail = _NO_DETAIL
    result: ModelExportResult | None = Field(
        description="The exported file; null until it ends and when it failed."
    )


AnyJob = Annotated[
    TranslationJob
    | SampleJob
    | InspectionJob
    | InterpolationJob
    | ProjectionJob
    | TrainingJob
    | ModelImportJob
    | ModelExportJob,
    Field(discriminator="kind"),
]
"""A job of any kind, told apart by `kind`."""

JOB_MODELS: dict[JobKind, type[JobBase]] = {
    JobKind.translation: TranslationJob,
    JobKind.sample: SampleJob,
    JobKind.inspection: InspectionJob,
    JobKind.interpolation: InterpolationJob,
    JobKind.projection: ProjectionJob,
    JobKind.training: TrainingJob,
    JobKind.model_import: ModelImportJob,
    JobKind.model_export: ModelExportJob,
}


INTERNAL_PARAMS = frozenset({"input", "image"})  # storage paths, for workers only


def iso_time(timestamp: float | None) -> str | None:
    """A Unix time as an ISO 8601 UTC string (`2024-01-31T12:00:00.000Z`)."""
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_url(job_id: str) -> str:
    """The URL a client polls for a job."""
    return f"/v1/jobs/{job_id}"


def _public_result(job: Job) -> dict | None:
    if job.result is None:
        return None
    result = dict(job.result)
    count = result.get("count")
    if count is None and isinstance(result.get("images"), list):
        count = len(result["images"])
    if isinstance(count, int) and count >= 0:
        result["images"] = [image_url(job.id, k) for k in range(count)]
    if isinstance(result.get("latent_count"), int):
        result["latents_url"] = latents_url(job.id)
    formats = result.get("animation")
    if isinstance(formats, list):
        result["animation"] = {f: animation_url(job.id, f) for f in formats if isinstance(f, str)}
    return result


def public_job(job: Job) -> JobBase:
    """The public JSON of a job (no owner, no storage paths): the model of its kind."""
    return JOB_MODELS[job.kind](
        id=job.id,
        url=job_url(job.id),
        kind=job.kind,
        status=job.status,
        model=job.model,
        model_digest=job.model_digest,
        created_at=iso_time(job.created_at) or "",
        started_at=iso_time(job.started_at),
        finished_at=iso_time(job.finished_at),
        progress=min(max(job.progress, 0.0), 1.0),
        progress_detail=job.progress_detail,
        result=_public_result(job),
        error=JobError(code=job.error.code, message=job.error.message) if job.error else None,
        params={k: v for k, v in job.params.items() if k not in INTERNAL_PARAMS},
    )
