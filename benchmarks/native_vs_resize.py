"""Full-resolution (`native`) translation against `resize`, on held-out pairs at 2x and 4x the
model's training size.

Trains a pix2pix model on the `labels2photo` demo at 64 px on crops (pairs rendered at 256 px,
resized to 128 and cropped at random to 64, so the network learns the scale of 128-pixel
images), then translates the held-out `val/` pairs at 128 px (2x) and 256 px (4x) exactly as a
translation job does in each mode (`training.metrics.generator_metrics.translate_as_served`:
native at the image's own resolution, or squeezed to 64 px and stretched back; PNG-quantised)
and prints L1, PSNR and SSIM against the targets. Writes a side-by-side picture of one pair at
256 px (input | resize | native | target).

    .venv/bin/python benchmarks/native_vs_resize.py                 # about 6 minutes on 2 cores
    .venv/bin/python benchmarks/native_vs_resize.py --steps 500 --picture /tmp/side.png
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

import models
from models.images import to_pil
from training.data import PairedDataset, collate
from training.demo import build_demo
from training.families.pix2pix import Pix2PixConfig
from training.loop import RunOptions, train
from training.metrics.generator_metrics import translate_as_served, translation_metrics

TRAIN_SIZE, LOAD_SIZE = 64, 128
SIZES = (128, 256)  # 2x and 4x the training size


def side_by_side(generator: torch.nn.Module, data: Path, path: Path) -> None:
    """Input | resize | native | target of the first val pair at 256 px, captioned."""
    pairs = PairedDataset(data, image_size=256, split="val", augment=False)
    pair = collate([pairs.get(0, torch.Generator().manual_seed(0))])
    a, b = pair["A"], pair["B"]
    panels = [
        ("input", a),
        ("resize", translate_as_served(generator, a, 0, "resize", 2048 * 2048)),
        ("native", translate_as_served(generator, a, 0, "native", 2048 * 2048)),
        ("target", b),
    ]
    canvas = Image.new("RGB", (4 * 256 + 3 * 8, 256 + 20), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (label, image) in enumerate(panels):
        canvas.paste(to_pil(image[0]).convert("RGB"), (k * 264, 20))
        draw.text((k * 264 + 4, 4), label, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def main() -> None:
    """Train, evaluate both modes at both sizes, print the table, write the picture."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3000, help="training steps (batch 4)")
    parser.add_argument("--width", type=int, default=32, help="pix2pix base width")
    parser.add_argument("--picture", type=Path, default=Path("docs/demo/native_vs_resize.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = build_demo("labels2photo", Path(tmp) / "data", size=256)
        started = time.perf_counter()
        run = train(
            "pix2pix",
            RunOptions(
                data=data,
                out=Path(tmp) / "run",
                image_size=TRAIN_SIZE,
                batch_size=4,
                steps=args.steps,
                device="cpu",
                progress_bar=False,
                sample_every=args.steps,
                checkpoint_every=args.steps,
            ),
            Pix2PixConfig(width=args.width, load_size=LOAD_SIZE),
        )
        trained = time.perf_counter() - started
        generator = models.load(run.model_dir)
        print(
            f"pix2pix width {args.width}, trained {args.steps} steps at {TRAIN_SIZE} px on crops "
            f"of {LOAD_SIZE} px labels2photo pairs ({trained:.0f} s)"
        )
        print(f"{'size':>5} {'mode':7} {'pairs':>5} {'L1':>7} {'PSNR':>7} {'SSIM':>6}")
        for size in SIZES:
            pairs = PairedDataset(data, image_size=size, split="val", augment=False)
            for mode in ("resize", "native"):
                m = translation_metrics(generator, pairs, mode=mode)
                print(
                    f"{size:>5} {mode:7} {int(m['pairs']):>5} {m['l1']:7.4f} "
                    f"{m['psnr']:7.2f} {m['ssim']:6.3f}",
                    flush=True,
                )
        side_by_side(generator, data, args.picture)
        print(f"side-by-side picture: {args.picture}")


if __name__ == "__main__":
    main()
