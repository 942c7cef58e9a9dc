"""The result image formats a translation or sample may ask for (`core.params`), where their
files lie (`core.storage`) and how a job shows them (`core.public_jobs`)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.jobs import Job, JobKind, JobStatus
from core.params import (
    InvalidParams,
    SampleParams,
    TranslationParams,
    parse_params,
)
from core.public_jobs import public_job
from core.storage import RESULT_IMAGE_TYPES, result_image_format, result_image_name


@pytest.mark.parametrize(
    ("fields", "encoding"),
    [
        ({}, ("png", None)),
        ({"format": None}, ("png", None)),
        ({"format": "png"}, ("png", None)),
        ({"format": "webp"}, ("webp", 90)),
        ({"format": "jpeg"}, ("jpeg", 90)),
        ({"format": "webp", "quality": 1}, ("webp", 1)),
        ({"format": "jpeg", "quality": 100}, ("jpeg", 100)),
    ],
)
def test_the_encoding_of_what_was_asked(fields, encoding):
    assert TranslationParams(**fields).encoding() == encoding
    assert SampleParams(**fields).encoding() == encoding


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"format": "gif"}, "format: Input should be 'png', 'webp' or 'jpeg'"),
        ({"format": "jpg"}, "format: Input should be 'png', 'webp' or 'jpeg'"),
        ({"format": "WEBP"}, "format: Input should be 'png', 'webp' or 'jpeg'"),
        ({"format": "webp", "quality": 0}, "quality: Input should be greater than or equal to 1"),
        ({"format": "jpeg", "quality": 101}, "quality: Input should be less than or equal to 100"),
        ({"format": "jpeg", "quality": 9.5}, "quality: Input should be a valid integer"),
        (
            {"format": "png", "quality": 90},
            "quality: quality is for webp and jpeg; png is lossless (leave quality out)",
        ),
        ({"quality": 90}, "quality: quality is for webp and jpeg; png is lossless"),
    ],
)
def test_a_bad_format_or_quality_names_its_field(fields, message):
    for kind in (JobKind.translation, JobKind.sample):
        with pytest.raises(InvalidParams) as info:
            parse_params(kind, {"seed": 1, **fields})
        assert str(info.value).startswith(message)


def test_only_the_bad_field_is_named_when_the_format_is_wrong():
    with pytest.raises(ValidationError) as info:
        SampleParams(format="gif", quality=50)
    assert [error["loc"] for error in info.value.errors()] == [("format",)]


def test_records_without_a_format_are_png():
    assert parse_params(JobKind.translation, {"seed": 3, "mode": "native"}).encoding() == (
        "png",
        None,
    )
    assert result_image_format(None) == "png"
    assert result_image_format({"count": 2}) == "png"
    assert result_image_format({"count": 2, "format": None}) == "png"
    assert result_image_format({"count": 2, "format": "webp"}) == "webp"


def test_result_file_names_and_media_types():
    assert [result_image_name(3, f) for f in ("png", "webp", "jpeg")] == [
        "3.png",
        "3.webp",
        "3.jpg",
    ]
    assert result_image_name(0) == "0.png"
    assert {f: media for f, (_, media) in RESULT_IMAGE_TYPES.items()} == {
        "png": "image/png",
        "webp": "image/webp",
        "jpeg": "image/jpeg",
    }


def test_a_job_shows_its_format_and_keeps_its_image_urls():
    job = Job(
        kind=JobKind.translation,
        model="p2p@1",
        params={"seed": 1, "format": "jpeg", "quality": 70},
        status=JobStatus.succeeded,
        result={"count": 1, "model": "p2p@1", "seed": 1, "width": 4, "height": 4}
        | {"format": "jpeg", "quality": 70},
    )
    shown = public_job(job).model_dump()
    assert shown["params"]["format"] == "jpeg" and shown["params"]["quality"] == 70
    assert shown["result"]["images"] == [f"/v1/jobs/{job.id}/images/0"]
    assert (shown["result"]["format"], shown["result"]["quality"]) == ("jpeg", 70)
