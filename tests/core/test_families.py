"""The family table (`core.families`) is the one place a family is defined; the rest derive."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import models
from core.families import FAMILIES, FAMILY_TABLE, INSPECTABLE_FAMILIES, FamilyName
from ganserve.demo_models import DEMOS
from models.family import load_families
from training.demo import DEMOS as DEMO_DATASETS
from training.families import FAMILIES as TRAINED

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "models", "training", "service", "workers", "ganserve")
# Where a family's name may appear as a string in the code, and why. A new place that names a
# family restates the table: derive from `core.families` instead, or say here why it must.
NAMED_IN = {
    "core/families.py": "the table itself",
    "models/pix2pix/networks.py": "the architectures of the family they implement",
    "models/unetgan/networks.py": "the architectures of the family they implement",
    "models/pggan/networks.py": "the architectures of the family they implement",
    "models/pix2pix/hooks.py": "the family's own hooks (its title in messages)",
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
    assert names == set(TRAINED)  # training implements each
    assert names == {models.get_architecture(a).family for a in models.list_models()}
    assert names == {member.value for member in FamilyName}  # the API's enum
    assert [demo.family for demo in DEMOS] == [f.name for f in FAMILY_TABLE]  # a demo each
    assert all(f.demo.dataset in DEMO_DATASETS for f in FAMILY_TABLE)
    assert list(load_families()) == list(FAMILIES)  # models: hooks each
    assert "pggan" not in INSPECTABLE_FAMILIES  # its WGAN critic draws no map


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
    assert done.stdout.split() == [
        "['pix2pix',",
        "'unetgan',",
        "'pggan',",
        "'toy']",
        "toy",
        "False",
    ]


def test_a_bad_family_module_is_refused_with_its_name():
    done = run_python("import core.families", "tests.no_such_module")
    assert done.returncode != 0
    assert "GANSERVE_FAMILY_MODULES names 'tests.no_such_module'" in done.stderr
    twice = run_python("import core.families", "tests.toy_family.row,tests.toy_family.row")
    assert "must be a Family with a new name" in twice.stderr
