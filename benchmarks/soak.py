"""Soak: the real stack under steady mixed load for minutes; errors, lost jobs, latency, memory.

Starts the real stack (embedded Redis, gateway, one worker per queue, with two API keys) on a
temporary storage root holding a small pix2pix translator and a class-conditional U-Net GAN
sampler, then:

1. measures the saturation rate: `--clients` closed-loop clients submit translations and samples
   and wait for each to end, for `--saturation-seconds`;
2. soaks at `--load` (default 80%) of that rate for `--minutes`: jobs arrive at a fixed rate,
   alternating translations and samples and the two API keys; each is followed either by
   long-polling its status or by its SSE stream, then its first image is fetched; every tenth
   arrival also lists the key's jobs and checks that the other key's job is invisible (404).

Prints the requests and errors per route, p50/p95 latency per route, jobs lost (submitted but not
succeeded at the end), and the RSS of the gateway and of each worker (main process + pool) at the
start and every minute, with the growth after the first minute. Targets: 0 errors, 0 lost jobs,
memory growth < 10% after the first minute.

    .venv/bin/python benchmarks/soak.py 2>soak-stack.log     # 10 minutes at 80% of saturation
    .venv/bin/python benchmarks/soak.py --minutes 1 2>/dev/null   # a quick look
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from timing import percentiles

import models
from ganserve.embedded_redis import EmbeddedRedis, free_port
from ganserve.launcher import Stack, start_services, torch_threads_per_worker, wait_for_gateway
from ganserve.settings import Settings

KEYS = ("soak-key-a", "soak-key-b")
TRANSLATOR, SAMPLER = "soak-p2p", "soak-digits"
ENDED = ("succeeded", "failed", "cancelled")


def photo_png(seed: int, size: int = 128) -> bytes:
    """A smooth random colour picture as PNG."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Recorder:
    """Latencies and errors per route, from many threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def timed(self, route: str, call, expect: int = 200) -> httpx.Response | None:
        start = time.perf_counter()
        try:
            response = call()
        except httpx.HTTPError as exc:
            self.error(route, f"{type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - start
        with self.lock:
            self.times[route].append(elapsed)
        if response.status_code != expect:
            self.error(route, f"{response.status_code}: {response.text[:200]}")
            return None
        return response

    def error(self, route: str, what: str) -> None:
        with self.lock:
            self.errors[route].append(what)


def submit(client: httpx.Client, rec: Recorder, k: int) -> dict | None:
    """Submit job number k (translations and samples alternate); its JSON."""
    if k % 2 == 0:
        response = rec.timed(
            "POST /v1/translations",
            lambda: client.post(
                "/v1/translations",
                files={"image": ("in.png", photo_png(k % 16), "image/png")},
                data={"model": TRANSLATOR, "seed": str(k)},
            ),
            expect=202,
        )
    else:
        body = {"model": SAMPLER, "count": 4, "seed": k, "class_label": k % 10}
        response = rec.timed(
            "POST /v1/samples", lambda: client.post("/v1/samples", json=body), expect=202
        )
    return None if response is None else response.json()


def follow_by_polling(client: httpx.Client, rec: Recorder, job: dict) -> dict | None:
    """Long-poll the job's status until it ends."""
    while job["status"] not in ENDED:
        response = rec.timed(
            "GET /v1/jobs/{id}?wait",
            lambda j=job: client.get(f"/v1/jobs/{j['id']}", params={"wait": 10}),
        )
        if response is None:
            return None
        job = response.json()
    return job


def follow_by_events(client: httpx.Client, rec: Recorder, job: dict) -> dict | None:
    """Read the job's SSE stream until it says the job ended."""
    start = time.perf_counter()
    last = None
    try:
        with client.stream("GET", f"/v1/jobs/{job['id']}/events") as stream:
            if stream.status_code != 200:
                rec.error("GET /v1/jobs/{id}/events", f"{stream.status_code}")
                return None
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    last = json.loads(line[5:])
                    if last.get("status") in ENDED:
                        break
    except httpx.HTTPError as exc:
        rec.error("GET /v1/jobs/{id}/events", f"{type(exc).__name__}: {exc}")
        return None
    with rec.lock:
        rec.times["GET /v1/jobs/{id}/events"].append(time.perf_counter() - start)
    return last


