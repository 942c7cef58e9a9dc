"""Translations and samples on tiny real models: sizes, channels, seeds, labels, truncation."""

from __future__ import annotations

import resource

import numpy as np
import pytest
from PIL import Image

from core.jobs import JobKind, JobStatus
from core.storage import INPUT_FILE
from tests.workers.files import result_image, upload
from workers import inference
from workers.errors import JobFailure
from workers.model_cache import get_cache

pytestmark = pytest.mark.usefixtures("fresh_cache")  # tests/workers/conftest.py


def test_translation_keeps_an_odd_input_size(make_context):
    ctx = make_context(JobKind.translation, "p2p", seed=5)
    upload(ctx.storage, ctx.job_id, Image.new("RGB", (50, 37), (200, 30, 90)))
    outcome = inference.translate(ctx)
    assert outcome.status == JobStatus.succeeded
    assert outcome.result["count"] == 1
    assert outcome.result["seed"] == 5
    out = result_image(ctx.storage, ctx.job_id)
    assert out.size == (50, 37) and out.mode == "RGB"


def test_grey_model_translates_a_colour_upload_to_colour(make_context):
    ctx = make_context(JobKind.translation, "p2p-grey")
    upload(ctx.storage, ctx.job_id, Image.new("RGBA", (40, 64), (10, 200, 30, 128)))
    outcome = inference.translate(ctx)
    out = result_image(ctx.storage, ctx.job_id)
    assert out.size == (40, 64) and out.mode == "RGB"
    assert isinstance(outcome.result["seed"], int)  # a random seed, recorded


def test_translation_with_one_seed_repeats(make_context):
    picture = Image.effect_noise((33, 21), 40).convert("RGB")
    images = []
    for seed in (11, 11, 12):
        ctx = make_context(JobKind.translation, "p2p", seed=seed)
        upload(ctx.storage, ctx.job_id, picture)
        inference.translate(ctx)
        images.append((ctx.storage.result_dir(ctx.job_id) / "0.png").read_bytes())
    assert images[0] == images[1]
    assert images[0] != images[2]  # dropout noise, seeded


def test_unreadable_upload_is_a_readable_failure(make_context):
    ctx = make_context(JobKind.translation, "p2p")
    folder = ctx.storage.upload_dir(ctx.job_id)
    folder.mkdir(parents=True)
    (folder / INPUT_FILE).write_bytes(b"not a png at all")
    with pytest.raises(JobFailure) as info:
        inference.translate(ctx)
    assert info.value.code == "bad_image"
    assert "could not be read" in info.value.message


def test_a_sampling_model_cannot_translate(make_context):
    ctx = make_context(JobKind.translation, "digits")
    upload(ctx.storage, ctx.job_id, Image.new("RGB", (8, 8)))
    with pytest.raises(JobFailure) as info:
        inference.translate(ctx)
    assert info.value.code == "wrong_model_task" and "draws samples" in info.value.message


def sample_bytes(ctx) -> list[bytes]:
    folder = ctx.storage.result_dir(ctx.job_id)
    return [(folder / f"{k}.png").read_bytes() for k in range(len(list(folder.glob("*.png"))))]


def test_samples_with_one_seed_are_the_same_bytes(make_context):
    a = make_context(JobKind.sample, "digits", count=3, seed=7)
    b = make_context(JobKind.sample, "digits", count=3, seed=7)
    c = make_context(JobKind.sample, "digits", count=3, seed=8)
    for ctx in (a, b, c):
        outcome = inference.sample(ctx)
        assert outcome.result["count"] == 3
    assert sample_bytes(a) == sample_bytes(b)
    assert sample_bytes(a) != sample_bytes(c)
    with Image.open(a.storage.result_dir(a.job_id) / "2.png") as img:
        assert img.size == (32, 32)


