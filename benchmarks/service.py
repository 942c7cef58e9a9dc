"""End-to-end latency and throughput of translations through the running stack.

Starts the real stack (embedded Redis, gateway, one worker per queue) on a temporary storage
root with a pix2pix model, then measures:

- (a) one client, sequential 256x256 translations: upload, queue, worker, result PNG fetched
  (p50/p95), beside the same model called directly in-process (`workers.inference`, the
  worker's own code path and fast path) in the same run, and the overhead as a ratio;
- (b) N concurrent clients (16 by default): translations/s through the stack with dynamic
  batching (the default) and without (`GANSERVE_MAX_BATCH=1`, a second stack), beside the
  direct batched model in-process (batches of 8, what the worker runs at most on a CPU).

    .venv/bin/python benchmarks/service.py                    # the paper's unet_256
    .venv/bin/python benchmarks/service.py --width 16 --requests 50 --clients 4
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image
from timing import percentiles

import models
from core.settings import Settings
from ganserve.embedded_redis import free_port
from ganserve.launcher import local_stack
from workers.inference import translate_image, translate_inputs, translation_input
from workers.model_cache import LoadedModel

MODEL = "bench-p2p"


def test_png(size: int = 256) -> bytes:
    """A 256x256 photo-like PNG (smooth random field)."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def translate_over_http(client: httpx.Client, payload: bytes) -> float:
    """Seconds from upload to the result PNG in hand."""
    start = time.perf_counter()
    job = client.post(
        "/v1/translations",
        files={"image": ("in.png", payload, "image/png")},
        data={"model": MODEL, "seed": "1"},
    ).json()
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        job = client.get(f"/v1/jobs/{job['id']}", params={"wait": 30}).json()
    if job["status"] != "succeeded":
        raise RuntimeError(f"translation ended {job['status']}: {job.get('error')}")
    client.get(job["result"]["images"][0]).raise_for_status()
    return time.perf_counter() - start


def wait_ready(client: httpx.Client, timeout: float = 120) -> None:
    """Wait until a worker serves each queue."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.5)
    raise RuntimeError("the workers did not come up")


def through_stack(
    data_dir: Path, payload: bytes, args: argparse.Namespace, extra_env: dict[str, str]
) -> tuple[list[float], float]:
    """Sequential latencies and the concurrent clients' translations/s through one stack."""
    settings = Settings(data_dir=data_dir, port=free_port(), redis_url=None)
    # the worker gets the threads the in-process baseline had, for a fair ratio
    env = {"GANSERVE_TORCH_THREADS": str(torch.get_num_threads()), **extra_env}
    with (
        local_stack(settings, env) as running,
        httpx.Client(base_url=running.url, timeout=300) as client,
    ):
        wait_ready(client)
        translate_over_http(client, payload)  # warm-up: loads the model
        served = [translate_over_http(client, payload) for _ in range(args.requests)]
        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(lambda _: translate_over_http(client, payload), range(args.concurrent)))
        return served, args.concurrent / (time.perf_counter() - started)


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=64, help="pix2pix base width (64: paper)")
    parser.add_argument("--requests", type=int, default=20, help="sequential requests timed")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--concurrent", type=int, default=64, help="requests of the clients")
    args = parser.parse_args()
    payload = test_png()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        generator = models.create("pix2pix-generator", image_size=256, base_width=args.width)
        models.save(generator, data_dir / "models" / MODEL)
        # In-process baseline: the worker's translation code on the loaded model.
        loaded = LoadedModel(
            MODEL,
            models.load(data_dir / "models" / MODEL),
            models.read_card(data_dir / "models" / MODEL),
            torch.device("cpu"),
        )
        image = Image.open(io.BytesIO(payload)).convert("RGB")
        translate_image(loaded, image, 1, "native")  # warm-up
        direct = []
        for _ in range(args.requests):
            start = time.perf_counter()
            translate_image(loaded, image, 1, "native")
            direct.append(time.perf_counter() - start)
        items = [translation_input(loaded, image, k, "native", 2048 * 2048) for k in range(8)]
        translate_inputs(loaded, items, 2048 * 2048)  # warm-up
        start, rounds = time.perf_counter(), max(2, args.concurrent // 8)
        for _ in range(rounds):
            translate_inputs(loaded, items, 2048 * 2048)
        direct_batched = rounds * 8 / (time.perf_counter() - start)
        served, batched_rate = through_stack(data_dir, payload, args, {})
        _, single_rate = through_stack(data_dir, payload, args, {"GANSERVE_MAX_BATCH": "1"})
    d50, d95 = percentiles(direct)
    s50, s95 = percentiles(served)
    print(f"pix2pix 256x256, base width {args.width}, torch threads {torch.get_num_threads()}")
    print("(a) one client, sequential")
    print(f"  direct in-process : p50 {d50:8.1f} ms  p95 {d95:8.1f} ms")
    print(f"  through the stack : p50 {s50:8.1f} ms  p95 {s95:8.1f} ms")
    print(f"  overhead          : p50 x{s50 / d50:.2f}  (+{s50 - d50:.0f} ms)")
    print(f"(b) {args.clients} concurrent clients, {args.concurrent} requests")
    print(f"  direct batched model (8)   : {direct_batched:6.2f} translations/s")
    print(
        f"  stack, batching            : {batched_rate:6.2f} translations/s "
        f"(x{batched_rate / direct_batched:.2f} the direct batched model)"
    )
    print(
        f"  stack, GANSERVE_MAX_BATCH=1: {single_rate:6.2f} translations/s "
        f"(batching x{batched_rate / single_rate:.2f})"
    )


if __name__ == "__main__":
    main()
