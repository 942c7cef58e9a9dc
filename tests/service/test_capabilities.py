"""What a model can do is its family's capability flags (`core.families`), never its family's
name: a family without a flag is refused with 422 `not_<flag>` naming the families that have it.

No family of the table lacks `filterable`, `projectable` or `exportable` while sampling, so the
refusals are checked on a row with the flag turned off (the catalog's check, in process) and, over
HTTP, on a model of a family this server does not know (which has no capability).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest

import core.families
from core.families import FAMILIES, FAMILY_TABLE, capable_titles
from service.catalog import ModelInfo, capable, require_capable
from service.errors import ApiError
from tests.service.conftest import Gateway, start_gateway
from tests.service.factories import expect_error, image_bytes, write_model_folder


def model_info(family: str, task: str = "sample") -> ModelInfo:
    return ModelInfo(
        id="m",
        version=1,
        ref="m@1",
        digest="sha256:0",
        name="m",
        family=family,
        task=task,
        architecture=f"{family}-generator",
        image_size=32,
        channels=3,
        classes=[],
        class_count=0,
        metrics={},
        run=None,
        created_at="",
        discriminator=True,
        prefix="models/m",
    )


@pytest.fixture
def unfilterable_unetgan(monkeypatch):
    """The table with U-Net GAN's `filterable` and `projectable` turned off."""
    row = dataclasses.replace(FAMILIES["unetgan"], filterable=False, projectable=False)
    monkeypatch.setitem(FAMILIES, "unetgan", row)
    table = tuple(row if f.name == "unetgan" else f for f in FAMILY_TABLE)
    monkeypatch.setattr(core.families, "FAMILY_TABLE", table)


def test_the_check_reads_the_flag():
    for family in FAMILY_TABLE:
        info = model_info(family.name, family.task)
        assert capable(info, "filterable") is family.filterable
        assert capable(info, "paired_discriminator") is family.paired_discriminator
    assert not capable(model_info("stylegan"), "exportable")  # a family this server lacks
    assert capable_titles("inspectable") == "pix2pix or U-Net GAN"
    assert capable_titles("filterable") == "U-Net GAN or Progressive GAN"


@pytest.mark.usefixtures("unfilterable_unetgan")
def test_a_sampling_family_without_the_flag_is_refused():
    info = model_info("unetgan")
    with pytest.raises(ApiError) as refused:
        require_capable(info, "filterable", "filter samples with its discriminator")
    assert (refused.value.status_code, refused.value.code) == (422, "not_filterable")
    assert refused.value.message == (
        "The model 'm' is a unetgan model, which cannot filter samples with its discriminator. "
        "Use a Progressive GAN model."
    )
    with pytest.raises(ApiError) as refused:
        require_capable(info, "projectable", "project an image into its latent space")
    assert refused.value.code == "not_projectable"
    require_capable(model_info("pggan"), "filterable", "filter samples")  # others still can


# A model of a family the server does not know: it can sample (its task), but nothing else.
STRANGER = "stranger"


@pytest.fixture(scope="module")
def server(redis_url, tmp_path_factory) -> Iterator[Gateway]:
    gateway = start_gateway(tmp_path_factory.mktemp("capabilities"), redis_url)
    write_model_folder(
        gateway.data_dir / "models",
        STRANGER,
        architecture="stylegan-generator",
        family="stylegan",
        task="sample",
        discriminator="stylegan-discriminator",
    )
    yield gateway
    gateway.stop()


@pytest.fixture
def client(server) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def test_sampling_is_its_task_but_filtering_a_capability(client):
    assert client.post("/v1/samples", json={"model": STRANGER}).status_code == 202
    body = {"model": STRANGER, "filter": {"method": "top"}}
    message = expect_error(client.post("/v1/samples", json=body), 422, "not_filterable")
    assert "stylegan" in message and "Use a U-Net GAN or Progressive GAN model" in message
    body = {"model": "faces", "filter": {"method": "top"}}  # pggan: filterable, has no D
    expect_error(client.post("/v1/samples", json=body), 409, "no_discriminator")


def test_projection_needs_a_projectable_family(client):
    files = {"image": ("x.png", image_bytes(), "image/png")}
    response = client.post("/v1/projections", data={"model": STRANGER}, files=files)
    assert "latent space" in expect_error(response, 422, "not_projectable")


def test_onnx_needs_an_exportable_family(client):
    exports = f"/v1/models/{STRANGER}/exports"
    refused = client.post(exports, json={"format": "onnx"})
    assert "ONNX" in expect_error(refused, 422, "not_exportable")
    expect_error(client.get(f"{exports}/onnx"), 422, "not_exportable")
    old = client.get(f"/v1/models/{STRANGER}/export", params={"format": "onnx"})
    expect_error(old, 422, "not_exportable")
    assert "Deprecation" in old.headers
    assert client.post(exports, json={"format": "safetensors"}).status_code == 201  # a zip


def test_inspection_needs_an_inspectable_family(client):
    files = {"image": ("x.png", image_bytes(), "image/png")}
    response = client.post("/v1/inspections", data={"model": STRANGER}, files=files)
    assert "Use a pix2pix or U-Net GAN model" in expect_error(response, 422, "not_inspectable")
