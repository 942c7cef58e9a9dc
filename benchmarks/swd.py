"""Throughput of the multi-scale sliced Wasserstein distance (training.metrics.swd).

Feeds `--images` real and as many fake images (random smooth fields, generated on the fly in
batches of `--batch`) at each resolution, with the paper's settings (128 7x7 neighbourhoods per
image per level, 4 x 128 directions), and prints images per second over both sets, the time
split between feeding (pyramid + descriptor extraction) and computing (projections, sorting),
the descriptor memory and the peak memory (CUDA: max allocated; CPU: the process's peak RSS so
far). Image generation is timed apart and left out of the rates; the process CPU time is printed
too.

    .venv/bin/python benchmarks/swd.py --images 2048               # CPU-friendly
    .venv/bin/python benchmarks/swd.py --device cuda               # 16384 images, 64 and 128 px
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
import torch.nn.functional as F

from training.metrics.swd import SWDAccumulator


def smooth_images(
    count: int, resolution: int, grid: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """(count, 3, R, R) uint8: a random grid x grid colour field, bilinearly upsampled, + noise."""
    coarse = torch.rand(count, 3, grid, grid, generator=generator) * 255  # (N, 3, g, g)
    noise = torch.randn(count, 3, resolution, resolution, generator=generator) * 4
    images = F.interpolate(coarse, size=resolution, mode="bilinear", align_corners=False)
    return (images + noise).round_().clamp_(0, 255).to(torch.uint8).to(device)


def run(resolution: int, images: int, batch: int, device: torch.device) -> dict[str, float]:
    """Feed `images` real and fake images at one resolution; timings and memory."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    acc = SWDAccumulator(resolution, seed=0, device=device)
    generators = {True: torch.Generator().manual_seed(1), False: torch.Generator().manual_seed(2)}
    grids = {True: 8, False: 6}  # the fake set is a little smoother: a non-zero distance
    generate = feed = 0.0
    cpu = time.process_time()
    for start in range(0, images, batch):
        count = min(batch, images - start)
        for real in (True, False):
            sync()
            t0 = time.perf_counter()
            pixels = smooth_images(count, resolution, grids[real], generators[real], device)
            sync()
            t1 = time.perf_counter()
            acc.add(pixels, real=real)
            sync()
            generate += t1 - t0
            feed += time.perf_counter() - t1
    t0 = time.perf_counter()
    result = acc.compute()
    sync()
    compute = time.perf_counter() - t0
    cpu = time.process_time() - cpu
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return {
        "feed": feed,
        "compute": compute,
        "generate": generate,
        "cpu": cpu,
        "descriptors": acc.descriptor_bytes,
        "peak": peak,
        "avg": result["avg"],
    }


def main() -> None:
    """Print one line per resolution."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--images", type=int, default=16384, help="per set (real and fake)")
    parser.add_argument("--resolutions", default="64,128")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"torch {torch.__version__}, device {device.type} ({name}), "
        f"threads {torch.get_num_threads()}, {args.images} real + {args.images} fake images, "
        f"batch {args.batch}"
    )
    print(
        f"{'res':>4} {'images/s':>9} {'total s':>8} {'feed s':>8} {'compute s':>9} "
        f"{'gen s':>6} {'CPU s':>7} {'descr MiB':>9} {'peak MiB':>9} {'SWD avg':>8}"
    )
    for resolution in (int(r) for r in args.resolutions.split(",")):
        r = run(resolution, args.images, args.batch, device)
        total = r["feed"] + r["compute"]
        print(
            f"{resolution:4d} {2 * args.images / total:9.1f} {total:8.1f} {r['feed']:8.1f} "
            f"{r['compute']:9.1f} {r['generate']:6.1f} {r['cpu']:7.1f} "
            f"{r['descriptors'] / 2**20:9.0f} {r['peak'] / 2**20:9.0f} {r['avg']:8.3f}"
        )
    print("CPU s: process CPU time of the whole run, generation included (wall times suffer when")
    print("other processes share the cores; CPU time does much less)")
    if device.type == "cpu":
        print("peak MiB on the CPU is the process's peak resident memory so far (ru_maxrss)")


if __name__ == "__main__":
    main()
