"""`ganserve up` as a real process: the whole stack starts, answers, and stops on Ctrl-C."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ganserve.embedded_redis import free_port


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_up_runs_the_stack_and_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    env = {**os.environ, "GANSERVE_DATA_DIR": str(tmp_path), "GANSERVE_PORT": str(port)}
    env.pop("GANSERVE_REDIS_URL", None)
    exe = str(Path(sys.executable).parent / "ganserve")
    process = subprocess.Popen(
        [exe, "up", "--no-demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert ready is not None and ready.status_code == 200, ready and ready.text
        assert (tmp_path / "redis" / "redis.log").exists()  # the embedded Redis persists here
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "ganserve is up" in output and "stopping ganserve" in output
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
