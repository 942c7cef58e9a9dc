"""Images per second of the inference networks: eager fp32 against the fast path and compile.

What the infer worker computes (`workers.fast_path`): pix2pix's unet_256 at 256 px through
`models.test_time` (per-sample norm, seeded dropout) and each sampling generator at the demo
models' sizes through `models.sampling.generate`, at batch 1, 8 and 32, in three settings:

- `eager fp32`: the baseline;
- `fast`: bf16 autocast (plus channels_last on CUDA), what `GANSERVE_PRECISION=auto` picks on
  CUDA and on CPUs with native bf16;
- `compile`: the fast path under `torch.compile` (one graph per batch size).

Ratios are against eager fp32 at batch 1 (images/s), measured in the same process.

    .venv/bin/python benchmarks/infer.py                      # all networks, batches 1 8 32
    .venv/bin/python benchmarks/infer.py --networks unet_256 --batches 1 8 --no-compile
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

import models
from models.sampling import generate
from models.test_time import TestTimeRun, draw_masks, forward
from workers.fast_path import FastPath

NETWORKS: dict[str, tuple[str, dict]] = {
    "unet_256": ("pix2pix-generator", {}),
    "unetgan_digits": (
        "unetgan-generator",
        {"image_size": 32, "channels": 1, "width": 32, "latent_dim": 64, "num_classes": 10},
    ),
    "pggan_faces": (
        "pggan-generator",
        {"max_resolution": 32, "fmap_base": 512, "fmap_max": 64, "latent_dim": 64},
    ),
}


def runner(network: torch.nn.Module, batch: int, device: torch.device) -> Callable[[], object]:
    """A function that runs one batch through `network` as the worker does."""
    if isinstance(network, models.pix2pix.Pix2PixGenerator):
        size = network.config.image_size
        x = torch.rand(batch, network.config.in_channels, size, size, device=device) * 2 - 1
        masks = draw_masks(network, list(range(batch)), (size, size))

        def translate() -> object:
            return forward(network, x, TestTimeRun((size, size), masks))

        return translate
    z = torch.randn(batch, network.config.latent_dim)
    y = torch.randint(network.config.num_classes, (batch,)) if network.config.num_classes else None
    return lambda: generate(network, z, y)


def images_per_second(run: Callable[[], object], batch: int, seconds: float, cuda: bool) -> float:
    """Throughput of `run` after two warm-up calls, over at least `seconds` (and 3 calls)."""
    for _ in range(2):
        run()
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        run()
        if cuda:
            torch.cuda.synchronize()
        calls += 1
    return calls * batch / (time.perf_counter() - start)


def main() -> None:
    """Print images/s per network, setting and batch size, and the ratios to eager fp32."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", choices=sorted(NETWORKS), default=list(NETWORKS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile setting")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    settings = [("eager fp32", "fp32", False), ("fast", "bf16", False)]
    if not args.no_compile:
        settings.append(("compile", "bf16", True))
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'network':16} {'setting':11} {'batch':>5} {'images/s':>10} {'x eager b1':>10}")
    for name in args.networks:
        architecture, config = NETWORKS[name]
        torch.manual_seed(0)
        baseline = None
        for label, precision, compiled in settings:
            network = models.create(architecture, **config).to(device)
            path = FastPath(device, precision=precision, compile=compiled)
            network = path.prepare(network)
            for batch in args.batches:
                run = runner(network, batch, device)
                if compiled:
                    run = path.compiled(network, f"batch {batch}", run)
                with torch.no_grad(), path.autocast():
                    rate = images_per_second(run, batch, args.seconds, device.type == "cuda")
                if baseline is None:
                    baseline = rate
                print(
                    f"{name:16} {label:11} {batch:>5} {rate:>10.1f} {rate / baseline:>9.2f}x",
                    flush=True,
                )


if __name__ == "__main__":
    main()
