"""Every number a request may carry is bounded (`core.params`): past a bound is a 422 naming the
field, at the bound is accepted, and the web page's inputs carry the same bounds. A real gateway
process and Redis; no worker (jobs stay queued)."""

from __future__ import annotations

import re

import pytest

from core.params import (
    MAX_BURN_IN,
    MAX_CLASS_LABEL,
    MAX_FILTER_CANDIDATES,
    MAX_FPS,
    MAX_FRAMES,
    MAX_KEPT_LATENTS,
    MAX_LATENT_ABS,
    MAX_PROJECTION_STEPS,
    MAX_SAMPLES,
    MAX_SEED,
    MAX_TRUNCATION,
    MIN_FRAMES,
    MIN_KEEP,
    MIN_TRUNCATION,
)
from core.training_config import MAX_STEPS
from core.training_runs import RunConfig
from service.web.routes import STATIC_DIR
from tests.service.factories import TEST_LATENT_DIM, expect_error, image_bytes

Z = TEST_LATENT_DIM


def _latent(value: float) -> list[float]:
    return [0.0] * (Z - 1) + [value]


@pytest.mark.parametrize("truncation", [MIN_TRUNCATION, 1.0, MAX_TRUNCATION])
def test_truncation_within_its_bounds_is_accepted(client, truncation):
    response = client.post("/v1/samples", json={"model": "faces", "truncation": truncation})
    assert response.status_code == 202, response.text
    assert response.json()["params"]["truncation"] == truncation


@pytest.mark.parametrize(
    "truncation", [0, 1e-6, MIN_TRUNCATION * 0.99, MAX_TRUNCATION * 1.01, 1e308, -1.0]
)
def test_truncation_past_its_bounds_is_422(client, truncation):
    for path, body in (
        ("/v1/samples", {"model": "faces", "truncation": truncation}),
        (
            "/v1/interpolations",
            {"model": "faces", "start": {"seed": 1}, "end": {"seed": 2}, "truncation": truncation},
        ),
    ):
        message = expect_error(client.post(path, json=body), 422, "invalid_field")
        assert "truncation" in message, message


@pytest.mark.parametrize("value", [MAX_LATENT_ABS, -MAX_LATENT_ABS, 0.5])
def test_latents_within_their_range_are_accepted(client, value):
    response = client.post("/v1/samples", json={"model": "faces", "latents": [_latent(value)]})
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("value", [MAX_LATENT_ABS + 0.5, -1e6, 1e300])
def test_latents_out_of_range_are_422_naming_the_entry(client, value):
    body = {"model": "faces", "latents": [_latent(0.0), _latent(value)]}
    message = expect_error(client.post("/v1/samples", json=body), 422, "invalid_field")
    assert f"latents.1.{Z - 1}" in message and "100" in message, message
    body = {"model": "faces", "start": {"latent": _latent(value)}, "end": {"seed": 1}}
    message = expect_error(client.post("/v1/interpolations", json=body), 422, "invalid_field")
    assert "start.latent" in message, message


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_latents_are_422(client, number):
    entries = ", ".join(["0"] * (Z - 1) + [number])
    body = '{"model": "faces", "start": {"latent": [' + entries + ']}, "end": {"seed": 1}}'
    response = client.post(
        "/v1/interpolations", content=body, headers={"Content-Type": "application/json"}
    )
    message = expect_error(response, 422, "invalid_field")
    assert "start.latent" in message and "finite" in message, message


