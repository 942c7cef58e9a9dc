"""Ship the demo models: each trained run's model folder written into `ganserve/demo_weights/`.

The weights (generator and discriminator) are stored as half-precision safetensors, which a
worker loads into its fp32 networks as any model folder. The card keeps the network's
description and records how the weights were made (`provenance.demo`: the exact command of
`benchmarks/train_demo_models.sh`, the steps, the seed, the training time, the machine) and
the figures `benchmarks/demo_quality.py` measures on the shipped (half-precision) weights, exactly
as jobs compute them. A fresh `make run` registers these folders (`ganserve.demo_models`).

    benchmarks/train_demo_models.sh                                  # trains into var/demo-train
    .venv/bin/python benchmarks/ship_demo_models.py --runs var/demo-train/runs [--demo digits]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from demo_quality import evaluate
from safetensors.torch import load_file, save_file

import models
from core.model_folder import (
    CONFIG_FILE,
    DISCRIMINATOR_FILE,
    WEIGHTS_FILE,
    card_text,
    read_card_json,
)
from ganserve.demo_models import DEMOS, WEIGHTS_DIR


def _cpu() -> str:
    """The CPU's model name and whether it computes bf16 natively."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next(
        (
            line.split(":", 1)[1].strip()
            for line in info.splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    bf16 = "amx_bf16" in info or "avx512_bf16" in info
    return f"{name}{' (native bf16)' if bf16 else ''}"


def _half(source: Path, target: Path) -> None:
    """A safetensors file with its floating-point tensors in float16."""
    tensors = load_file(source)
    halved = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    save_file(halved, target, metadata={"dtype": "float16"})


def ship(demo_name: str, run: Path) -> dict:
    """Write the run's model as the shipped demo `demo_name`; its card."""
    demo = next(d for d in DEMOS if d.name == demo_name)
    source = run / "model"
    recipe = json.loads((run / "recipe.json").read_text())
    options = json.loads((run / "options.json").read_text())
    card = read_card_json(source)
    out = WEIGHTS_DIR / demo.name
    out.mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS_FILE, DISCRIMINATOR_FILE):
        if (source / name).is_file():
            _half(source / name, out / name)
    # a run in stages records the steps of all of them (its last stage's card, only its own)
    steps = recipe.get("steps") or (card.get("provenance") or {}).get("step")
    card["provenance"] = {
        "name": demo.name,
        "demo": {
            "command": recipe["command"],
            "steps": steps,
            "seed": options.get("seed", 0),
            "training_seconds": recipe["seconds"],
            "threads": int(os.environ.get("OMP_NUM_THREADS", "1")),
            "machine": _cpu(),
            "trained": time.strftime(
                "%Y-%m-%d", time.gmtime((source / WEIGHTS_FILE).stat().st_mtime)
            ),
            "dataset": f"training.demo {demo.name!r} (seed 0)",
            "weights": "float16",
        },
    }
    card["metrics"] = {}
    (out / CONFIG_FILE).write_text(card_text(card))
    figures = evaluate(demo, models.load(out), run.parent.parent / "data" / demo.name)
    card["metrics"] = {k: v for k, v in figures.items() if isinstance(v, int | float | bool)}
    (out / CONFIG_FILE).write_text(card_text(card))
    return card


def main() -> None:
    """Ship the chosen demos' runs and print each one's size and figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("var/demo-train/runs"))
    parser.add_argument("--demo", action="append", help="which demo (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for demo in DEMOS:
        if args.demo and demo.name not in args.demo:
            continue
        card = ship(demo.name, args.runs / demo.name)
        size = sum(p.stat().st_size for p in (WEIGHTS_DIR / demo.name).iterdir())
        print(json.dumps({"demo": demo.name, "bytes": size, **card["metrics"]}), flush=True)


if __name__ == "__main__":
    main()
