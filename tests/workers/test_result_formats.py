"""Result images in the format a job asks for: PNG by default, WebP or JPEG at a quality, on
tiny real models; every file decoded by Pillow."""

from __future__ import annotations

import io

import pytest
from PIL import Image, features

from core.jobs import JobKind, JobStatus
from tests.workers.files import upload
from workers import inference
from workers.errors import JobFailure

pytestmark = pytest.mark.usefixtures("fresh_cache")  # tests/workers/conftest.py


def decoded(data: bytes) -> tuple[str | None, tuple[int, int]]:
    """The format and size Pillow reads from image bytes (decoding every pixel)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.format, image.size


def test_pillow_here_writes_webp():
    assert features.check("webp")


@pytest.mark.parametrize(
    ("fmt", "quality", "name", "pillow", "recorded"),
    [
        ("webp", None, "0.webp", "WEBP", 90),
        ("jpeg", 40, "0.jpg", "JPEG", 40),
    ],
)
def test_a_translation_in_a_lossy_format(make_context, fmt, quality, name, pillow, recorded):
    params = {"seed": 5, "format": fmt} | ({} if quality is None else {"quality": quality})
    ctx = make_context(JobKind.translation, "p2p", **params)
    upload(ctx.storage, ctx.job_id, Image.effect_noise((50, 37), 40).convert("RGB"))
    outcome = inference.translate(ctx)
    assert outcome.status == JobStatus.succeeded
    assert (outcome.result["format"], outcome.result["quality"]) == (fmt, recorded)
    assert sorted(p.name for p in ctx.storage.result_dir(ctx.job_id).iterdir()) == [name]
    data = (ctx.storage.result_dir(ctx.job_id) / name).read_bytes()
    assert decoded(data) == (pillow, (50, 37))


def test_a_translation_is_png_unless_asked(make_context):
    ctx = make_context(JobKind.translation, "p2p", seed=5)
    upload(ctx.storage, ctx.job_id, Image.new("RGB", (20, 12), (200, 30, 90)))
    outcome = inference.translate(ctx)
    assert (outcome.result["format"], outcome.result["quality"]) == ("png", None)
    data = (ctx.storage.result_dir(ctx.job_id) / "0.png").read_bytes()
    assert decoded(data) == ("PNG", (20, 12))


def test_jpeg_quality_trades_bytes_for_fidelity(make_context):
    sizes = []
    for quality in (20, 95):
        ctx = make_context(
            JobKind.sample, "digits", count=1, seed=3, format="jpeg", quality=quality
        )
        inference.sample(ctx)
        sizes.append((ctx.storage.result_dir(ctx.job_id) / "0.jpg").stat().st_size)
    assert sizes[0] < sizes[1]


def test_grey_samples_as_webp_keep_their_latents(make_context):
    ctx = make_context(JobKind.sample, "faces", count=2, seed=3, format="webp")
    outcome = inference.sample(ctx)
    assert (outcome.result["format"], outcome.result["quality"]) == ("webp", 90)
    folder = ctx.storage.result_dir(ctx.job_id)
    assert sorted(p.name for p in folder.iterdir()) == ["0.webp", "1.webp", "latents.npy"]
    for k in range(2):
        assert decoded((folder / f"{k}.webp").read_bytes()) == ("WEBP", (8, 8))


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P"])
@pytest.mark.parametrize(("fmt", "pillow"), [("png", "PNG"), ("webp", "WEBP"), ("jpeg", "JPEG")])
def test_every_picture_mode_encodes(mode, fmt, pillow):
    picture = Image.new(mode, (9, 7))
    data = inference.encode_image(picture, fmt, None if fmt == "png" else 80)
    assert decoded(data) == (pillow, (9, 7))


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"format": "gif"}, "format: Input should be 'png', 'webp' or 'jpeg'"),
        ({"format": "png", "quality": 80}, "quality: quality is for webp and jpeg"),
        ({"format": "webp", "quality": 101}, "quality: Input should be less than or equal to 100"),
    ],
)
def test_a_record_with_a_bad_format_fails_clearly(make_context, params, needle):
    ctx = make_context(JobKind.sample, "digits", count=1, **params)
    with pytest.raises(JobFailure) as info:
        inference.sample(ctx)
    assert info.value.code == "invalid_parameter" and needle in info.value.message
    assert not ctx.storage.result_dir(ctx.job_id).exists()