def one_job(clients: list[httpx.Client], rec: Recorder, k: int, submitted: list[str]) -> None:
    """Submit, follow and fetch job k; every tenth also lists jobs and checks key isolation."""
    client = clients[k % 2]
    job = submit(client, rec, k)
    if job is None:
        return
    with rec.lock:
        submitted.append((k % 2, job["id"]))
    follow = follow_by_events if (k // 2) % 2 else follow_by_polling
    ended = follow(client, rec, job)
    if ended is None:
        return
    if ended["status"] != "succeeded":
        rec.error("job", f"{job['id']} ended {ended['status']}: {ended.get('error')}")
        return
    rec.timed("GET image", lambda: client.get(ended["result"]["images"][0]))
    if k % 10 == 0:
        rec.timed("GET /v1/jobs", lambda: client.get("/v1/jobs", params={"limit": 20}))
        other = clients[(k + 1) % 2]
        rec.timed(
            "GET other key's job (404)", lambda: other.get(f"/v1/jobs/{job['id']}"), expect=404
        )


def rss_mib(pid: int) -> float:
    """Resident memory of a process and all its children, in MiB."""
    total = 0
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    pids.append(int(entry.name))
            except OSError:
                continue
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def saturation(clients: list[httpx.Client], seconds: float, concurrency: int) -> float:
    """Jobs per second that `concurrency` closed-loop clients get through."""
    rec, submitted = Recorder(), []
    counter = itertools.count()
    deadline = time.monotonic() + seconds
    done = [0]

    def loop() -> None:
        while time.monotonic() < deadline:
            one_job(clients, rec, next(counter), submitted)
            with rec.lock:
                done[0] += 1

    start = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in range(concurrency):
            pool.submit(loop)
    if rec.errors:
        raise RuntimeError(f"errors while measuring saturation: {dict(rec.errors)}")
    return done[0] / (time.monotonic() - start)


def main() -> None:
    """Start the stack, measure saturation, soak, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--load", type=float, default=0.8, help="fraction of the saturation rate")
    parser.add_argument("--saturation-seconds", type=float, default=40.0)
    parser.add_argument("--clients", type=int, default=4, help="clients measuring saturation")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        models.save(
            models.create("pix2pix-generator", image_size=64, base_width=16),
            data_dir / "models" / TRANSLATOR,
        )
        models.save(
            models.create(
                "unetgan-generator", image_size=32, width=8, latent_dim=32, num_classes=10
            ),
            data_dir / "models" / SAMPLER,
        )
        port = free_port()
        with EmbeddedRedis(data_dir / "redis") as redis_server:
            env = {
                "GANSERVE_TORCH_THREADS": str(torch_threads_per_worker()),
                **os.environ,
                "GANSERVE_DATA_DIR": str(data_dir),
                "GANSERVE_REDIS_URL": redis_server.url,
                "GANSERVE_PORT": str(port),
                "GANSERVE_API_KEYS": ",".join(KEYS),
                "GANSERVE_MAX_QUEUED_JOBS": "1000",
            }
            stack = Stack()
            try:
                start_services(stack, Settings(port=port), env)
                url = f"http://127.0.0.1:{port}"
                wait_for_gateway(url, stack)
                clients = [
                    httpx.Client(
                        base_url=url,
                        timeout=120,
                        headers={"Authorization": f"Bearer {key}"},
                        limits=httpx.Limits(max_connections=64),
                    )
                    for key in KEYS
                ]
                deadline = time.monotonic() + 120
                while clients[0].get("/readyz").status_code != 200:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the stack did not become ready")
                    time.sleep(0.5)
                run(clients, stack, args)
            finally:
                stack.stop()


def run(clients: list[httpx.Client], stack: Stack, args: argparse.Namespace) -> None:
    """Measure saturation, then soak and print the figures."""
    pids = {name: process.pid for name, process in stack.processes.items()}
    for k in range(4):  # warm-up: both models loaded
        one_job(clients, Recorder(), k, [])
    rate = saturation(clients, args.saturation_seconds, args.clients)
    target = rate * args.load
    print(f"saturation: {rate:.2f} jobs/s with {args.clients} closed-loop clients")
    print(f"soak: {args.minutes:g} min at {target:.2f} jobs/s ({args.load:.0%}), keys {len(KEYS)}")
    memory: list[dict[str, float]] = [{name: rss_mib(pid) for name, pid in pids.items()}]
    print("minute  " + "  ".join(f"{name:>14}" for name in pids) + "   (RSS MiB)")
    print("start   " + "  ".join(f"{memory[0][name]:14.1f}" for name in pids))
    rec, submitted = Recorder(), []
    start = time.monotonic()
    end = start + args.minutes * 60
    next_minute = start + 60
    with ThreadPoolExecutor(64) as pool:
        for k in itertools.count():
            due = start + k / target
            now = time.monotonic()
            if due >= end:
                break
            if due > now:
                time.sleep(due - now)
            pool.submit(one_job, clients, rec, k, submitted)
            if time.monotonic() >= next_minute:
                memory.append({name: rss_mib(pid) for name, pid in pids.items()})
                minute = len(memory) - 1
                print(f"{minute:6d}  " + "  ".join(f"{memory[-1][n]:14.1f}" for n in pids))
                next_minute += 60
    memory.append({name: rss_mib(pid) for name, pid in pids.items()})
    print("end     " + "  ".join(f"{memory[-1][name]:14.1f}" for name in pids))
    lost = []
    for key_index, job_id in submitted:
        job = clients[key_index].get(f"/v1/jobs/{job_id}").json()
        if job.get("status") != "succeeded":
            lost.append((job_id, job.get("status")))
    print(f"\n{'route':32} {'requests':>9} {'errors':>7} {'p50 ms':>9} {'p95 ms':>9}")
    for route in sorted(set(rec.times) | set(rec.errors)):
        times = rec.times.get(route, [])
        p50, p95 = percentiles(times) if times else (float("nan"), float("nan"))
        errors = len(rec.errors.get(route, []))
        print(f"{route:32} {len(times):9d} {errors:7d} {p50:9.1f} {p95:9.1f}")
    errors = sum(len(e) for e in rec.errors.values())
    print(f"\njobs submitted {len(submitted)}, errors {errors}, lost {len(lost)}")
    for route, what in rec.errors.items():
        print(f"  {route}: {what[:3]}")
    if lost:
        print(f"  lost: {lost[:5]}")
    baseline = memory[1] if len(memory) > 2 else memory[0]
    growth = {n: (memory[-1][n] / baseline[n] - 1) * 100 for n in pids}
    print(
        "memory growth after the first minute: "
        + ", ".join(f"{name} {value:+.1f}%" for name, value in growth.items())
    )


if __name__ == "__main__":
    main()
