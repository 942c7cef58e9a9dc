"""End-to-end latency and throughput of translations through the running stack.

Starts the real stack (embedded Redis, gateway, one worker per queue) on a temporary storage
root with a pix2pix model, then measures:

- (a) one client, sequential 256x256 translations: upload, queue, worker, result PNG fetched
  (p50/p95), beside the same model called directly in-process (`workers.inference`, the
  worker's own code path and fast path) in the same run, and the overhead as a ratio;
- (b) N concurrent clients (16 by default): translations/s through the stack with dynamic
  batching (the default) and without (`GANSERVE_MAX_BATCH=1`, a second stack), beside the
  direct batched model in-process (batches of the worker's largest: 8 on a CPU, 32 on CUDA).

The in-process baseline runs on `--device` (CUDA when there is one, as the worker does).
`--infer-concurrency 1 2` times the batching stack once per number of infer pool processes
(`GANSERVE_INFER_CONCURRENCY`; unset: the worker's default, 2 on a GPU host and 1 elsewhere);
`--no-unbatched` leaves the `GANSERVE_MAX_BATCH=1` stack out.

    .venv/bin/python benchmarks/service.py                    # the paper's unet_256
    .venv/bin/python benchmarks/service.py --width 16 --requests 50 --clients 4
    .venv/bin/python benchmarks/service.py --clients 256 --concurrent 2048 --infer-concurrency 1 2
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
from workers.batching import CPU_MAX_BATCH, CUDA_MAX_BATCH
from workers.inference import translate_image, translate_inputs, translation_input
from workers.model_cache import LoadedModel, fast_path

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


def connections(clients: int) -> httpx.Limits:
    """A connection for each client thread (httpx keeps at most 100 by default)."""
    return httpx.Limits(max_connections=clients, max_keepalive_connections=clients)


def through_stack(
    data_dir: Path, payload: bytes, args: argparse.Namespace, extra_env: dict[str, str]
) -> tuple[list[float], float]:
    """Sequential latencies and the concurrent clients' translations/s through one stack."""
    settings = Settings(data_dir=data_dir, port=free_port(), redis_url=None)
    # the worker gets the threads the in-process baseline had, for a fair ratio; every client's
    # job may wait in the queue (not refused 429 past the default 100)
    env = {
        "GANSERVE_TORCH_THREADS": str(torch.get_num_threads()),
        "GANSERVE_MAX_QUEUED_JOBS": str(max(100, 2 * args.clients)),
        **extra_env,
    }
    with (
        local_stack(settings, env) as running,
        httpx.Client(base_url=running.url, timeout=300, limits=connections(args.clients)) as client,
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
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--infer-concurrency",
        nargs="+",
        type=int,
        help="pool processes of the infer worker, one batching stack each (default: its own)",
    )
    parser.add_argument("--no-unbatched", action="store_true", help="no GANSERVE_MAX_BATCH=1")
    args = parser.parse_args()
    device = torch.device(args.device)
    batch = CUDA_MAX_BATCH if device.type == "cuda" else CPU_MAX_BATCH
    payload = test_png()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        generator = models.create("pix2pix-generator", image_size=256, base_width=args.width)
        models.save(generator, data_dir / "models" / MODEL)
        # In-process baseline: the worker's translation code on the model as the worker loads it.
        loaded = LoadedModel(
            MODEL,
            fast_path(device).prepare(models.load(data_dir / "models" / MODEL, device=device)),
            models.read_card(data_dir / "models" / MODEL),
            device,
        )
        image = Image.open(io.BytesIO(payload)).convert("RGB")
        translate_image(loaded, image, 1, "native")  # warm-up
        direct = []
        for _ in range(args.requests):
            start = time.perf_counter()
            translate_image(loaded, image, 1, "native")
            direct.append(time.perf_counter() - start)
        items = [translation_input(loaded, image, k, "native", 2048 * 2048) for k in range(batch)]
        translate_inputs(loaded, items, 2048 * 2048)  # warm-up
        start, rounds = time.perf_counter(), max(2, args.concurrent // batch)
        for _ in range(rounds):
            translate_inputs(loaded, items, 2048 * 2048)
        direct_batched = rounds * batch / (time.perf_counter() - start)
        stacks = {}  # label: (sequential latencies, translations/s)
        for processes in args.infer_concurrency or [None]:
            env = {} if processes is None else {"GANSERVE_INFER_CONCURRENCY": str(processes)}
            label = "batching" + ("" if processes is None else f", INFER_CONCURRENCY={processes}")
            stacks[label] = through_stack(data_dir, payload, args, env)
        if not args.no_unbatched:
            stacks["GANSERVE_MAX_BATCH=1"] = through_stack(
                data_dir, payload, args, {"GANSERVE_MAX_BATCH": "1"}
            )
    d50, d95 = percentiles(direct)
    served = next(iter(stacks.values()))[0]
    s50, s95 = percentiles(served)
    print(
        f"pix2pix 256x256, base width {args.width}, {device}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print("(a) one client, sequential")
    print(f"  direct in-process : p50 {d50:8.1f} ms  p95 {d95:8.1f} ms")
    print(f"  through the stack : p50 {s50:8.1f} ms  p95 {s95:8.1f} ms")
    print(f"  overhead          : p50 x{s50 / d50:.2f}  (+{s50 - d50:.0f} ms)")
    print(f"(b) {args.clients} concurrent clients, {args.concurrent} requests")
    print(f"  direct batched model ({batch}) : {direct_batched:8.2f} translations/s")
    for label, (_, rate) in stacks.items():
        print(
            f"  stack, {label:30}: {rate:8.2f} translations/s "
            f"(x{rate / direct_batched:.2f} the direct batched model)"
        )
    if "GANSERVE_MAX_BATCH=1" in stacks and len(stacks) > 1:
        batched, unbatched = next(iter(stacks.values()))[1], stacks["GANSERVE_MAX_BATCH=1"][1]
        print(f"  batching: x{batched / unbatched:.2f}")


if __name__ == "__main__":
    main()
