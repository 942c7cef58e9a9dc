"""Images/s of `ganserve translate` on a folder, beside the direct batched model call, in one run.

In `benchmarks/service.py`'s setting (a pix2pix generator, the paper's unet_256 at 256 px by
default, the real stack: embedded Redis, gateway, one worker per queue, the worker given the
torch threads of this process): 64 different 256x256 photo-like PNGs in a folder,

- direct: the worker's own translation code in-process (`workers.inference.translate_inputs`)
  on batches of the worker's largest batch (8 on a CPU, 32 on CUDA), the inputs prepared
  beforehand, as `benchmarks/service.py` times its direct batched model; measured right before
  each CLI run, so that each ratio compares two figures taken under the same background load;
- the CLI: `python -m ganserve translate <folder> --model ... --out <new folder> -j K` as a
  process, its wall time from start to exit (interpreter start, upload, queue, worker, PNGs
  written), once per concurrency K; also the command's own figure (its summary line, without
  the interpreter's start).

    .venv/bin/python benchmarks/cli_throughput.py                       # unet_256, K=16
    .venv/bin/python benchmarks/cli_throughput.py --width 16 --concurrency 4,8,16,32
"""

from __future__ import annotations

import argparse
import io
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

import models
from core.settings import Settings
from ganserve.client import Client
from ganserve.embedded_redis import free_port
from ganserve.file_translation import DEFAULT_CONCURRENCY
from ganserve.launcher import local_stack
from workers.inference import translate_inputs, translation_input
from workers.model_cache import LoadedModel

MODEL = "bench-p2p"
ROOT = Path(__file__).resolve().parents[1]
MAX_TILE_PIXELS = 2048 * 2048


def photo_png(seed: int, size: int = 256) -> bytes:
    """A photo-like PNG (a smooth random field), different for each seed."""
    small = np.random.default_rng(seed).integers(0, 256, (size // 16, size // 16, 3), np.uint8)
    image = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def direct_rate(loaded: LoadedModel, images: list[Image.Image], batch: int) -> float:
    """Images/s of the worker's batched translation call in-process (inputs prepared first)."""
    items = [
        translation_input(loaded, im, k, "native", MAX_TILE_PIXELS) for k, im in enumerate(images)
    ]
    translate_inputs(loaded, items[:batch], MAX_TILE_PIXELS)  # warm-up
    start = time.perf_counter()
    for first in range(0, len(items), batch):
        translate_inputs(loaded, items[first : first + batch], MAX_TILE_PIXELS)
    return len(items) / (time.perf_counter() - start)


def cli_rate(folder: Path, out: Path, url: str, concurrency: int) -> tuple[float, float, float]:
    """Images/s of one `ganserve translate` run: by its wall time and by its own summary; and
    the CPU seconds the command used."""
    env = {**os.environ, "GANSERVE_URL": url, "PYTHONPATH": str(ROOT)}
    env.pop("GANSERVE_API_KEY", None)
    command = [sys.executable, "-m", "ganserve", "translate", str(folder)]
    command += ["--model", MODEL, "--out", str(out), "--concurrency", str(concurrency)]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime
    if done.returncode != 0:
        raise RuntimeError(f"ganserve translate failed ({done.returncode}): {done.stderr}")
    written = len(list(out.rglob("*.png")))
    found = re.search(r"in ([0-9.]+) s \(([0-9.]+) images/s\)", done.stderr)
    return written / wall, float(found[2]) if found else float("nan"), cpu


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=64, help="pix2pix base width (64: paper)")
    parser.add_argument("--images", type=int, default=64, help="images in the folder")
    parser.add_argument(
        "--concurrency",
        default=str(DEFAULT_CONCURRENCY),
        help="comma-separated values of the CLI's --concurrency to time",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of the CLI per value")
    args = parser.parse_args()
    levels = [int(k) for k in args.concurrency.split(",")]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch = 32 if device.type == "cuda" else 8  # the infer worker's default largest batch
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "inputs"
        folder.mkdir()
        for k in range(args.images):
            (folder / f"{k:03d}.png").write_bytes(photo_png(k))
        images = [Image.open(p).convert("RGB") for p in sorted(folder.iterdir())]
        data_dir = root / "data"
        generator = models.create("pix2pix-generator", image_size=256, base_width=args.width)
        models.save(generator, data_dir / "models" / MODEL)
        folder_of_model = data_dir / "models" / MODEL
        loaded = LoadedModel(
            MODEL, models.load(folder_of_model), models.read_card(folder_of_model), device
        )
        settings = Settings(data_dir=data_dir, port=free_port(), redis_url=None)
        env = {"GANSERVE_TORCH_THREADS": str(torch.get_num_threads())}
        pairs: dict[int, list[tuple[float, float, float, float]]] = {}
        with local_stack(settings, env) as running, Client(running.url, timeout=300) as client:
            deadline = time.monotonic() + 120
            while httpx.get(f"{running.url}/readyz", timeout=30).status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("the workers did not come up")
                time.sleep(0.5)
            client.translate(folder / "000.png", MODEL)  # warm-up: the worker loads the model
            for round_ in range(args.repeat):
                for k in levels:  # each CLI run right after its own direct measurement
                    direct = direct_rate(loaded, images, batch)
                    out = root / f"out-{k}-{round_}"
                    pairs.setdefault(k, []).append((direct, *cli_rate(folder, out, running.url, k)))
    print(
        f"pix2pix 256x256, base width {args.width}, {args.images} images, {device.type}, "
        f"torch threads {torch.get_num_threads()}, direct batches of {batch}"
    )
    every = [p[0] for runs in pairs.values() for p in runs]
    print(
        f"  direct batched model  : {statistics.mean(every):6.2f} images/s (mean of {len(every)})"
    )
    for k, runs in pairs.items():
        ratios = [wall / direct for direct, wall, _, _ in runs]
        own = [mine / direct for direct, _, mine, _ in runs]
        print(
            f"  ganserve translate -j {k:<3}: {statistics.mean(r[1] for r in runs):6.2f} images/s "
            f"(direct beside it {statistics.mean(r[0] for r in runs):.2f}): "
            f"x{statistics.mean(ratios):.2f} the direct batched model "
            f"(runs {', '.join(f'x{r:.2f}' for r in ratios)}); "
            f"without the interpreter's start x{statistics.mean(own):.2f}; "
            f"CPU of the command {statistics.mean(r[3] for r in runs):.1f} s"
        )


if __name__ == "__main__":
    main()
