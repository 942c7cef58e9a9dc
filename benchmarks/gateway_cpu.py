"""The gateway's CPU time per translation job, read from /proc while the real stack serves them.

Starts the stack (embedded Redis, gateway, one worker per queue) on a temporary storage root
with a tiny pix2pix model (so the worker is never the bottleneck), then sends translations as
a client does in synchronous mode: `POST /v1/translations` with `Prefer: wait=30` (one request
that answers the ended job) and `GET` of its result image. Two phases: one client sending them
one after the other, then `--clients` clients at once. For each phase it prints the CPU
milliseconds (user + system, from `/proc/<pid>/stat`) the gateway's processes (the uvicorn
parent and its worker processes) and the Redis server spent per job, and the jobs per second.

    .venv/bin/python benchmarks/gateway_cpu.py
    .venv/bin/python benchmarks/gateway_cpu.py --jobs 300 --clients 8 --processes 2
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
from stack_overhead import cpu_seconds, descendants, wait_ready

import models
from core.settings import Settings
from ganserve.embedded_redis import free_port
from ganserve.launcher import RunningStack, local_stack

MODEL = "bench-p2p"


def photo_png(size: int) -> bytes:
    """A smooth random RGB picture, `size` pixels square, as PNG."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (max(1, size // 8), max(1, size // 8), 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC).save(buffer, "PNG")
    return buffer.getvalue()


def cpu_total(pids: list[int]) -> float:
    """User + system CPU seconds the processes `pids` have used so far."""
    return sum(cpu_seconds(pid) for pid in pids)


def translate(client: httpx.Client, payload: bytes) -> None:
    """One job as a synchronous client runs it: the POST that waits, then the result image."""
    response = client.post(
        "/v1/translations",
        files={"image": ("in.png", payload, "image/png")},
        data={"model": MODEL, "seed": "1"},
        headers={"Prefer": "wait=30"},
    )
    job = response.json()
    if response.status_code != 201 or job["status"] != "succeeded":
        raise RuntimeError(f"translation answered {response.status_code}: {response.text}")
    client.get(job["result"]["images"][0]).raise_for_status()


def phase(
    running: RunningStack, payload: bytes, jobs: int, clients: int
) -> tuple[float, float, float]:
    """Run `jobs` translations from `clients` clients: the gateway's and Redis's CPU
    milliseconds per job, and jobs per second."""
    gateway_pid = running.stack.processes["gateway"].pid
    gateway = [gateway_pid, *descendants(gateway_pid)]
    redis_pid = [running.redis.process.pid] if running.redis and running.redis.process else []
    limits = httpx.Limits(keepalive_expiry=2)
    with httpx.Client(base_url=running.url, timeout=60, limits=limits) as client:
        gateway_before, redis_before = cpu_total(gateway), cpu_total(redis_pid)
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda _: translate(client, payload), range(jobs)))
        wall = time.perf_counter() - started
        gateway_ms = 1000 * (cpu_total(gateway) - gateway_before) / jobs
        redis_ms = 1000 * (cpu_total(redis_pid) - redis_before) / jobs
    return gateway_ms, redis_ms, jobs / wall


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300, help="translations per phase")
    parser.add_argument("--clients", type=int, default=8, help="clients of the second phase")
    parser.add_argument("--size", type=int, default=64, help="the input image's side in pixels")
    parser.add_argument("--processes", type=int, default=1, help="GANSERVE_GATEWAY_PROCESSES")
    args = parser.parse_args()
    payload = photo_png(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        torch.manual_seed(0)
        generator = models.create("pix2pix-generator", image_size=32, base_width=4)
        models.save(generator, data_dir / "models" / MODEL)
        settings = Settings(data_dir=data_dir, port=free_port(), redis_url=None)
        env = {"GANSERVE_GATEWAY_PROCESSES": str(args.processes)}
        with local_stack(settings, env) as running:
            wait_ready(running.url, running)
            with httpx.Client(base_url=running.url, timeout=60) as client:
                for _ in range(10):  # warm-up: the worker loads the model
                    translate(client, payload)
            print(f"gateway processes {args.processes}, {args.size}x{args.size} PNG")
            for name, clients in (("sequential", 1), (f"{args.clients} clients", args.clients)):
                gateway_ms, redis_ms, rate = phase(running, payload, args.jobs, clients)
                print(
                    f"  {name:12}: gateway {gateway_ms:6.2f} CPU ms/job, Redis {redis_ms:5.2f} "
                    f"CPU ms/job, {rate:6.1f} jobs/s"
                )


if __name__ == "__main__":
    main()
