"""Time per training iteration of each GAN family, fast path against a plain fp32 baseline.

The fast path is bf16 autocast (plus channels_last and cudnn.benchmark on CUDA), forced on
whatever the hardware; the baseline is the same networks, data and loop in fp32, contiguous
layout, cudnn.benchmark off, in the same process. The last column says what `python -m training`
picks by default on this machine (`models.precision`): bf16 on CUDA and on CPUs with native
bf16 (AMX / AVX512-BF16), fp32 elsewhere, where emulated bf16 is much slower.

    .venv/bin/python benchmarks/train_step.py                 # small configs (CPU-friendly)
    .venv/bin/python benchmarks/train_step.py --paper         # the papers' sizes (use a GPU)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from models.precision import use_autocast
from training.demo import build_demo
from training.families.pggan import PGGANConfig
from training.families.pix2pix import Pix2PixConfig
from training.families.unetgan import UNetGANConfig
from training.loop import RunOptions, Trainer

# family -> (demo, image size, batch, config) for the small and the paper setting
SMALL = {
    "pix2pix": ("edges2photo", 64, 4, Pix2PixConfig(width=32)),
    "unetgan": ("digits", 32, 16, UNetGANConfig(width=16)),
    "pggan": ("faces", 32, 16, PGGANConfig(fmap_base=512, fmap_max=64, latent_dim=64)),
}
PAPER = {
    "pix2pix": ("edges2photo", 256, 1, Pix2PixConfig()),
    "unetgan": ("faces", 128, 50, UNetGANConfig()),
    "pggan": ("faces", 128, 16, PGGANConfig(phase_images=1_000_000)),
}


def time_steps(trainer: Trainer, warmup: int, steps: int) -> list[float]:
    """Seconds per iteration over `steps` iterations after `warmup` untimed ones."""
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        trainer.train_step()
    times = []
    for _ in range(steps):
        sync()
        start = time.perf_counter()
        trainer.train_step()
        sync()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    """Print ms/iteration per family for both paths and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper", action="store_true", help="the papers' sizes")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--families", default="pix2pix,unetgan,pggan")
    args = parser.parse_args()
    settings = PAPER if args.paper else SMALL
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
        print(
            f"{'family':8} {'size':>5} {'batch':>5} {'device':>7} "
            f"{'bf16 ms':>9} {'fp32 ms':>9} {'speed-up':>8} default"
        )
        for family in args.families.split(","):
            demo, size, batch, config = settings[family]
            data = root / demo
            if not data.exists():
                build_demo(demo, data, size=max(size, 32) if demo != "faces" else size)
            results = {}
            for path, fast in (("fast", True), ("fp32", False)):
                options = RunOptions(
                    data=data,
                    out=root / f"{family}-{path}",
                    image_size=size,
                    batch_size=batch,
                    device=args.device,
                    amp=fast,
                    channels_last=fast,
                    progress_bar=False,
                    steps=10**6,
                )
                trainer = Trainer(family, options, config)
                trainer.amp = fast  # forced, to measure it where the default would not use it
                if family == "pggan":  # time the final resolution, fully grown
                    trainer.step = trainer.total - args.warmup - args.steps - 1
                torch.backends.cudnn.benchmark = fast
                results[path] = statistics.median(time_steps(trainer, args.warmup, args.steps))
            print(
                f"{family:8} {size:5d} {batch:5d} {trainer.device.type:>7} "
                f"{results['fast'] * 1e3:9.1f} {results['fp32'] * 1e3:9.1f} "
                f"{results['fp32'] / results['fast']:7.2f}x "
                f"{'bf16' if use_autocast(trainer.device, True) else 'fp32'}"
            )


if __name__ == "__main__":
    main()