@pytest.mark.parametrize("field", ["truncation", "filter.keep"])
def test_non_finite_numbers_are_422(client, field):
    body = (
        '{"model": "faces", "truncation": NaN}'
        if field == "truncation"
        else '{"model": "faces", "filter": {"method": "top", "keep": Infinity}}'
    )
    response = client.post(
        "/v1/samples", content=body, headers={"Content-Type": "application/json"}
    )
    assert field.split(".")[-1] in expect_error(response, 422, "invalid_field")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "digits", "class_label": MAX_CLASS_LABEL + 1}, "class_label"),
        ({"model": "faces", "seed": MAX_SEED + 1}, "seed"),
        ({"model": "faces", "count": MAX_SAMPLES + 1}, "count"),
        (
            {"model": "digits", "latents": [_latent(0.0)], "class_labels": [MAX_CLASS_LABEL + 1]},
            "class_labels",
        ),
        ({"model": "faces", "latents": {"job": "x", "indices": [MAX_KEPT_LATENTS]}}, "indices"),
        ({"model": "faces", "filter": {"method": "top", "keep": MIN_KEEP / 2}}, "keep"),
        ({"model": "faces", "filter": {"method": "top", "pixel_weight": 11}}, "pixel_weight"),
        ({"model": "faces", "filter": {"method": "drs", "burn_in": MAX_BURN_IN + 1}}, "burn_in"),
        (
            {"model": "faces", "filter": {"method": "drs", "max_candidates": 1 << 20}},
            "max_candidates",
        ),
        ({"model": "faces", "filter": {"method": "drs", "percentile": 101}}, "percentile"),
    ],
)
def test_sample_numbers_past_their_bounds_are_422(client, body, field):
    message = expect_error(client.post("/v1/samples", json=body), 422, "invalid_field")
    assert field in message, message


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"frames": MAX_FRAMES + 1}, "frames"),
        ({"frames": MIN_FRAMES - 1}, "frames"),
        ({"fps": MAX_FPS + 1}, "fps"),
        ({"fps": 0}, "fps"),
        ({"start": {"job": "x", "index": MAX_KEPT_LATENTS}}, "index"),
        ({"start": {"seed": 1, "class_label": MAX_CLASS_LABEL + 1}}, "class_label"),
    ],
)
def test_interpolation_numbers_past_their_bounds_are_422(client, extra, field):
    body = {"model": "faces", "start": {"seed": 1}, "end": {"seed": 2}, **extra}
    message = expect_error(client.post("/v1/interpolations", json=body), 422, "invalid_field")
    assert field in message, message


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"steps": str(MAX_PROJECTION_STEPS + 1)}, "steps"),
        ({"seed": str(MAX_SEED + 1)}, "seed"),
        ({"class_label": str(MAX_CLASS_LABEL + 1)}, "class_label"),
        ({"class_label": "-1"}, "class_label"),
    ],
)
def test_projection_numbers_past_their_bounds_are_422(client, form, field):
    response = client.post(
        "/v1/projections",
        data={"model": "digits", **form},
        files={"image": ("x.png", image_bytes(), "image/png")},
    )
    assert field in expect_error(response, 422, "invalid_field")


def test_the_filter_candidates_bound_is_reachable_and_not_passable():
    """The smallest keep draws at most MAX_FILTER_CANDIDATES for the most images."""
    assert MAX_SAMPLES / MIN_KEEP == MAX_FILTER_CANDIDATES


def _inputs(html: str) -> dict[str, dict[str, str]]:
    inputs = {}
    for tag in re.findall(r"<input [^>]*>", html):
        attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
        if "id" in attributes:
            inputs[attributes["id"]] = attributes
    return inputs


def test_the_web_page_shows_the_same_bounds():
    inputs = _inputs((STATIC_DIR / "index.html").read_text(encoding="utf-8"))
    for seed in ("translate-seed", "sample-seed", "latent-draw-seed", "latent-a-seed"):
        assert (inputs[seed]["min"], inputs[seed]["max"]) == ("0", str(MAX_SEED)), seed
    truncation = inputs["sample-truncation"]
    assert float(truncation["min"]) == MIN_TRUNCATION
    assert float(truncation["max"]) == MAX_TRUNCATION
    assert inputs["sample-count"]["max"] == str(MAX_SAMPLES)
    frames = inputs["latent-frames"]
    assert (frames["min"], frames["max"]) == (str(MIN_FRAMES), str(MAX_FRAMES))
    assert inputs["latent-project-steps"]["max"] == str(MAX_PROJECTION_STEPS)
    assert inputs["train-steps"]["max"] == str(MAX_STEPS)
    fields = RunConfig.model_fields
    assert inputs["train-size"]["max"] == str(fields["image_size"].metadata[1].le)
    assert inputs["train-batch"]["max"] == str(fields["batch_size"].metadata[1].le)
