"""What the stack itself costs per translation: throughput and CPU with a near-free model.

Starts the real stack (`ganserve.launcher.local_stack`: embedded Redis, gateway, one Celery
worker per queue) on a temporary data directory holding the smallest legal pix2pix generator
(`image_size` 8, base width 1: three levels, a few hundred weights, fully convolutional, so it
runs at the upload's own 256x256), so that what is measured is the service around the model.
Near-free, not free: on the worker's path (to a tensor, the test-time forward, back to a
picture) it still costs about 5 ms per 256 px image on one CPU thread, so that is measured too.

- (a) jobs/s at saturation: `--clients` concurrent clients (asyncio + httpx), each in a loop
  POSTing `/v1/translations` with `Prefer: wait=30` (the server holds the answer until the job
  ends, as `ganserve translate` asks) and then fetching the result image; after a short ramp,
  the succeeded jobs within `--seconds` are counted;
- (b) CPU milliseconds per job of each process over that window (utime + stime from
  `/proc/<pid>/stat`): the gateway, each worker's main process and its pool process, Redis, and
  this benchmark's own client; the Redis commands per job (`INFO commandstats`) and how idle
  the machine's cores were (`/proc/stat`: a stack that leaves cores idle is waiting, not
  CPU-bound);
- (c) p50/p95 latency of one client sending `--sequential` translations one after the other;
- (d) beside them, in the same run, the floors: (i) the 256 px PNG decoded and encoded again by
  Pillow in one process (as the worker reads its input and writes its result: PNG at
  `core.storage.PNG_COMPRESS_LEVEL`), and the model alone (the worker's `translate_image`
  in-process, with the worker's torch threads); (ii) a bare FastAPI app
  (`benchmarks/bare_gateway.py`) served by uvicorn with the gateway's flags, which takes the
  same multipart upload, stores it in the same Redis and serves it back, driven by the same
  clients: jobs/s, CPU ms per request and p50/p95 (its one Python client saturates a core
  before the bare server does: compare CPU there). The stack's idle CPU is read meanwhile.

It prints a table (stack, floor, ratio) and, with `--json PATH`, writes the numbers.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/stack_overhead.py
    PYTHONPATH=$PWD .venv/bin/python benchmarks/stack_overhead.py --seconds 30 --clients 64
    PYTHONPATH=$PWD .venv/bin/python benchmarks/stack_overhead.py --format webp --quality 80
    PYTHONPATH=$PWD .venv/bin/python benchmarks/stack_overhead.py --env GANSERVE_MAX_BATCH=1 \
        --json /tmp/overhead.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import redis
import torch
from cli_throughput import photo_png
from PIL import Image
from timing import percentiles

import models
from core.settings import Settings
from core.storage import PNG_COMPRESS_LEVEL
from ganserve.embedded_redis import free_port
from ganserve.launcher import RunningStack, local_stack, torch_threads_per_worker
from ganserve.processes import gateway_command
from workers.inference import translate_image
from workers.model_cache import LoadedModel

MODEL = "bench-tiny-p2p"
HERE = Path(__file__).resolve().parent
HOLD_S = 30  # `Prefer: wait=30`, what `ganserve translate` asks
ENDED = ("succeeded", "failed", "cancelled")
RAMP_S = 2.0  # clients run this long before the counted window opens
TICKS = os.sysconf("SC_CLK_TCK")

# A group of processes by name -> the function that lists their pids at the time it is called.
Groups = dict[str, Callable[[], list[int]]]


# --- CPU time from /proc ---------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads); 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; fields[0] is field 3
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 and 15: utime, stime


def children(pid: int) -> list[int]:
    """The direct children of `pid` (from each of its threads' `children` list)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...)."""
    below = children(pid)
    return below + [p for child in below for p in descendants(child)]


def snapshot(groups: Groups) -> dict[str, dict[int, float]]:
    """CPU seconds of each process of each group, now."""
    return {name: {pid: cpu_seconds(pid) for pid in pids()} for name, pids in groups.items()}


def cpu_used(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
) -> dict[str, float]:
    """CPU seconds each group used between two snapshots (a process started in between counts
    from 0)."""
    return {
        name: sum(cpu - before.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items())
        for name, pids in after.items()
    }


def machine_ticks() -> tuple[int, int]:
    """(idle, all) clock ticks of every core since boot (`/proc/stat`: user, nice, system, idle,
    iowait, irq, softirq, steal; the guest times after them are within user and nice)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return ticks[3] + ticks[4], sum(ticks)


def redis_calls(url: str) -> dict[str, int]:
    """Calls of each command the Redis server at `url` has answered (`INFO commandstats`)."""
    with redis.Redis.from_url(url) as client:
        stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in stats.items()}


def stack_groups(running: RunningStack) -> Groups:
    """The stack's processes: the gateway, each worker's main and pool processes, Redis."""
    groups: Groups = {}
    for name, process in running.stack.processes.items():
        if name == "gateway":
            groups[name] = lambda pid=process.pid: [pid, *descendants(pid)]
        else:
            groups[name] = lambda pid=process.pid: [pid]
            groups[f"{name} pool"] = lambda pid=process.pid: descendants(pid)
    if running.redis is not None and running.redis.process is not None:
        groups["redis"] = lambda pid=running.redis.process.pid: [pid]
    return groups


# --- the clients ---------------------------------------------------------------------------


class Rejected(RuntimeError):
    """The server refused the translation request itself (an HTTP error on the POST)."""


class JobEnded(RuntimeError):
    """A job ended without succeeding, or its result image could not be fetched."""


@dataclass(frozen=True)
class Request:
    """What each client sends: the upload and the form fields."""

    payload: bytes
    form: dict[str, str]


def http_client(url: str, clients: int) -> httpx.AsyncClient:
    """An async client with a connection per concurrent client (idle ones dropped after 2 s,
    before uvicorn closes them, as tests/e2e/stack.py does)."""
    limits = httpx.Limits(
        max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=2
    )
    return httpx.AsyncClient(base_url=url, timeout=HOLD_S + 30, limits=limits)


async def run_job(client: httpx.AsyncClient, request: Request) -> str:
    """POST one translation held until it ends, then GET its image; the image's content type."""
    response = await client.post(
        "/v1/translations",
        files={"image": ("in.png", request.payload, "image/png")},
        data=request.form,
        headers={"Prefer": f"wait={HOLD_S}"},
    )
    if response.status_code >= 400:
        raise Rejected(f"HTTP {response.status_code}: {response.text[:500]}")
    job = response.json()
    while job["status"] not in ENDED:  # not ended within the hold: long-poll it
        job = (await client.get(f"/v1/jobs/{job['id']}", params={"wait": HOLD_S})).json()
    if job["status"] != "succeeded":
        raise JobEnded(f"job {job['id']} {job['status']}: {job.get('error')}")
    image = await client.get(job["result"]["images"][0])
    if image.status_code != 200:
        raise JobEnded(f"result image of job {job['id']}: HTTP {image.status_code}")
    return image.headers.get("content-type", "")


async def sequential(url: str, request: Request, count: int) -> list[float]:
    """Seconds of `count` jobs sent one after the other by one client."""
    times = []
    async with http_client(url, 1) as client:
        for _ in range(count):
            start = time.perf_counter()
            await run_job(client, request)
            times.append(time.perf_counter() - start)
    return times


@dataclass
class Saturation:
    """One saturation window: succeeded jobs, failures, its length, each group's CPU s, the
    calls of each Redis command and the machine's idle share (all its processes, ours or not)."""

    jobs: int
    failures: int
    seconds: float
    cpu: dict[str, float]
    redis_calls: dict[str, int]
    machine_idle: float
    first_failure: str | None = None

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds

    def cpu_ms_per_job(self) -> dict[str, float]:
        """Each group's CPU milliseconds per succeeded job."""
        return {name: 1e3 * s / max(1, self.jobs) for name, s in self.cpu.items()}


async def saturate(
    url: str, request: Request, clients: int, seconds: float, groups: Groups, redis_url: str
) -> Saturation:
    """`clients` clients in a job loop; after `RAMP_S`, the jobs that succeed within `seconds`,
    the CPU each group uses and the commands Redis answers meanwhile."""
    succeeded: list[float] = []
    failed: list[tuple[float, str]] = []
    stop = asyncio.Event()

    async def loop(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            try:
                await run_job(client, request)
                succeeded.append(time.monotonic())
            except (Rejected, JobEnded, httpx.HTTPError) as exc:
                failed.append((time.monotonic(), f"{type(exc).__name__}: {exc}"))

    async with http_client(url, clients) as client:
        tasks = [asyncio.create_task(loop(client)) for _ in range(clients)]
        await asyncio.sleep(RAMP_S)
        start, before, calls = time.monotonic(), snapshot(groups), redis_calls(redis_url)
        idle = machine_ticks()
        await asyncio.sleep(seconds)
        idle_after = machine_ticks()
        end, after, calls_after = time.monotonic(), snapshot(groups), redis_calls(redis_url)
        stop.set()
        await asyncio.gather(*tasks)
    in_window = [reason for t, reason in failed if start <= t <= end]
    return Saturation(
        jobs=sum(start <= t <= end for t in succeeded),
        failures=len(in_window),
        seconds=end - start,
        cpu=cpu_used(before, after),
        redis_calls={n: c - calls.get(n, 0) for n, c in calls_after.items() if c > calls.get(n, 0)},
        machine_idle=(idle_after[0] - idle[0]) / max(1, idle_after[1] - idle[1]),
        first_failure=in_window[0] if in_window else None,
    )


# --- the floors ----------------------------------------------------------------------------


def codec_ms(payload: bytes, image_format: str, quality: int | None, rounds: int = 50) -> float:
    """Milliseconds to decode `payload` and encode it again (PNG at the service's level, or
    `image_format` at `quality`), as the worker reads its input and writes its result."""
    options = {"compress_level": PNG_COMPRESS_LEVEL} if image_format == "png" else {}
    if quality is not None and image_format != "png":
        options["quality"] = quality

    def once() -> None:
        with Image.open(io.BytesIO(payload)) as image:
            image.load()
            image.convert("RGB").save(io.BytesIO(), format=image_format.upper(), **options)

    once()
    start = time.perf_counter()
    for _ in range(rounds):
        once()
    return (time.perf_counter() - start) / rounds * 1e3


def model_ms(folder: Path, payload: bytes, threads: int, rounds: int = 30) -> float:
    """Milliseconds of the worker's own translation call (`translate_image`, native mode) on
    the model in `folder`, in-process with the worker's torch threads."""
    loaded = LoadedModel(MODEL, models.load(folder), models.read_card(folder), torch.device("cpu"))
    image = Image.open(io.BytesIO(payload)).convert("RGB")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        translate_image(loaded, image, 1, "native")  # warm-up
        start = time.perf_counter()
        for _ in range(rounds):
            translate_image(loaded, image, 1, "native")
        return (time.perf_counter() - start) / rounds * 1e3
    finally:
        torch.set_num_threads(previous)


@contextmanager
def bare_gateway(redis_url: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`benchmarks/bare_gateway.py` served by uvicorn with the gateway's own command line, on
    `redis_url`; its URL and process. Stopped on exit."""
    settings = Settings(port=free_port())
    command = gateway_command(settings)
    command[command.index("service.app:serve")] = "bare_gateway:create_app"
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "BARE_GATEWAY_REDIS_URL": redis_url}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    url = f"http://{settings.host}:{settings.port}"
    try:
        wait_answering(f"{url}/docs", process)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_answering(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait until a GET of `url` answers 200 (RuntimeError when `process` exits first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited ({process.returncode}) before answering")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


# --- the run -------------------------------------------------------------------------------


@dataclass
class Side:
    """One side of the comparison (the stack, or the floor (ii)): its measured numbers."""

    jobs_per_s: float
    jobs: int
    failures: int
    cpu_ms_per_job: dict[str, float]
    redis_commands_per_job: dict[str, float]
    machine_idle: float
    p50_ms: float
    p95_ms: float
    first_failure: str | None = None
    result_type: str = ""


def side(window: Saturation, latencies: list[float], result_type: str = "") -> Side:
    """A `Side` from a saturation window and sequential latencies."""
    p50, p95 = percentiles(latencies)
    return Side(
        window.jobs_per_s,
        window.jobs,
        window.failures,
        window.cpu_ms_per_job(),
        {n: c / max(1, window.jobs) for n, c in sorted(window.redis_calls.items())},
        window.machine_idle,
        p50,
        p95,
        window.first_failure,
        result_type,
    )


@dataclass
class Results:
    """Everything one run measured, and how (written by `--json`)."""

    setup: dict
    model_ms: float
    codec_ms: float
    stack: Side
    floor: Side
    stack_idle_cpu_ms_per_s: dict[str, float] = field(default_factory=dict)


def first_job(url: str, request: Request) -> str:
    """The warm-up translation (the worker loads the model); its result's content type. Exits
    with a clear message when the server refuses the request (e.g. a `format` it does not
    know)."""
    try:
        return asyncio.run(one_job(url, request))
    except Rejected as exc:
        fields = ", ".join(f"{k}={v}" for k, v in request.form.items())
        sys.exit(f"the server rejected the translation request ({fields}): {exc}")


async def one_job(url: str, request: Request) -> str:
    """One job; its result's content type."""
    async with http_client(url, 1) as client:
        return await run_job(client, request)


def wait_ready(url: str, running: RunningStack, timeout: float = 120.0) -> None:
    """Wait until /readyz says a worker serves each queue."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (name := running.stack.failed()) is not None:
            raise RuntimeError(f"the {name} process exited during start-up")
        if httpx.get(f"{url}/readyz", timeout=30).status_code == 200:
            return
        time.sleep(0.5)
    raise RuntimeError("the workers did not come up")


def measure(
    args: argparse.Namespace, data_dir: Path, request: Request, env: dict[str, str]
) -> tuple[Side, Side, dict[str, float]]:
    """The stack's side, the floor's side and the stack's idle CPU ms/s, from one stack."""
    settings = Settings(data_dir=data_dir, port=free_port(), redis_url=None)
    client = {"client": lambda: [os.getpid()]}
    with local_stack(settings, env) as running:
        wait_ready(running.url, running)
        result_type = first_job(running.url, request)
        latencies = asyncio.run(sequential(running.url, request, args.sequential))
        groups = {**stack_groups(running), **client}
        window = asyncio.run(
            saturate(running.url, request, args.clients, args.seconds, groups, running.redis_url)
        )
        stack = side(window, latencies, result_type)
        redis_group = {"redis": groups["redis"]}
        idle = {f"idle {n}": g for n, g in stack_groups(running).items() if n != "redis"}
        with bare_gateway(running.redis_url) as (url, process):
            server = {"server": lambda pid=process.pid: [pid, *descendants(pid)]}
            first_job(url, request)
            latencies = asyncio.run(sequential(url, request, args.sequential))
            groups = {**server, **redis_group, **client, **idle}
            window = asyncio.run(
                saturate(url, request, args.clients, args.seconds, groups, running.redis_url)
            )
    idle_ms = {
        n.removeprefix("idle "): 1e3 * s / window.seconds
        for n, s in window.cpu.items()
        if n.startswith("idle ")
    }
    window.cpu = {n: s for n, s in window.cpu.items() if not n.startswith("idle ")}
    return stack, side(window, latencies), idle_ms


# --- the report ----------------------------------------------------------------------------

# Rows of the CPU table: (label, the stack's group, the floor's group).
CPU_ROWS = [
    ("gateway / bare server", "gateway", "server"),
    ("worker-infer main", "worker-infer", None),
    ("worker-infer pool", "worker-infer pool", None),
    ("worker-train main", "worker-train", None),
    ("worker-train pool", "worker-train pool", None),
    ("redis", "redis", "redis"),
    ("client (this process)", "client", "client"),
]


def ratio(a: float | None, b: float | None) -> str:
    """`a / b` as `x1.23`, or blank when either is missing or `b` is 0."""
    return f"x{a / b:.2f}" if a is not None and b else ""


def row(label: str, a: float | None, b: float | None, unit: str = "") -> str:
    """One table row: label, the stack's number, the floor's, their ratio."""

    def cell(v: float | None) -> str:
        return f"{v:10.2f}" if v is not None else f"{'-':>10}"

    return f"  {label:<28}{cell(a)} {cell(b)}   {ratio(a, b):>8} {unit}".rstrip()


def redis_commands(one: Side, top: int = 8) -> str:
    """The Redis commands per job: their total and the most frequent ones."""
    ordered = sorted(one.redis_commands_per_job.items(), key=lambda item: -item[1])
    listed = ", ".join(f"{n} {v:.1f}" for n, v in ordered[:top] if v >= 0.05)
    return f"{sum(one.redis_commands_per_job.values()):.1f} ({listed})"


def busy(one: Side) -> str:
    """Each process's CPU over the window as a share of one core (who is near 100%)."""
    shares = {n: ms * one.jobs_per_s / 10 for n, ms in one.cpu_ms_per_job.items()}
    return ", ".join(f"{n} {pct:.0f}%" for n, pct in shares.items() if pct >= 0.5)


def report(results: Results) -> str:
    """The printed table."""
    return "\n".join(header_lines(results) + saturation_lines(results) + sequential_lines(results))


def header_lines(results: Results) -> list[str]:
    """What ran, and the per-image floors measured in this process."""
    setup = results.setup
    return [
        f"stack overhead: pix2pix generator image_size 8, base width {setup['model_width']}, "
        f"on a {setup['image']} PNG of {setup['payload_kb']:.1f} KB; {setup['cores']} cores, "
        f"worker torch threads {setup['torch_threads']}",
        f"load average {setup['load_before']} before, {setup['load_after']} after; "
        f"extra env {setup['env'] or 'none'}; form {setup['form']}",
        "per image, in this process:",
        f"  the model (worker's translate_image)        {results.model_ms:8.2f} ms",
        f"  floor (i): decode + encode {setup['format']:<5} (Pillow)   {results.codec_ms:8.2f} ms",
        f"{'':30}{'stack':>10} {'floor (ii)':>10}   {'stack/floor':>8}",
    ]


def saturation_lines(results: Results) -> list[str]:
    """Jobs/s, CPU per job and Redis commands per job of both sides at saturation."""
    s, f, setup = results.stack, results.floor, results.setup
    stack_total, floor_total = sum(s.cpu_ms_per_job.values()), sum(f.cpu_ms_per_job.values())
    cores = setup["cores"]
    lines = [
        f"saturation: {setup['clients']} clients, {setup['seconds']:.0f} s window",
        row("jobs/s", s.jobs_per_s, f.jobs_per_s),
        f"  succeeded jobs: stack {s.jobs} ({s.failures} failed), floor {f.jobs} "
        f"({f.failures} failed)",
        "  CPU ms per job",
        *(
            row(f"  {label}", s.cpu_ms_per_job.get(mine), f.cpu_ms_per_job.get(theirs))
            for label, mine, theirs in CPU_ROWS
        ),
        row("  total", stack_total, floor_total),
        row("cores x 1000 / total (jobs/s)", cores * 1e3 / stack_total, cores * 1e3 / floor_total),
        f"  stack's busy share of one core: {busy(s)}",
        f"  floor's busy share of one core: {busy(f)}",
        f"  the machine's cores idle (any process): stack {s.machine_idle:.0%}, "
        f"floor {f.machine_idle:.0%}",
        f"Redis commands per job: stack {redis_commands(s)}",
        f"                        floor {redis_commands(f)}",
    ]
    served, bare = (
        stack_total - s.cpu_ms_per_job["client"],
        floor_total - f.cpu_ms_per_job["client"],
    )
    lines.append(
        f"server side (all but the client), CPU ms per job: stack {served:.2f} = the model "
        f"{results.model_ms:.2f} + the bare floor (ii) {bare:.2f} + the stack's own "
        f"{served - results.model_ms - bare:.2f}"
    )
    lines.append(
        f"the stack's CPU per job without the model and the codec (target: <= 3 ms): "
        f"{served - results.model_ms - results.codec_ms:.2f} ms"
    )
    if f.cpu_ms_per_job["client"] * f.jobs_per_s >= 900:  # ms/s: the client used ~a core
        lines.append("note: the floor's jobs/s is its client's limit (a whole core): compare CPU")
    return lines


def sequential_lines(results: Results) -> list[str]:
    """The single client's latencies, the stack's idle CPU and any notes."""
    s, f, setup = results.stack, results.floor, results.setup
    lines = [
        f"one client, {setup['sequential']} sequential jobs",
        row("p50 ms", s.p50_ms, f.p50_ms),
        row("p95 ms", s.p95_ms, f.p95_ms),
        "stack idle CPU (ms/s, read during the floor's run): "
        + ", ".join(f"{n} {v:.1f}" for n, v in results.stack_idle_cpu_ms_per_s.items()),
    ]
    if setup["format"] != "png" and "png" in s.result_type:
        lines.append(f"note: the server ignored format={setup['format']} ({s.result_type})")
    for name, one in (("stack", s), ("floor", f)):
        if one.first_failure:
            lines.append(f"note: the {name}'s first failure: {one.first_failure}")
    return lines


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def env_pair(text: str) -> tuple[str, str]:
    """A `--env KEY=VALUE` argument as (KEY, VALUE); a usage error without `=`."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"takes KEY=VALUE, not {text!r}")
    return key, value


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="saturation window (each side)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--sequential", type=int, default=40, help="jobs of the single client")
    parser.add_argument("--format", help="the `format` form field (png, webp, jpeg)")
    parser.add_argument("--quality", type=int, help="the `quality` form field")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        type=env_pair,
        metavar="KEY=VALUE",
        help="a setting of the stack's processes (repeatable)",
    )
    parser.add_argument("--model-width", type=int, default=1, help="the generator's base width")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Results:
    """Measure, print the table (and write the JSON); the results."""
    args = arguments(argv)
    env = dict(args.env)
    payload = photo_png(0)
    form = {"model": MODEL, "seed": "1"}
    form |= {"format": args.format} if args.format else {}
    form |= {"quality": str(args.quality)} if args.quality is not None else {}
    threads = int(env.get("GANSERVE_TORCH_THREADS") or torch_threads_per_worker())
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        torch.manual_seed(0)
        generator = models.create("pix2pix-generator", image_size=8, base_width=args.model_width)
        models.save(generator, data_dir / "models" / MODEL)
        model = model_ms(data_dir / "models" / MODEL, payload, threads)
        codec = codec_ms(payload, args.format or "png", args.quality)
        env = {"GANSERVE_TORCH_THREADS": str(threads), **env}
        stack, floor, idle = measure(args, data_dir, Request(payload, form), env)
    setup = {
        "model_width": args.model_width,
        "image": "256x256",
        "payload_kb": len(payload) / 1024,
        "cores": len(os.sched_getaffinity(0)),
        "torch_threads": threads,
        "clients": args.clients,
        "seconds": args.seconds,
        "sequential": args.sequential,
        "format": args.format or "png",
        "form": form,
        "env": dict(args.env),
        "load_before": load_before,
        "load_after": load_average(),
    }
    results = Results(setup, model, codec, stack, floor, idle)
    print(report(results))
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(results), indent=2))
    return results


if __name__ == "__main__":
    main()