def test_class_label_and_truncation_change_the_images(make_context):
    plain = make_context(JobKind.sample, "digits", count=2, seed=1, class_label=0)
    other = make_context(JobKind.sample, "digits", count=2, seed=1, class_label=2)
    truncated = make_context(
        JobKind.sample, "digits", count=2, seed=1, class_label=0, truncation=0.5
    )
    for ctx in (plain, other, truncated):
        inference.sample(ctx)
    assert sample_bytes(plain) != sample_bytes(other)
    assert sample_bytes(plain) != sample_bytes(truncated)
    assert truncated.job.params["truncation"] == 0.5


def test_unconditional_progressive_gan_samples_grey_images(make_context):
    ctx = make_context(JobKind.sample, "faces", count=2, seed=3)
    inference.sample(ctx)
    with Image.open(ctx.storage.result_dir(ctx.job_id) / "1.png") as img:
        assert img.size == (8, 8) and img.mode == "L"


@pytest.mark.parametrize(
    ("model", "params", "needle"),
    [
        ("digits", {"count": 2, "class_label": 3}, "class_label must lie in 0..2"),
        ("faces", {"count": 1, "class_label": 0}, "unconditional"),
        ("digits", {"count": 65}, "count: Input should be less than or equal to 64"),
        (
            "digits",
            {"count": 1, "truncation": -1},
            "truncation: Input should be greater than or equal to 0.02",
        ),
        ("digits", {"count": "many"}, "count: Input should be a valid integer"),
        ("digits", {"count": 1, "seed": 2**32}, "seed: Input should be less than or equal to"),
    ],
)
def test_bad_sample_parameters_fail_clearly(make_context, model, params, needle):
    ctx = make_context(JobKind.sample, model, **params)
    with pytest.raises(JobFailure) as info:
        inference.sample(ctx)
    assert info.value.code == "invalid_parameter" and needle in info.value.message
    assert not ctx.storage.result_dir(ctx.job_id).exists()


def test_unknown_model_fails_clearly(make_context):
    ctx = make_context(JobKind.sample, "nope", count=1)
    with pytest.raises(JobFailure) as info:
        inference.sample(ctx)
    assert info.value.code == "model_not_found" and "'nope'" in info.value.message


def test_models_are_served_from_the_cache(make_context):
    for _ in range(2):
        inference.sample(make_context(JobKind.sample, "digits", count=1, seed=0))
    assert get_cache().loads == 1


def test_native_and_resize_modes_are_recorded_and_keep_the_size(make_context):
    picture = Image.effect_noise((70, 45), 40).convert("RGB")
    outputs = {}
    for mode in ("native", "resize"):
        ctx = make_context(JobKind.translation, "p2p", seed=3, mode=mode)
        upload(ctx.storage, ctx.job_id, picture)
        outcome = inference.translate(ctx)
        assert outcome.result["mode"] == mode and outcome.result["tiled"] is False
        assert outcome.result["precision"] == "fp32"  # GANSERVE_PRECISION=fp32 in these tests
        outputs[mode] = result_image(ctx.storage, ctx.job_id)
        assert outputs[mode].size == (70, 45)
    assert outputs["native"].tobytes() != outputs["resize"].tobytes()
    bad = make_context(JobKind.translation, "p2p", mode="tiles")
    upload(bad.storage, bad.job_id, picture)
    with pytest.raises(JobFailure, match="mode") as failure:
        inference.translate(bad)
    assert failure.value.code == "invalid_parameter"


def test_a_4096_square_upload_translates_in_tiles(make_context):
    yy, xx = np.mgrid[0:4096, 0:4096]
    pixels = np.stack([(xx // 16) % 256, (yy // 16) % 256, ((xx + yy) // 32) % 256], axis=-1)
    ctx = make_context(JobKind.translation, "p2p", seed=1)
    upload(ctx.storage, ctx.job_id, Image.fromarray(pixels.astype(np.uint8)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    outcome = inference.translate(ctx)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert outcome.status == JobStatus.succeeded
    assert outcome.result["tiled"] is True and outcome.result["mode"] == "native"
    assert result_image(ctx.storage, ctx.job_id).size == (4096, 4096)
    assert grown < 3 * 1024 * 1024  # KiB: under 3 GiB more, far below GANSERVE_WORKER_MAX_MEMORY_MB
