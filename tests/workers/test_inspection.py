"""Inspections on tiny real discriminators: maps, overlays, numbers, and the clear failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from core.jobs import JobKind, JobStatus
from models.realness import realness
from tests.workers.files import put, result_image
from tests.workers.tiny import save_tiny_discriminator
from workers import inspection
from workers.errors import JobFailure
from workers.inference import model_input
from workers.model_cache import get_cache
from workers.overlay import MIN_LEGEND_WIDTH

pytestmark = pytest.mark.usefixtures("fresh_cache")  # tests/workers/conftest.py


@pytest.fixture
def with_discriminators(storage):
    for model_id in ("digits", "p2p", "faces"):
        save_tiny_discriminator(storage.models, model_id)
    return storage


def picture(size: tuple[int, int], seed: int = 0, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 4
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(pixels, mode=mode)


def test_a_unet_gan_inspection_writes_the_map_and_overlay_at_the_image_size(
    make_context, with_discriminators
):
    path = put(with_discriminators, picture((50, 37)))
    ctx = make_context(JobKind.inspection, "digits", image=path, width=50, height=37)
    outcome = inspection.inspect(ctx)
    assert outcome.status == JobStatus.succeeded
    result = outcome.result
    assert result["count"] == 2
    assert result["model"] == "digits" and result["class_label"] in (0, 1, 2)
    assert 0.0 <= result["global_score"] <= 1.0
    assert 0.0 <= result["map_min"] <= result["map_mean"] <= 1.0
    x0, y0, x1, y1 = result["least_real_box"]
    assert 0 <= x0 < x1 <= 50 and 0 <= y0 < y1 <= 37
    grey = result_image(ctx.storage, ctx.job_id, 0)
    assert grey.mode == "L" and grey.size == (50, 37)
    levels = np.asarray(grey, dtype=np.float64) / 255.0
    assert levels.mean() == pytest.approx(result["map_mean"], abs=1 / 255)
    assert levels.min() == pytest.approx(result["map_min"], abs=1 / 255)
    overlay = result_image(ctx.storage, ctx.job_id, 1)
    assert overlay.mode == "RGB" and overlay.width == max(50, MIN_LEGEND_WIDTH)
    assert overlay.height > 37  # the legend strip under the image
    assert json.loads(json.dumps(result)) == result  # what the job record stores


def test_the_map_is_the_discriminators_at_the_models_size(make_context, with_discriminators):
    image = picture((32, 32), seed=3)
    ctx = make_context(
        JobKind.inspection, "digits", image=put(with_discriminators, image), class_label=2
    )
    result = inspection.inspect(ctx).result
    loaded = get_cache().get_discriminator("digits")
    expected = realness(loaded.model, model_input(loaded, image, 3), class_label=2)
    assert result["class_label"] == 2
    assert result["global_score"] == pytest.approx(expected.global_score)
    assert result["map_mean"] == pytest.approx(float(expected.map.mean()), abs=1e-6)
    levels = np.asarray(result_image(ctx.storage, ctx.job_id, 0), dtype=np.float64)
    assert np.abs(levels - np.rint(expected.map.numpy() * 255)).max() <= 1


def test_a_pix2pix_inspection_judges_the_pair(make_context, with_discriminators):
    image = put(with_discriminators, picture((40, 64), seed=1))
    a = put(with_discriminators, picture((40, 64), seed=2, mode="RGBA"), "input.png")
    ctx = make_context(JobKind.inspection, "p2p", image=image, input=a)
    result = inspection.inspect(ctx).result
    assert result["global_score"] is None and result["class_label"] is None
    assert 0.0 <= result["map_min"] <= result["map_mean"] <= 1.0
    assert result_image(ctx.storage, ctx.job_id, 0).size == (40, 64)
    swapped = make_context(JobKind.inspection, "p2p", image=a, input=image)
    assert inspection.inspect(swapped).result["map_mean"] != result["map_mean"]


def test_a_least_squares_pix2pix_d_reads_its_outputs_as_scores(make_context, with_discriminators):
    folder = with_discriminators.models / "p2p"
    card = json.loads((folder / "config.json").read_text())
    card["provenance"]["training"] = {"gan_mode": "lsgan"}
    (folder / "config.json").write_text(json.dumps(card))
    image, a = picture((32, 32), seed=4), picture((32, 32), seed=5)
    ctx = make_context(
        JobKind.inspection,
        "p2p",
        image=put(with_discriminators, image),
        input=put(with_discriminators, a),
    )
    result = inspection.inspect(ctx).result
    loaded = get_cache().get_discriminator("p2p")
    condition = model_input(loaded, a, 3)
    scores = realness(loaded.model, model_input(loaded, image, 3), condition, least_squares=True)
    assert result["map_mean"] == pytest.approx(float(scores.map.mean()), abs=1e-6)


@pytest.mark.parametrize("input_param", [None, "uploads/nowhere/input.png"])
def test_pix2pix_without_its_input_image_fails_clearly(
    make_context, with_discriminators, input_param
):
    params = {"image": put(with_discriminators, picture((32, 32)))}
    if input_param is not None:
        params["input"] = input_param
    ctx = make_context(JobKind.inspection, "p2p", **params)
    with pytest.raises(JobFailure) as info:
        inspection.inspect(ctx)
    assert info.value.code == "input_required" and "input (A) image" in info.value.message


def test_a_model_without_a_discriminator_fails_clearly(make_context, storage):
    ctx = make_context(JobKind.inspection, "digits", image=put(storage, picture((32, 32))))
    with pytest.raises(JobFailure) as info:
        inspection.inspect(ctx)
    assert info.value.code == "no_discriminator"
    assert "'digits' carries no discriminator" in info.value.message
    assert not ctx.storage.result_dir(ctx.job_id).exists()


@pytest.mark.parametrize("with_d", [True, False])
def test_a_progressive_gan_is_not_inspectable(make_context, storage, with_d):
    if with_d:
        save_tiny_discriminator(storage.models, "faces")
    ctx = make_context(JobKind.inspection, "faces", image=put(storage, picture((8, 8))))
    with pytest.raises(JobFailure) as info:
        inspection.inspect(ctx)
    assert info.value.code == "not_inspectable" and "no realness map" in info.value.message


@pytest.mark.parametrize(
    ("model", "params", "code", "needle"),
    [
        ("nope", {}, "model_not_found", "there is no model called 'nope'"),
        ("digits", {"class_label": 3}, "invalid_parameter", "class_label must lie in 0..2"),
        (
            "digits",
            {"class_label": "two"},
            "invalid_parameter",
            "class_label: Input should be a valid integer",
        ),
        ("digits", {"image": "/etc/hostname"}, "invalid_parameter", "in the service's storage"),
        ("digits", {"image": "../outside.png"}, "invalid_parameter", "in the service's storage"),
        ("digits", {"image": None}, "invalid_parameter", "names no image to inspect"),
        ("digits", {"image": "uploads/gone.png"}, "input_missing", "no longer in storage"),
        ("p2p", {"class_label": 1}, "invalid_parameter", "takes no class label"),
    ],
)
def test_bad_inspection_jobs_fail_clearly(
    make_context, with_discriminators, model, params, code, needle
):
    a = put(with_discriminators, picture((32, 32)))
    params = {"image": put(with_discriminators, picture((32, 32))), "input": a, **params}
    ctx = make_context(JobKind.inspection, model, **params)
    with pytest.raises(JobFailure) as info:
        inspection.inspect(ctx)
    assert info.value.code == code and needle in info.value.message


def test_an_unreadable_image_is_named_in_the_failure(make_context, with_discriminators):
    path = put(with_discriminators, picture((8, 8)))
    with open(with_discriminators.root / path, "wb") as f:
        f.write(b"\x89PNG broken")
    ctx = make_context(JobKind.inspection, "digits", image=path)
    with pytest.raises(JobFailure) as info:
        inspection.inspect(ctx)
    assert info.value.code == "bad_image"
    assert info.value.message.startswith("the image to inspect could not be read")


def test_discriminators_are_cached_and_reloaded_when_their_file_changes(
    make_context, with_discriminators
):
    path = put(with_discriminators, picture((32, 32)))
    first = inspection.inspect(make_context(JobKind.inspection, "digits", image=path)).result
    inspection.inspect(make_context(JobKind.inspection, "digits", image=path))
    assert get_cache().loads == 1 and get_cache().ids("discriminator") == ["digits"]
    save_tiny_discriminator(with_discriminators.models, "digits", seed=1)  # retrained
    again = inspection.inspect(make_context(JobKind.inspection, "digits", image=path)).result
    assert get_cache().loads == 2 and again["map_mean"] != first["map_mean"]


def test_scale_box_grows_outwards_onto_the_larger_picture():
    assert inspection.scale_box((1, 2, 3, 4), (32, 32), (64, 16)) == (2, 1, 6, 2)
    assert inspection.scale_box((0, 0, 32, 32), (32, 32), (50, 37)) == (0, 0, 50, 37)
    assert inspection.scale_box((5, 5, 6, 6), (32, 32), (50, 37)) == (7, 5, 10, 7)
