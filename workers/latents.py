"""Latents in and out of infer jobs: the `latents.npy` a sample, interpolation or projection job
keeps (`results/<job>/latents.npy` in the object store), and the latents a later job names
(given vectors, or an earlier job's by index).

A job's latents are float32 (N, latent_dim), row k for result image k, saved with NumPy's own
format (`numpy.save`, no pickle; read back with `allow_pickle=False`), so a float32 latent comes
back bit for bit and gives the same image again. Small ones (`INLINE_LATENT_NUMBERS` numbers in
all) are also put inline in the job's result as JSON, where float32 values round-trip exactly.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch

from core.storage import LATENTS_FILE, Storage, result_key
from workers.errors import JobFailure, exception_text

INLINE_LATENT_NUMBERS = 4096  # e.g. 64 latents of 64 numbers, or 8 of 512


def latents_npy(z: torch.Tensor) -> bytes:
    """Latents z (N, Z) as the bytes of a `latents.npy` file (float32)."""
    buffer = io.BytesIO()
    np.save(buffer, z.detach().cpu().to(torch.float32).numpy(), allow_pickle=False)
    return buffer.getvalue()


def vectors(latents: list[list[float]], latent_dim: int) -> torch.Tensor:
    """Given latent vectors as (N, Z) float32; JobFailure when their length is not the model's
    (the gateway checks it too; a model re-registered since may differ)."""
    z = torch.tensor(latents, dtype=torch.float32)  # (N, Z)
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise JobFailure(
            "latent_length",
            f"the latents have {z.shape[-1]} numbers; the model takes latents of {latent_dim}",
        )
    return z


def kept_latents(
    storage: Storage, job_id: str, indices: list[int] | None, latent_dim: int
) -> torch.Tensor:
    """Rows `indices` (all when None) of the latents job `job_id` kept, (n, Z) float32."""
    data = storage.objects.read(result_key(job_id, LATENTS_FILE))
    if data is None:
        raise JobFailure("latents_missing", f"the latents of job {job_id} are no longer in storage")
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise JobFailure(
            "bad_latents", f"the latents of job {job_id} are unreadable: {exception_text(exc)}"
        ) from None
    if array.dtype != np.float32 or array.ndim != 2 or not np.isfinite(array).all():
        raise JobFailure(
            "bad_latents",
            f"the latents of job {job_id} are not finite float32 vectors "
            f"({array.dtype}, shape {array.shape})",
        )
    if array.shape[1] != latent_dim:
        raise JobFailure(
            "latent_length",
            f"the latents of job {job_id} have {array.shape[1]} numbers; the model takes "
            f"latents of {latent_dim}",
        )
    rows = list(range(array.shape[0])) if indices is None else indices
    if any(not 0 <= k < array.shape[0] for k in rows):
        raise JobFailure(
            "invalid_parameter", f"the job {job_id} kept {array.shape[0]} latents, not {rows}"
        )
    return torch.from_numpy(array[rows].copy())  # (n, Z)


def labels_tensor(labels: list[int] | None, num_classes: int, count: int) -> torch.Tensor | None:
    """Class labels (count,) int64 for a conditional model, None for an unconditional one;
    JobFailure when they do not fit the model."""
    if not num_classes:
        if labels is not None:
            raise JobFailure("invalid_parameter", "this model is unconditional: it takes no class")
        return None
    if labels is None or len(labels) != count:
        raise JobFailure(
            "invalid_parameter",
            f"this model is class-conditional: give one class label per latent ({count})",
        )
    if any(not 0 <= y < num_classes for y in labels):
        raise JobFailure(
            "invalid_parameter", f"class labels must lie in 0..{num_classes - 1}, not {labels}"
        )
    return torch.tensor(labels, dtype=torch.long)  # (N,)


def latent_result(z: torch.Tensor, labels: torch.Tensor | None) -> dict[str, Any]:
    """What a result says of its latents z (N, Z): their number and length, the class of each
    (None for unconditional models), and the vectors themselves when they are small."""
    result: dict[str, Any] = {
        "latent_count": int(z.shape[0]),
        "latent_dim": int(z.shape[1]),
        "class_labels": None if labels is None else [int(y) for y in labels],
    }
    if z.numel() <= INLINE_LATENT_NUMBERS:
        result["latents"] = z.detach().cpu().to(torch.float32).tolist()
    return result
