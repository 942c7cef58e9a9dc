"""`ganserve up` as a real process: the whole stack starts, answers, and stops on Ctrl-C."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import models
from ganserve.embedded_redis import EmbeddedRedis, EmbeddedRedisError, free_port
from ganserve.launcher import (
    RestartPolicy,
    StackGaveUp,
    Supervised,
    Supervisor,
    torch_threads_per_worker,
)
from tests.e2e.stack import save_tiny_models, upload_dataset, wait_job
from training.demo import build_demo


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_up_runs_the_stack_and_ctrl_c_stops_everything(tmp_path):
    """Address and storage from `ganserve up`'s options (they take the settings' place)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANSERVE_")}
    exe = str(Path(sys.executable).parent / "ganserve")
    process = subprocess.Popen(
        [exe, "up", "--no-demo", "--port", str(port), "--data-dir", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_ready(process, port)
        assert (tmp_path / "redis" / "redis.log").exists()  # the embedded Redis persists here
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "ganserve is up" in output and "stopping ganserve" in output
    assert f"http://127.0.0.1:{port}" in output and "Traceback" not in output
    assert not port_open(port)
    assert processes_using(tmp_path) == []  # no gateway, worker or redis-server outlived it


def processes_using(data_dir: Path) -> list[int]:
    """Pids of live processes whose environment or command line names `data_dir`."""
    marker = str(data_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            text = (entry / "environ").read_bytes() + (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if marker in text and state != "Z":
            found.append(int(entry.name))
    return found


def clean_env(port: int) -> dict[str, str]:
    """The environment of a newcomer: no GANSERVE_* variable but the port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANSERVE_")}
    return env | {"GANSERVE_PORT": str(port)}


def start_up(cwd: Path, port: int) -> subprocess.Popen[str]:
    """`ganserve up --no-demo` started from `cwd` with the default (relative) data dir."""
    exe = str(Path(sys.executable).parent / "ganserve")
    return subprocess.Popen(
        [exe, "up", "--no-demo"],
        cwd=cwd,
        env=clean_env(port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_ready(process: subprocess.Popen[str], port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"ganserve up exited: {process.communicate()[0]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError("the stack did not become ready")


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    return output


def test_up_from_a_fresh_directory_with_default_settings(tmp_path):
    """The README's `make run` as a newcomer meets it: relative ./var, embedded Redis."""
    port = free_port()
    process = start_up(tmp_path, port)
    try:
        wait_ready(process, port)
    finally:
        output = stop(process)
    assert (tmp_path / "var" / "redis" / "redis.log").is_file(), output
    assert (tmp_path / "var" / "redis" / "appendonlydir").is_dir()  # Valkey's multi-part AOF
    assert f"data in {tmp_path / 'var' / 'redis'}" in output  # absolute, resolved once


def test_restart_keeps_the_queue_and_the_models(tmp_path):
    """Stopped while one run trains and another waits, the restarted stack finishes both."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    pairs = build_demo("edges2photo", tmp_path / "pairs", size=32, count=8)
    config = {"image_size": 32, "batch_size": 2, "width": 4, "log_every": 1}
    process = start_up(tmp_path, port)
    try:
        wait_ready(process, port)
        with httpx.Client(base_url=url, timeout=60) as client:
            dataset = upload_dataset(client, pairs, "pairs", "paired")
            first = client.post(
                "/v1/training-runs",
                json={
                    "family": "pix2pix",
                    "dataset": dataset["id"],
                    "name": "first",
                    "config": config | {"steps": 4},
                },
            ).json()
            assert wait_job(client, first["id"])["status"] == "succeeded"
            long_config = config | {"steps": 3000, "checkpoint_every": 10}
            running = client.post(
                "/v1/training-runs",
                json={"family": "pix2pix", "dataset": dataset["id"], "config": long_config},
            ).json()
            waiting = client.post(
                "/v1/training-runs",
                json={
                    "family": "pix2pix",
                    "dataset": dataset["id"],
                    "config": config | {"steps": 4},
                },
            ).json()
            job = running
            while job["progress"] == 0:
                job = client.get(f"/v1/jobs/{running['id']}", params={"wait": 1}).json()
    finally:
        stop(process)

    process = start_up(tmp_path, port)
    try:
        wait_ready(process, port)
        with httpx.Client(base_url=url, timeout=60) as client:
            models = {m["id"] for m in client.get("/v1/models").json()["models"]}
            assert "first" in models
            resumed = client.get(f"/v1/jobs/{running['id']}").json()
            assert resumed["status"] in ("queued", "running") and resumed["progress"] > 0
            assert client.post(f"/v1/jobs/{running['id']}/cancel").status_code in (200, 202)
            assert wait_job(client, running["id"])["status"] == "cancelled"
            assert wait_job(client, waiting["id"])["status"] == "succeeded"
    finally:
        stop(process)


def test_embedded_redis_failure_is_one_readable_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        try:
            EmbeddedRedis(tmp_path / "redis", port=port).start(timeout=10)
        except EmbeddedRedisError as exc:
            message = str(exc)
        else:
            raise AssertionError("Redis started on a busy port")
    assert "\n" not in message
    assert f"127.0.0.1:{port}" in message and "exited with code" in message
    assert "in use" in message.lower()  # Redis's own words: "Address already in use"


def test_up_reports_a_redis_that_cannot_start(tmp_path):
    """A data dir whose redis folder cannot be created: a one-line error, exit code 1."""
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "redis").write_text("not a folder")
    process = start_up(tmp_path, free_port())
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    assert "Traceback" not in output
    assert f"embedded Redis cannot use {tmp_path / 'var' / 'redis'}" in output


def launcher_children(launcher_pid: int) -> dict[str, int]:
    """The supervised children of a `ganserve up` process, by name, from /proc."""
    names = {
        b"valkey-server": "redis",
        b"uvicorn": "gateway",
        b"--queues\0infer": "worker-infer",
        b"--queues\0train": "worker-train",
    }
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if ppid == launcher_pid:
            found.update({name: int(entry.name) for mark, name in names.items() if mark in cmdline})
    return found


def test_up_restarts_each_child_killed_and_loses_no_job(tmp_path):
    """SIGKILL the Redis, the gateway and each worker in turn: back within 30 s, no job lost."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    save_tiny_models(tmp_path / "models", translator="tiny-p2p", sampler="tiny-digits")
    # a sampler slow enough (seconds a job on CPU) that the infer worker is mid-job at its kill
    slow = models.create("unetgan-generator", image_size=128, width=32, latent_dim=32)
    models.save(slow, tmp_path / "models" / "slow-sampler")
    env = clean_env(port) | {
        "GANSERVE_DATA_DIR": str(tmp_path),
        "GANSERVE_VISIBILITY_TIMEOUT": "4",  # leases of 2 s
        "GANSERVE_RECONCILE_SECONDS": "1",
    }
    exe = str(Path(sys.executable).parent / "ganserve")
    process = subprocess.Popen(
        [exe, "up", "--no-demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_ready(process, port)
        threads = f"GANSERVE_TORCH_THREADS={torch_threads_per_worker()}".encode()
        for name in ("worker-infer", "worker-train"):  # the cores divided between the workers
            environ = Path(f"/proc/{launcher_children(process.pid)[name]}/environ").read_bytes()
            assert threads in environ.split(b"\0")
        with httpx.Client(base_url=url, timeout=30) as client:
            for name in ("worker-infer", "redis", "gateway", "worker-train"):
                job = client.post(
                    "/v1/samples", json={"model": "slow-sampler", "count": 32, "seed": 3}
                )
                assert job.status_code == 202, job.text
                time.sleep(1.0)  # the infer worker has started it
                children = launcher_children(process.pid)
                assert set(children) == {"redis", "gateway", "worker-infer", "worker-train"}
                os.kill(children[name], signal.SIGKILL)
                killed = time.monotonic()
                time.sleep(1)
                wait_ready(process, port, timeout=30)
                assert time.monotonic() - killed < 30, name
                assert launcher_children(process.pid)[name] != children[name]  # a new process
                done = wait_job(client, job.json()["id"], timeout=90)
                assert done["status"] == "succeeded", (name, done)
    finally:
        output = stop(process)  # Ctrl-C still stops everything
    for name in ("worker-infer", "redis", "gateway", "worker-train"):
        assert f"the {name} process exited (code -9); starting it again" in output, output
    assert processes_using(tmp_path) == []


class FakeChild:
    """A child for the supervisor's rules: dies when told, counts its starts."""

    def __init__(self) -> None:
        self.running, self.starts, self.cleanups = True, 0, 0

    def supervised(self) -> Supervised:
        def start() -> None:
            self.running, self.starts = True, self.starts + 1

        def cleanup() -> None:
            self.cleanups += 1

        return Supervised(
            alive=lambda: self.running, exit_code=lambda: -9, cleanup=cleanup, start=start
        )


def test_supervisor_backs_off_and_gives_up_after_repeated_exits():
    now = [0.0]
    said: list[str] = []
    supervisor = Supervisor(RestartPolicy(), said.append, clock=lambda: now[0])
    child = FakeChild()
    supervisor.add("worker-infer", child.supervised())
    delays = []
    for _ in range(4):
        child.running = False
        supervisor.check()  # noticed: cleaned up, restart scheduled
        restart_at = supervisor.children["worker-infer"].restart_at
        delays.append(restart_at - now[0])
        now[0] = restart_at
        supervisor.check()  # due: started again
        assert child.running
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert child.starts == 4 and child.cleanups == 4
    assert "the worker-infer process exited (code -9); starting it again in 1 s" in said[0]
    child.running = False
    with pytest.raises(StackGaveUp, match="exited 5 times within 60 s"):
        supervisor.check()


def test_exits_spread_over_more_than_the_window_never_give_up():
    now = [0.0]
    supervisor = Supervisor(RestartPolicy(), lambda _: None, clock=lambda: now[0])
    child = FakeChild()
    supervisor.add("gateway", child.supervised())
    for _ in range(20):
        child.running = False
        supervisor.check()
        now[0] += 61.0  # one exit a minute: the backoff starts over each time
        supervisor.check()
        assert child.running
    assert child.starts == 20


def test_a_restart_that_fails_counts_as_an_exit():
    now = [0.0]
    said: list[str] = []
    supervisor = Supervisor(RestartPolicy(), said.append, clock=lambda: now[0])

    def refuse() -> None:
        raise RuntimeError("port in use")

    supervisor.add(
        "redis",
        Supervised(alive=lambda: False, exit_code=lambda: 1, cleanup=lambda: None, start=refuse),
    )
    supervisor.check()
    now[0] += 1.0
    supervisor.check()
    assert "did not start again: port in use" in said[1]
    assert supervisor.children["redis"].restart_at == 1.0 + 2.0  # backed off further


def test_the_cores_are_divided_between_the_workers(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(8)))
    assert torch_threads_per_worker(2) == 4
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0})
    assert torch_threads_per_worker(2) == 1
