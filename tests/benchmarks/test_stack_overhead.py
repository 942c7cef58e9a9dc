"""benchmarks/stack_overhead.py: its CPU accounting from /proc, its clients against the bare
gateway (the floor) on a real Redis, and a short run of the whole benchmark on the real stack."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import stack_overhead
from cli_throughput import photo_png

BUSY_CHILD = """
import subprocess, sys
spin = "import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.3: pass\\n"
subprocess.run([sys.executable, "-c", spin + "time.sleep(60)"])
"""


def test_cpu_seconds_of_a_process_tree_come_from_proc():
    parent = subprocess.Popen([sys.executable, "-c", BUSY_CHILD])
    below: list[int] = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            below = stack_overhead.descendants(parent.pid)
            if below and stack_overhead.cpu_seconds(below[0]) >= 0.3:
                break
            time.sleep(0.1)
        assert len(below) == 1
        groups = {"parent": lambda: [parent.pid], "child": lambda: below}
        before = stack_overhead.snapshot(groups)
        assert before["child"][below[0]] >= 0.3
        used = stack_overhead.cpu_used(before, stack_overhead.snapshot(groups))
        assert used["child"] < 0.05  # the child sleeps now
    finally:
        for pid in below:
            os.kill(pid, signal.SIGKILL)
        parent.kill()
        parent.wait()
    assert stack_overhead.cpu_seconds(parent.pid) == 0.0  # gone: read as 0, not an error


def test_env_settings_are_key_value_pairs(capsys):
    args = stack_overhead.arguments(["--env", "A=1", "--env", "B=x=y"])
    assert dict(args.env) == {"A": "1", "B": "x=y"}
    with pytest.raises(SystemExit):
        stack_overhead.arguments(["--env", "A"])
    assert "--env: takes KEY=VALUE, not 'A'" in capsys.readouterr().err


def test_the_bare_gateway_serves_the_upload_back_and_refuses_a_bad_form(redis_url, monkeypatch):
    payload = photo_png(1)
    request = stack_overhead.Request(payload, {"model": "m", "seed": "1"})
    with stack_overhead.bare_gateway(redis_url) as (url, process):
        job = httpx.post(
            f"{url}/v1/translations",
            files={"image": ("in.png", payload, "image/png")},
            data=request.form,
        ).json()
        assert job["status"] == "succeeded"
        assert httpx.get(url + job["result"]["images"][0]).content == payload
        assert stack_overhead.first_job(url, request) == "image/png"
        monkeypatch.setattr(stack_overhead, "RAMP_S", 0.2)
        groups = {"server": lambda: [process.pid]}
        saturate = stack_overhead.saturate(url, request, 4, 1.0, groups, redis_url)
        window = asyncio.run(saturate)
        assert window.jobs > 0 and window.failures == 0
        assert window.cpu["server"] > 0
        for command in ("set", "get"):  # one SET per upload, one GET per fetch (4 in flight)
            assert abs(window.redis_calls[command] - window.jobs) <= 4
        assert 0 <= window.machine_idle < 1
        no_model = stack_overhead.Request(payload, {"format": "webp"})
        with pytest.raises(SystemExit, match=r"rejected .*\(format=webp\): HTTP 422.*model"):
            stack_overhead.first_job(url, no_model)


def test_a_short_run_measures_the_stack_and_the_floor(tmp_path, monkeypatch):
    monkeypatch.setattr(stack_overhead, "RAMP_S", 0.5)
    out = tmp_path / "overhead.json"
    argv = ["--seconds", "1", "--clients", "4", "--sequential", "3", "--json", str(out)]
    results = stack_overhead.main(argv)
    for side in (results.stack, results.floor):
        assert side.jobs > 0 and side.failures == 0
        assert 0 < side.p50_ms <= side.p95_ms
    assert results.stack.result_type == "image/png"
    for name in ("gateway", "worker-infer", "worker-infer pool", "redis", "client"):
        assert name in results.stack.cpu_ms_per_job
    assert results.stack.cpu_ms_per_job["worker-infer pool"] > 0
    assert results.floor.cpu_ms_per_job["server"] > 0
    assert sum(results.stack.redis_commands_per_job.values()) > 2
    assert json.loads(out.read_text())["stack"]["jobs"] == results.stack.jobs
