"""The results of the blocking methods whose jobs give more than images: each holds the
decoded images, the useful fields of the job's `result`, and the job's JSON (`job`; the raw
result is `job["result"]`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image


def _result(job: Mapping[str, Any]) -> dict[str, Any]:
    return dict(job.get("result") or {})


@dataclass
class Inspection:
    """A realness map by a model's discriminator (white = real): `map` (greyscale, the image's
    size), `overlay` (the map over the image, with a legend), `global_score` (the U-Net GAN
    encoder's verdict, None for pix2pix), `map_mean`, `map_min`, `least_real_box` (x0, y0, x1,
    y1) and the `class_label` it was judged as."""

    map: Image.Image
    overlay: Image.Image
    global_score: float | None
    map_mean: float
    map_min: float
    least_real_box: tuple[int, ...]
    class_label: int | None
    job: dict[str, Any] = field(repr=False)

    @classmethod
    def of(cls, job: Mapping[str, Any], images: list[Image.Image]) -> Inspection:
        result = _result(job)
        return cls(
            map=images[0],
            overlay=images[1],
            global_score=result.get("global_score"),
            map_mean=float(result.get("map_mean", 0.0)),
            map_min=float(result.get("map_min", 0.0)),
            least_real_box=tuple(result.get("least_real_box") or ()),
            class_label=result.get("class_label"),
            job=dict(job),
        )


@dataclass
class Interpolation:
    """The frames between two latents, the URLs of their animation by format (`webp`,
    `gif`; fetch one with `client.download(url)`), the URL of their latents (`.npy`), and the
    classes of the two ends (None for unconditional models)."""

    frames: list[Image.Image]
    animation: dict[str, str]
    latents_url: str | None
    start_class: int | None
    end_class: int | None
    job: dict[str, Any] = field(repr=False)

    @classmethod
    def of(cls, job: Mapping[str, Any], images: list[Image.Image]) -> Interpolation:
        result = _result(job)
        animation = result.get("animation")
        return cls(
            frames=images,
            animation=dict(animation) if isinstance(animation, Mapping) else {},
            latents_url=result.get("latents_url"),
            start_class=result.get("start_class"),
            end_class=result.get("end_class"),
            job=dict(job),
        )


@dataclass
class Projection:
    """The latent from which a model redraws an image: `reconstruction` (the model's drawing
    of it), `target` (the image as the model sees it), `latent` (the vector), its
    `class_label`, and how close it came (`psnr` in dB, `ssim`, the final `loss`)."""

    reconstruction: Image.Image
    target: Image.Image
    latent: list[float]
    class_label: int | None
    psnr: float | None
    ssim: float | None
    loss: float | None
    job: dict[str, Any] = field(repr=False)

    @classmethod
    def of(cls, job: Mapping[str, Any], images: list[Image.Image]) -> Projection:
        result = _result(job)
        return cls(
            reconstruction=images[0],
            target=images[1],
            latent=list(result.get("latent") or []),
            class_label=result.get("class_label"),
            psnr=result.get("psnr"),
            ssim=result.get("ssim"),
            loss=result.get("loss"),
            job=dict(job),
        )
