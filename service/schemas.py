"""Request and response bodies of the API (they make the OpenAPI document at /docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.families import FamilyName
from core.params import InterpolationParams, LatentEndpoint, SampleParams
from core.public_jobs import AnyJob
from service.catalog import ModelInfo
from service.datasets import DatasetKind
from service.webhooks import WebhookFields


class Health(BaseModel):
    """Liveness."""

    status: str = "ok"


class Readiness(BaseModel):
    """Readiness: Redis answers and how many workers consume each queue."""

    redis: str = "ok"
    queues: dict[str, int]


class ModelList(BaseModel):
    """The models available for translation and sampling."""

    models: list[ModelInfo]


JobOut = AnyJob  # a job of any kind, told apart by `kind` (core.public_jobs)


class JobList(BaseModel):
    """A page of the caller's jobs, newest first."""

    jobs: list[JobOut]
    next: str | None = Field(
        default=None, description="Cursor of the next page (`?cursor=`); null on the last page."
    )


class SampleRequest(SampleParams, WebhookFields):
    """Ask for `count` new images from a sampling model (the fields of `core.params`)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        description="A model whose task is 'sample': `<id>` (its newest version) or "
        "`<id>@<version>`."
    )


class InterpolationRequest(InterpolationParams, WebhookFields):
    """Ask for the frames between two latents of a sampling model (the fields of `core.params`)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        description="A model whose task is 'sample': `<id>` (its newest version) or "
        "`<id>@<version>`."
    )

    def ends(self) -> list[tuple[str, LatentEndpoint]]:
        """The two endpoints with their field names."""
        return [("start", self.start), ("end", self.end)]


class ModelPatch(BaseModel):
    """New listing fields of a model (either or both)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _something(self) -> ModelPatch:
        if not self.model_fields_set:
            raise ValueError("give a name or a description to change")
        return self


class ExampleList(BaseModel):
    """URLs of a translation model's example inputs (PNG)."""

    examples: list[str]


class TrainingRunRequest(WebhookFields):
    """Start a training run of `family` on one of the caller's datasets."""

    model_config = ConfigDict(extra="forbid")

    family: FamilyName
    dataset: str = Field(description="Id of one of the caller's datasets.")
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Name of the run (letters, digits, '.', '_', '-').",
    )
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Training option overrides by name (checked by the training worker).",
    )
    background: bool = Field(
        default=False,
        description="Train in the background: the run registers its model at every checkpoint "
        "(served while it improves) and steps aside, to continue later, whenever another "
        "training run waits (the demo models train this way).",
    )
    init_from: str | None = Field(
        default=None,
        description="Fine-tune: the id of a model of the same family to start from (its "
        "generator, and its discriminator when its folder carries one, else a fresh one); "
        "the run takes the model's architecture fields.",
    )
    devices: int = Field(
        default=1,
        ge=1,
        strict=True,
        description="Devices the run trains on at once (DistributedDataParallel under "
        "torchrun): GPUs of the training worker's host, or as many CPU processes on a host "
        "without CUDA; `config.batch_size` is per device. At most "
        "GANSERVE_MAX_TRAINING_DEVICES (8 by default).",
    )


class DatasetOut(BaseModel):
    """A dataset as clients see it."""

    id: str
    name: str
    kind: DatasetKind
    image_count: int
    classes: list[str] = Field(
        description="Class k's name (labeled datasets: the class folders, sorted); else []."
    )
    class_count: int = Field(
        description="len(classes): the class labels a model trained on it has."
    )
    layout: str | None
    created_at: str


class DatasetList(BaseModel):
    """The caller's datasets, newest first."""

    datasets: list[DatasetOut]


_ERROR_WHEN = {
    400: "Bad input (image, archive or request)",
    401: "Missing or invalid API key",
    403: "Not the owner (shared models are for use only)",
    404: "Unknown id",
    409: "Conflict with the job's state",
    413: "Too large",
    415: "Unsupported file type",
    422: "Invalid field",
    429: "Queue full; see Retry-After",
    503: "Redis, the broker or the workers are unavailable",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for error statuses (`service.openapi` gives each the problem
    body the server sends)."""
    return {s: {"description": _ERROR_WHEN.get(s, "Error")} for s in statuses}
