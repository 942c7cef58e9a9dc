"""The family table (`core.families`) is the one place a family is defined; the rest derive."""

from __future__ import annotations

import ast
from pathlib import Path

import models
from core.families import FAMILIES, FAMILY_TABLE, INSPECTABLE_FAMILIES, FamilyName
from ganserve.demo_models import DEMOS
from training.demo import DEMOS as DEMO_DATASETS
from training.families import training_family

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
    "training/evaluate.py": "pix2pix is evaluated on pairs, the others on samples",
    "service/api/routes/inspections.py": "pix2pix's discriminator judges a pair (needs `input`)",
    "workers/inspection.py": "pix2pix's discriminator judges a pair (needs `input`)",
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
