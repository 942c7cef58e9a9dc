"""One API key's translations while another key floods the infer queue: their latency with fair
queueing (`GANSERVE_FAIR_QUEUEING`, the default) and without, in one run.

Each mode starts the real stack (embedded Redis, gateway, one worker per queue) with two keys.
The flooder keeps `--flood` sample jobs of a slow sampler (a U-Net GAN generator at 64 px, 64
images each) waiting, topping the queue up as its jobs start; meanwhile the other key submits
one 32 px translation at a time, `--requests` times, each with `Prefer: wait=60`, and its latency
(submission to the ended job) is recorded. Printed: the other key's p50 and p95 in each mode,
and how long one flood job takes (the unit of waiting).

    .venv/bin/python benchmarks/fair_share.py
    .venv/bin/python benchmarks/fair_share.py --flood 60 --requests 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import torch
from cli_throughput import photo_png

import models
from core.settings import Settings
from ganserve.embedded_redis import free_port
from ganserve.launcher import local_stack

KEYS = {"flooder": "bench-flooder", "other": "bench-other"}


def _as(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def flood(url: str, depth: int, stop: threading.Event, durations: list[float]) -> None:
    """Keep `depth` of the flooder's sample jobs queued until `stop`."""
    with httpx.Client(base_url=url, timeout=60, headers=_as("flooder")) as http:
        while not stop.is_set():
            listed = http.get("/v1/jobs", params={"status": "queued", "limit": 1000})
            waiting = len(listed.json()["jobs"])
            for _ in range(depth - waiting):
                http.post("/v1/samples", json={"model": "slow", "count": 64})
            done = http.get("/v1/jobs", params={"status": "succeeded", "limit": 5}).json()["jobs"]
            durations.extend(_seconds(j["started_at"], j["finished_at"]) for j in done)
            stop.wait(0.2)


def latencies(url: str, requests: int) -> list[float]:
    """The other key's translations, one at a time: seconds from submission to the ended job."""
    seconds = []
    with httpx.Client(base_url=url, timeout=120, headers=_as("other")) as http:
        for k in range(requests):
            start = time.monotonic()
            answer = http.post(
                "/v1/translations",
                files={"image": ("in.png", photo_png(k, size=32), "image/png")},
                data={"model": "p2p"},
                headers={"Prefer": "wait=60"},
            )
            if answer.status_code != 201:
                raise RuntimeError(f"translation not ended: {answer.status_code} {answer.text}")
            seconds.append(time.monotonic() - start)
            time.sleep(0.5)
    return seconds


def run_mode(data_dir: Path, fair: bool, depth: int, requests: int) -> tuple[list[float], float]:
    """One stack with fair queueing on or off: the other key's latencies, and the median
    duration of a flood job."""
    settings = Settings(data_dir=data_dir, port=free_port(), redis_url=None)
    env = {
        "GANSERVE_API_KEYS": ",".join(KEYS.values()),
        "GANSERVE_FAIR_QUEUEING": str(fair).lower(),
        "GANSERVE_MAX_QUEUED_JOBS": "1000",
        "GANSERVE_MAX_BATCH": "1",
    }
    with local_stack(settings, env) as running:
        deadline = time.monotonic() + 120
        while httpx.get(f"{running.url}/readyz", timeout=30).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not come up")
            time.sleep(0.5)
        stop, durations, failures = threading.Event(), [], []

        def flooding() -> None:
            try:
                flood(running.url, depth, stop, durations)
            except Exception as exc:  # reported by the main thread
                failures.append(exc)
                raise

        flooder = threading.Thread(target=flooding)
        flooder.start()
        time.sleep(3)  # the flood is queued before the first measured request
        try:
            seconds = latencies(running.url, requests)
        finally:
            stop.set()
            flooder.join()
        if failures or not durations:
            raise RuntimeError(f"the flood did not run: {failures}")
    return seconds, statistics.median(durations)


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=40, help="flooder's jobs kept waiting")
    parser.add_argument("--requests", type=int, default=12, help="the other key's translations")
    args = parser.parse_args()
    torch.manual_seed(0)
    results = {}
    for fair in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            models.save(
                models.create("unetgan-generator", image_size=64, width=16, latent_dim=32),
                data_dir / "models" / "slow",
            )
            models.save(
                models.create("pix2pix-generator", image_size=32, base_width=4),
                data_dir / "models" / "p2p",
            )
            results[fair] = run_mode(data_dir, fair, args.flood, args.requests)
    print(
        f"one key keeping {args.flood} sample jobs queued, another translating one image at a "
        f"time ({args.requests} requests), torch threads {torch.get_num_threads()}, batches of 1"
    )
    for fair, (seconds, job) in results.items():
        print(
            f"  fair queueing {'on ' if fair else 'off'}: the other key's p50 "
            f"{statistics.median(seconds):6.2f} s, p95 {percentile(seconds, 0.95):6.2f} s "
            f"(a flood job takes {job:.2f} s)"
        )
    on, off = statistics.median(results[True][0]), statistics.median(results[False][0])
    print(f"  p50 without / with: x{off / on:.1f}")


if __name__ == "__main__":
    main()
