"""Latents from the gateway's side: checking given vectors and references to earlier jobs' latents.

A sample, interpolation or projection job keeps the latents of its images in
`results/<job>/latents.npy` (float32, (N, latent_dim)) and says so in its result (`latent_count`,
`latent_dim`, `class_labels`). Later jobs may name those latents instead of drawing new ones
(`POST /v1/samples` with `latents`, `POST /v1/interpolations` endpoints). The gateway checks what
it can without reading any array: that the job is the caller's, has ended well and kept latents
of the model's length, that the indices exist, and which classes they were drawn with; the worker
reads the vectors themselves. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.jobs import LATENT_KINDS, JobStatus, JobStore
from service.api.routes.jobs import owned_job
from service.catalog import ModelInfo
from service.errors import ApiError


@dataclass(frozen=True)
class KeptLatents:
    """What an earlier job's result says of the latents it kept."""

    job: str
    count: int
    class_labels: list[int] | None  # None: unconditional, or a blend of classes per frame


def kept_latents(store: JobStore, job_id: str, owner: str, info: ModelInfo) -> KeptLatents:
    """The latents job `job_id` kept, for use with the model `info`: 404 for unknown or others'
    jobs, 422 `no_latents` for jobs of another kind or that kept none, 409 `source_not_ready`
    while it has not succeeded, 422 `latent_length` when its latents do not fit the model."""
    source = owned_job(store, job_id, owner)
    if source.kind not in LATENT_KINDS:
        kinds = ", ".join(k.value for k in LATENT_KINDS)
        raise ApiError(
            422,
            "no_latents",
            f"The job {source.id} is a {source.kind}; only these keep latents: {kinds}.",
        )
    if source.status is not JobStatus.succeeded:
        raise ApiError(
            409, "source_not_ready", f"The job {source.id} is {source.status}, not succeeded."
        )
    result = source.result or {}
    count, dim = result.get("latent_count"), result.get("latent_dim")
    if not isinstance(count, int) or not isinstance(dim, int):
        raise ApiError(422, "no_latents", f"The job {source.id} kept no latents.")
    check_latent_length(info, dim, f"The latents of job {source.id}")
    labels = result.get("class_labels")
    usable = isinstance(labels, list) and all(isinstance(y, int) for y in labels)
    return KeptLatents(source.id, count, labels if usable else None)


def check_latent_length(info: ModelInfo, length: int, what: str) -> None:
    """422 `latent_length` unless `length` is the model's latent_dim."""
    if info.latent_dim is None:
        raise ApiError(
            422, "wrong_model_task", f"The model {info.id!r} takes no latents (no latent_dim)."
        )
    if length != info.latent_dim:
        raise ApiError(
            422,
            "latent_length",
            f"{what} have {length} numbers; the model {info.id!r} takes latents of "
            f"{info.latent_dim}.",
        )


def check_indices(kept: KeptLatents, indices: list[int]) -> None:
    """422 `invalid_field` when an index is not one of the kept latents."""
    bad = [k for k in indices if k >= kept.count]
    if bad:
        raise ApiError(
            422,
            "invalid_field",
            f"The job {kept.job} kept {kept.count} latents (indices 0 to {kept.count - 1}); "
            f"there is no index {bad[0]}.",
        )


def labels_for(
    info: ModelInfo,
    count: int,
    *,
    class_label: int | None,
    class_labels: list[int] | None,
    kept: list[int] | None,
) -> list[int] | None:
    """The class of each of `count` given latents: `class_labels`, else `class_label` for all,
    else the classes the latents were drawn with (`kept`); None for unconditional models.
    422 when a conditional model's classes are missing, of the wrong number or out of range, or
    when an unconditional model is given classes."""
    if info.class_count == 0:
        if class_labels is not None or class_label is not None:
            raise ApiError(
                422,
                "invalid_field",
                f"The model {info.id!r} is unconditional: it takes no class labels.",
            )
        return None
    if class_labels is not None:
        labels = class_labels
    elif class_label is not None:
        labels = [class_label] * count
    elif kept is not None:
        labels = kept
    else:
        raise ApiError(
            422,
            "class_labels_required",
            f"The model {info.id!r} is class-conditional: give `class_label` or one of "
            "`class_labels` per latent.",
        )
    if len(labels) != count:
        raise ApiError(
            422,
            "invalid_field",
            f"The field 'class_labels' has {len(labels)} labels for {count} latents.",
        )
    bad = [y for y in labels if not 0 <= y < info.class_count]
    if bad:
        raise ApiError(
            422,
            "invalid_field",
            f"The class label {bad[0]} is not a class of the model {info.id!r} "
            f"(0 to {info.class_count - 1}).",
        )
    return labels
