"""The pretrained demo models that ship in `ganserve/demo_weights/`: small, half precision, with
cards that say how they were made, and loadable as any model folder."""

import json

import pytest
from safetensors import safe_open

import models
from core.model_folder import CONFIG_FILE, DISCRIMINATOR_FILE, WEIGHTS_FILE
from ganserve.demo_models import DEMOS, WEIGHTS_DIR

MAX_BYTES = 40 * 1024 * 1024  # issue 25: at most 40 MB in all


def test_the_shipped_weights_fit_in_40_mb():
    size = sum(p.stat().st_size for p in WEIGHTS_DIR.rglob("*") if p.is_file())
    assert 0 < size <= MAX_BYTES, size


@pytest.mark.parametrize("demo", DEMOS, ids=lambda d: d.name)
def test_each_demo_ships_a_checked_half_precision_model_with_its_recipe(demo):
    folder = WEIGHTS_DIR / demo.name
    card = models.check_card(folder)  # family, task, sizes and tensors agree with the weights
    assert card.family == demo.family
    for name in (WEIGHTS_FILE, DISCRIMINATOR_FILE):
        with safe_open(folder / name, framework="pt") as weights:
            dtypes = {str(weights.get_slice(k).get_dtype()) for k in weights.keys()}  # noqa: SIM118
        assert "F32" not in dtypes and "F16" in dtypes, (name, dtypes)
    generator = models.load(folder)
    assert next(generator.parameters()).dtype.is_floating_point
    models.load_discriminator(folder)
    recipe = json.loads((folder / CONFIG_FILE).read_text())["provenance"]["demo"]
    assert recipe["command"].startswith(".venv/bin/python -m training ")
    assert f"training {demo.family} " in recipe["command"]
    assert recipe["steps"] > 0 and recipe["seed"] == 0 and recipe["training_seconds"] > 0
