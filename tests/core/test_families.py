"""The family table (`core.families`) is the one place a family is defined; the rest derive."""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import models
from core.families import (
    CAPABILITIES,
    FAMILIES,
    FAMILY_TABLE,
    Family,
    FamilyName,
    titles,
)
from ganserve.demo_models import DEMOS
from models.family import load_families
from training.demo import DEMOS as DEMO_DATASETS
from training.families import training_family

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "models", "training", "service", "workers", "ganserve")
# Where a family's name may appear as a string in the code, and why. A new place that names a
# family restates the table: derive from `core.families` instead, or say here why it must.
NAMED_IN = {
    "core/families.py": "the table itself",
    "models/pix2pix/networks.py": "the architectures of the family they implement",
    "models/unetgan/networks.py": "the architectures of the family they implement",
    "models/pggan/networks.py": "the architectures of the family they implement",
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
    assert all(training_family(name).name == name for name in names)  # training implements each
    assert names == {models.get_architecture(a).family for a in models.list_models()}
    assert names == {member.value for member in FamilyName}  # the API's enum
    assert [demo.family for demo in DEMOS] == [f.name for f in FAMILY_TABLE]  # a demo each
    assert all(f.demo.dataset in DEMO_DATASETS for f in FAMILY_TABLE)
    assert list(load_families()) == list(FAMILIES)  # models: hooks each
    assert not FAMILIES["pggan"].inspectable  # its WGAN critic draws no map


def test_tasks_match_the_architectures():
    for family in FAMILY_TABLE:
        tasks = {
            models.get_architecture(a).task
            for a in models.list_models()
            if models.get_architecture(a).family == family.name
        }
        assert family.task in tasks


def run_python(code: str, modules: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter with GANSERVE_FAMILY_MODULES set to `modules`."""
    env = {**os.environ, "GANSERVE_FAMILY_MODULES": modules, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )


def test_an_added_family_joins_the_table_without_torch():
    code = (
        "import sys; from core.families import FAMILIES, FamilyName; "
        "print(*FAMILIES, FamilyName.toy.value, 'torch' in sys.modules)"
    )
    done = run_python(code, "tests.toy_family.row")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["pix2pix", "unetgan", "pggan", "toy", "toy", "False"]


def test_a_bad_family_module_is_refused_with_its_name():
    done = run_python("import core.families", "tests.no_such_module")
    assert done.returncode != 0
    assert "GANSERVE_FAMILY_MODULES names 'tests.no_such_module'" in done.stderr
    twice = run_python("import core.families", "tests.toy_family.row,tests.toy_family.row")
    assert "must be a Family with a new name" in twice.stderr


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


def test_the_flags_fit_the_task():
    for family in FAMILY_TABLE:
        assert not family.paired_discriminator or family.task == "translate"
        assert not (family.filterable or family.projectable) or family.task == "sample"


def test_titles_read_as_prose():
    assert titles([]) == ""
    assert titles(FAMILY_TABLE[:1]) == "pix2pix"
    assert titles(FAMILY_TABLE[:2]) == "pix2pix or U-Net GAN"
    assert titles(FAMILY_TABLE) == "pix2pix, U-Net GAN or Progressive GAN"
