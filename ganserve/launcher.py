"""`ganserve up`: the whole stack on one machine, from one command.

Starts an embedded Redis (unless `GANSERVE_REDIS_URL` names one), the gateway and one Celery
worker per queue as child processes, queues the demo models' training when no model exists yet,
and on Ctrl-C (or SIGTERM) stops every child, Redis last, so nothing outlives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx

from ganserve.contract import QUEUES
from ganserve.demo_models import request_demo_models
from ganserve.embedded_redis import EmbeddedRedis
from ganserve.processes import gateway_command, worker_command
from ganserve.settings import Settings
from ganserve.storage import Storage


class StartupError(RuntimeError):
    """A child process of the stack did not come up; the message says which."""


@dataclass
class Stack:
    """The child processes of a running stack."""

    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        """Start a child in its own process group (so its own children stop with it)."""
        self.processes[name] = subprocess.Popen(command, env=env, start_new_session=True)

    def failed(self) -> str | None:
        """The name of a child that exited, if any."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                return name
        return None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every child's process group, then SIGKILL what is left after `timeout`."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def start_services(stack: Stack, settings: Settings, env: dict[str, str]) -> None:
    """Start the gateway and one worker per queue, as `ganserve up` and Compose do."""
    stack.start("gateway", gateway_command(settings), env)
    for queue in QUEUES:
        stack.start(f"worker-{queue}", worker_command(queue), env)


def wait_for_gateway(url: str, stack: Stack, timeout: float = 60.0) -> None:
    """Wait until the gateway answers /healthz (or a child dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (name := stack.failed()) is not None:
            raise StartupError(f"the {name} process exited during start-up")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise StartupError(f"the gateway did not answer at {url} within {timeout:.0f} s")


def up(settings: Settings, *, demo: bool = True, echo: Callable[[str], None] = print) -> int:
    """Run the stack until interrupted; returns the exit code."""
    storage = Storage(settings.data_dir)
    storage.ensure()
    stack = Stack()
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    with ExitStack() as cleanup:
        redis_url = settings.redis_url
        if redis_url is None:
            server = cleanup.enter_context(EmbeddedRedis(settings.data_dir / "redis"))
            redis_url = server.url
            echo(f"embedded Redis on {redis_url} (data in {settings.data_dir / 'redis'})")
        env = {
            **os.environ,
            "GANSERVE_REDIS_URL": redis_url,
            "GANSERVE_DATA_DIR": str(settings.data_dir.resolve()),
        }
        cleanup.callback(stack.stop)
        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        cleanup.callback(lambda: [signal.signal(s, h) for s, h in previous.items()])
        start_services(stack, settings, env)
        url = f"http://{settings.host}:{settings.port}"
        wait_for_gateway(url, stack)
        echo(f"ganserve is up: {url} (API docs at {url}/docs); Ctrl-C stops it")
        if demo:
            keys = settings.key_list
            jobs = request_demo_models(url, settings.data_dir, keys[0] if keys else None)
            if jobs:
                echo(
                    f"no model yet: training demo models through the queue (jobs {', '.join(jobs)})"
                )
        while not stopping:
            if (name := stack.failed()) is not None:
                echo(f"the {name} process exited; stopping ganserve")
                return 1
            time.sleep(0.5)
        echo("stopping ganserve")
    return 0
