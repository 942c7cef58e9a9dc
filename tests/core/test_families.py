"""The family table (`core.families`) is the one place a family is defined; the rest derive."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import models
from core.families import (
    CAPABILITIES,
    FAMILIES,
    FAMILY_TABLE,
    INSPECTABLE_FAMILIES,
    Family,
    FamilyName,
    titles,
)
from ganserve.demo_models import DEMOS
from training.demo import DEMOS as DEMO_DATASETS
from training.families import FAMILIES as TRAINED

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "models", "training", "service", "workers", "ganserve")
# Where a family's name may appear as a string in the code, and why. A new place that names a
# family restates the table: derive from `core.families` instead, or say here why it must.
NAMED_IN = {
    "core/families.py": "the table itself",
    "models/pix2pix.py": "the architectures of the family they implement",
    "models/unetgan.py": "the architectures of the family they implement",
    "models/pggan.py": "the architectures of the family they implement",
    "training/families/pix2pix.py": "the training of the family it implements",
    "training/families/unetgan.py": "the training of the family it implements",
    "training/families/pggan.py": "the training of the family it implements",
}


def family_literals(path: Path) -> int:
    """How many string constants in a Python file are exactly a family's name."""
    tree = ast.parse(path.read_text())
    return sum(isinstance(node, ast.Constant) and node.value in FAMILIES for node in ast.walk(tree))


def test_a_family_is_named_only_where_listed():
    named = {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if family_literals(path)
    }
    assert named == set(NAMED_IN), (
        f"new places naming a family: {sorted(named - set(NAMED_IN))}; "
        f"listed but no longer naming one: {sorted(set(NAMED_IN) - named)}"
    )


def test_every_layer_has_exactly_the_families_of_the_table():
    names = set(FAMILIES)
    assert names == set(TRAINED)  # training implements each
    assert names == {models.get_architecture(a).family for a in models.list_models()}
    assert names == {member.value for member in FamilyName}  # the API's enum
    assert [demo.family for demo in DEMOS] == [f.name for f in FAMILY_TABLE]
    assert all(f.demo.dataset in DEMO_DATASETS for f in FAMILY_TABLE)
    assert "pggan" not in INSPECTABLE_FAMILIES  # its WGAN critic draws no map


def test_tasks_match_the_architectures():
    for family in FAMILY_TABLE:
        tasks = {
            models.get_architecture(a).task
            for a in models.list_models()
            if models.get_architecture(a).family == family.name
        }
        assert family.task in tasks


# What each family's models can do, as the papers and this repository's networks say.
FLAGS = {
    "pix2pix": {
        "inspectable": True,  # PatchGAN: a map of patch scores
        "paired_discriminator": True,  # a conditional PatchGAN judges (A, B)
        "filterable": False,  # a translator draws no samples to filter
        "projectable": False,  # no latent space
        "exportable": True,
        "conditional": False,
    },
    "unetgan": {
        "inspectable": True,  # the U-Net discriminator's decoder map
        "paired_discriminator": False,
        "filterable": True,
        "projectable": True,
        "exportable": True,
        "conditional": True,  # BigGAN's class-conditional batch norm
    },
    "pggan": {
        "inspectable": False,  # its WGAN critic scores whole images only
        "paired_discriminator": False,
        "filterable": True,
        "projectable": True,
        "exportable": True,
        "conditional": False,  # models.pggan is unconditional
    },
}


def test_capability_flags_are_as_stated():
    assert set(FLAGS) == set(FAMILIES)
    for name, flags in FLAGS.items():
        assert {c: getattr(FAMILIES[name], c) for c in CAPABILITIES} == flags, name


def test_the_capabilities_are_the_boolean_fields_of_a_family():
    booleans = {f.name for f in dataclasses.fields(Family) if f.type == "bool"}
    assert booleans == set(CAPABILITIES)
    # a new row may leave a capability out: it defaults to false
    defaults = {f.name: f.default for f in dataclasses.fields(Family) if f.name in CAPABILITIES}
    assert defaults == dict.fromkeys(CAPABILITIES, False)


def test_derived_sets_follow_the_flags():
    assert {f.name for f in FAMILY_TABLE if f.inspectable} == INSPECTABLE_FAMILIES
    for family in FAMILY_TABLE:
        assert not family.paired_discriminator or family.task == "translate"
        assert not (family.filterable or family.projectable) or family.task == "sample"


def test_titles_read_as_prose():
    assert titles([]) == ""
    assert titles(FAMILY_TABLE[:1]) == "pix2pix"
    assert titles(FAMILY_TABLE[:2]) == "pix2pix or U-Net GAN"
    assert titles(FAMILY_TABLE) == "pix2pix, U-Net GAN or Progressive GAN"
