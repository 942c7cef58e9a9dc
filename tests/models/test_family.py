"""The family hooks (`models.family`): one registry, reached through a network's family."""

import pytest
import torch

import models
from core.families import FAMILIES
from models.discriminator_filter import realness_scores, top_filter
from models.family import (
    FamilyHooks,
    Unsupported,
    hooks_named,
    hooks_of,
    load_families,
    overrides,
)
from models.onnx_export import ExportError, export_model
from models.projection import project
from models.realness import NoRealnessMap, realness_batch


def test_every_family_of_the_table_has_hooks_in_its_package():
    hooks = load_families()
    assert list(hooks) == list(FAMILIES)
    for name, family_hooks in hooks.items():
        assert isinstance(family_hooks, FamilyHooks)
        assert type(family_hooks).__module__ == f"{FAMILIES[name].models_package}.hooks"


def test_a_network_reaches_its_own_familys_hooks():
    for name in models.list_models():
        arch = models.get_architecture(name)
        network = models.create(name, **SMALL[name])
        assert hooks_of(network) is hooks_named(arch.family)


SMALL = {
    "pix2pix-generator": {"image_size": 8, "base_width": 2},
    "pix2pix-discriminator": {"base_width": 2, "patch": 1},
    "unetgan-generator": {"image_size": 32, "width": 4},
    "unetgan-discriminator": {"image_size": 32, "width": 4},
    "pggan-generator": {"max_resolution": 8, "fmap_base": 16},
    "pggan-discriminator": {"max_resolution": 8, "fmap_base": 16},
}


def test_unknown_families_and_modules_are_refused():
    with pytest.raises(ValueError, match="unknown family 'nope'; known: pix2pix"):
        hooks_named("nope")
    with pytest.raises(Unsupported, match="Linear is not a registered ganserve network"):
        hooks_of(torch.nn.Linear(2, 2))


def test_a_missing_capability_names_the_families_that_have_it(tmp_path):
    critic = models.create("pggan-discriminator", max_resolution=8, fmap_base=16)
    with pytest.raises(NoRealnessMap, match="pix2pix or U-Net GAN discriminators do"):
        realness_batch(critic, torch.zeros(1, 3, 8, 8), None, [None])
    patch = models.create("pix2pix-discriminator", **SMALL["pix2pix-discriminator"])
    with pytest.raises(ValueError, match="need a U-Net GAN or Progressive GAN discriminator"):
        realness_scores(patch, torch.zeros(1, 3, 8, 8), None)
    with pytest.raises(ExportError, match="only the generators .*pix2pix-generator"):
        export_model(patch, tmp_path / "d.onnx")
    assert not (tmp_path / "d.onnx").exists()


# A capability flag of the table and the hook(s) that serve it.
FLAG_HOOKS = {
    "inspectable": ("realness",),
    "filterable": ("scorer", "image_shape"),
    "projectable": ("image_shape",),
    "exportable": ("onnx_graph",),
}


def test_the_flags_of_the_table_and_the_hooks_agree():
    for name, family_hooks in load_families().items():
        for flag, hooks in FLAG_HOOKS.items():
            implemented = all(overrides(family_hooks, hook) for hook in hooks)
            assert getattr(FAMILIES[name], flag) == implemented, (name, flag)


def test_a_network_of_the_other_role_is_refused_clearly():
    generator = models.create("unetgan-generator", **SMALL["unetgan-generator"])
    discriminator = models.create("unetgan-discriminator", **SMALL["unetgan-discriminator"])
    with pytest.raises(Unsupported, match="unetgan-generator is a generator, not a discriminator"):
        hooks_of(generator, "discriminator")
    with pytest.raises(NoRealnessMap, match="is a generator, not a discriminator"):
        realness_batch(generator, torch.zeros(1, 3, 32, 32), None, [None])
    with pytest.raises(ValueError, match="realness scores need"):
        realness_scores(generator, torch.zeros(1, 3, 32, 32), None)
    with pytest.raises(ValueError, match="discriminator-guided sampling needs"):
        top_filter(discriminator, discriminator, count=1, seed=0)
    with pytest.raises(ValueError, match="projection needs a sampling generator"):
        project(discriminator, torch.zeros(1, 3, 32, 32), steps=1, seed=0)
