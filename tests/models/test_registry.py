"""The `models.create` / `models.list_models` API."""

import pytest

import models


def test_list_models_names_every_family():
    assert models.list_models() == [
        "pggan-discriminator",
        "pggan-generator",
        "pix2pix-discriminator",
        "pix2pix-generator",
        "unetgan-discriminator",
        "unetgan-generator",
    ]


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown model 'stylegan'.*pix2pix-generator"):
        models.create("stylegan")


def test_unknown_config_field_is_named():
    with pytest.raises(ValueError, match="no config field.*colour.*valid fields.*image_size"):
        models.create("pix2pix-generator", colour=3)


def test_architecture_metadata():
    arch = models.get_architecture("unetgan-generator")
    assert (arch.family, arch.role, arch.task) == ("unetgan", "generator", "sample")
    assert models.get_architecture("pix2pix-generator").task == "translate"
    g = models.create("pix2pix-generator", image_size=32, base_width=4)
    assert models.architecture_of(g).name == "pix2pix-generator"
