"""Images per second of the inference networks: eager fp32 against the fast path, compile and
CUDA graphs.

What the infer worker computes (`workers.fast_path`): pix2pix's unet_256 at 256 px through
`models.pix2pix.translation` (per-sample norm, seeded dropout; the input and its dropout masks
already on the device) and each sampling generator at the demo models' sizes through
`models.sampling.generate`, at batch 1, 8 and 32, in up to four settings:

- `eager-fp32`: the baseline;
- `fast`: bf16 autocast (plus channels_last on CUDA), what `GANSERVE_PRECISION=auto` picks on
  CUDA and on CPUs with native bf16;
- `compile`: the fast path under `torch.compile` (`GANSERVE_COMPILE=1`);
- `reduce-overhead`: the fast path under `torch.compile(mode="reduce-overhead")`, CUDA graphs
  (`GANSERVE_COMPILE=reduce-overhead`; CUDA only).

Ratios are against eager fp32 at the first batch size (images/s), measured in the same process.
Each compiled setting prints its first call's seconds (the compile, and on CUDA the graph's
recording), which every worker process pays once per model and batch bucket. `--worker` adds,
for pix2pix, the worker's whole batch call (`workers.inference.translate_batch`: inputs from the
host through pinned memory, dropout masks drawn on the CPU and copied, results back in host
memory) beside the bare network.

    .venv/bin/python benchmarks/infer.py                      # all networks, batches 1 8 32
    .venv/bin/python benchmarks/infer.py --networks unet_256 --batches 1 8 --no-compile
    .venv/bin/python benchmarks/infer.py --networks unet_256 --batches 32 --worker --device cuda
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

import models
from models.pix2pix.networks import Pix2PixGenerator
from models.pix2pix.translation import TestTimeRun, draw_masks, forward
from models.sampling import generate
from workers import inference
from workers.fast_path import FastPath

SETTINGS: dict[str, tuple[str, str | None]] = {  # name: (precision, compile mode)
    "eager-fp32": ("fp32", None),
    "fast": ("bf16", None),
    "compile": ("bf16", "default"),
    "reduce-overhead": ("bf16", "reduce-overhead"),
}

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


def runner(network: torch.nn.Module, batch: int, path: FastPath) -> Callable[[], object]:
    """A function that runs one batch through `network` as the worker does (compiled as the
    worker compiles it when `path` compiles)."""
    device = path.device
    if isinstance(network, Pix2PixGenerator):
        size = network.config.image_size
        x = torch.rand(batch, network.config.in_channels, size, size, device=device) * 2 - 1
        masks = [m.to(device) for m in draw_masks(network, list(range(batch)), (size, size))]

        def translate(x: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
            return forward(network, x, TestTimeRun((x.shape[-2], x.shape[-1]), masks))

        run = path.compiled(network, "translate", translate)  # the worker's cache entry
        return lambda: run(x, masks)
    z = torch.randn(batch, network.config.latent_dim)
    y = torch.randint(network.config.num_classes, (batch,)) if network.config.num_classes else None
    sampler = path.sampler(network)
    return lambda: generate(sampler, z, y)


def worker_call(network: torch.nn.Module, batch: int, path: FastPath) -> Callable[[], object]:
    """The infer worker's whole batch call for pix2pix: CPU inputs to the device, masks drawn
    and copied, the pass, the results back on the host."""
    size = network.config.image_size
    parts = [torch.rand(1, network.config.in_channels, size, size) * 2 - 1 for _ in range(batch)]
    seeds = list(range(batch))
    return lambda: inference.translate_batch(network, path.io.batch_to_device(parts), seeds, path)


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


def timed(run: Callable[[], object], batch: int, args: argparse.Namespace) -> tuple[float, float]:
    """(seconds of the first call, images/s after it) of `run` on the benchmark's device."""
    cuda = args.device.startswith("cuda")
    start = time.perf_counter()
    run()
    if cuda:
        torch.cuda.synchronize()
    first = time.perf_counter() - start
    return first, images_per_second(run, batch, args.seconds, cuda)


def main() -> None:
    """Print images/s per network, setting and batch size, and the ratios to eager fp32."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", choices=sorted(NETWORKS), default=list(NETWORKS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--settings",
        nargs="+",
        choices=list(SETTINGS),
        help="default: all (reduce-overhead on CUDA only)",
    )
    parser.add_argument("--no-compile", action="store_true", help="no compiled setting")
    parser.add_argument(
        "--worker", action="store_true", help="pix2pix: also time the worker's whole batch call"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    names = args.settings or [
        name for name in SETTINGS if name != "reduce-overhead" or device.type == "cuda"
    ]
    if args.no_compile:
        names = [name for name in names if SETTINGS[name][1] is None]
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    worker_column = f" {'worker call':>11}" if args.worker else ""
    print(
        f"{'network':16} {'setting':15} {'batch':>5} {'first s':>8} {'images/s':>10} "
        f"{'x baseline':>10}{worker_column}"
    )
    for name in args.networks:
        architecture, config = NETWORKS[name]
        baseline = None
        for label in names:
            precision, mode = SETTINGS[label]
            torch.manual_seed(0)
            path = FastPath(device, precision=precision, compile=mode)
            network = path.prepare(models.create(architecture, **config).to(device).eval())
            for batch in args.batches:
                with torch.no_grad(), path.autocast():
                    first, rate = timed(runner(network, batch, path), batch, args)
                    call = ""
                    if args.worker and architecture == "pix2pix-generator":
                        _, whole = timed(worker_call(network, batch, path), batch, args)
                        call = f" {whole:>11.1f}"
                baseline = baseline or rate
                print(
                    f"{name:16} {label:15} {batch:>5} {first:>8.2f} {rate:>10.1f} "
                    f"{rate / baseline:>9.2f}x{call}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
