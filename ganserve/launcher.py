"""`ganserve up`: the whole stack on one machine, from one command, supervised.

Starts an embedded Redis (unless `GANSERVE_REDIS_URL` names one), the gateway and one Celery
worker per queue as child processes, queues the demo models' training when no model exists yet,
and on Ctrl-C (or SIGTERM) stops every child, Redis last, so nothing outlives it.

It supervises its children as Compose's `restart: unless-stopped` does its containers: a child
that exits (OOM killer, a crash in a native library, a kill) is cleaned up with its whole process
group (a dead worker's pool children too) and started again, on the same data dir and port,
after an exponential backoff (1 s, 2 s, 4 s, ... at most 30 s); each restart is logged. Only when
one child exits 5 times within 60 s does the stack stop, saying so. The CPU cores are divided
between the workers: each gets `GANSERVE_TORCH_THREADS` = cores / workers unless that is set.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import httpx

from core.jobs import QUEUES
from core.logs import NAME_VARIABLE
from core.owners import ANONYMOUS, owner_of_key
from core.settings import Settings
from core.storage import Storage
from ganserve.demo_models import install_demo_models
from ganserve.embedded_redis import EmbeddedRedis
from ganserve.processes import gateway_command, worker_command


class StartupError(RuntimeError):
    """A child process of the stack did not come up; the message says which."""


class StackGaveUp(RuntimeError):
    """A child kept exiting (see `RestartPolicy`): the stack stops; the message says which."""


@dataclass
class Stack:
    """The child processes of a running stack, and how each was started (to start it again)."""

    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    commands: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        """Start a child in its own process group (so its own children stop with it)."""
        self.commands[name] = (command, env)
        self.processes[name] = subprocess.Popen(command, env=env, start_new_session=True)

    def restart(self, name: str) -> None:
        """Start child `name` again with the command and environment it first had."""
        self.start(name, *self.commands[name])

    def reap(self, name: str) -> None:
        """SIGKILL what is left of an exited child's process group (a dead worker's pool)."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

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


@dataclass
class RestartPolicy:
    """When to start an exited child again, and when to give up on it."""

    limit: int = 5  # exits of one child ...
    window: float = 60.0  # ... within this many seconds stop the stack
    first_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, recent_exits: int) -> float:
        """Seconds to wait before the restart that follows the `recent_exits`-th recent exit."""
        return min(self.max_delay, self.first_delay * 2 ** max(0, recent_exits - 1))


@dataclass
class Supervised:
    """One supervised child: how to tell it is alive, clean it up, and start it again."""

    alive: Callable[[], bool]
    exit_code: Callable[[], int | None]
    cleanup: Callable[[], None]
    start: Callable[[], None]
    exits: list[float] = field(default_factory=list)
    restart_at: float | None = None


class Supervisor:
    """Restarts the children that exit, with backoff, per `RestartPolicy`."""

    def __init__(
        self,
        policy: RestartPolicy,
        echo: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy, self.echo, self.clock = policy, echo, clock
        self.children: dict[str, Supervised] = {}

    def add(self, name: str, child: Supervised) -> None:
        """Supervise `child` under `name`."""
        self.children[name] = child

    def check(self) -> None:
        """Notice exits and do due restarts; raise StackGaveUp when a child keeps exiting."""
        now = self.clock()
        for name, child in self.children.items():
            if child.restart_at is None and not child.alive():
                self._exited(name, child, now)
            elif child.restart_at is not None and now >= child.restart_at:
                child.restart_at = None
                try:
                    child.start()
                except Exception as exc:  # e.g. Redis did not come up: counts as an exit
                    self.echo(f"ganserve: the {name} process did not start again: {exc}")
                    self._exited(name, child, self.clock())
                    continue
                self.echo(f"ganserve: the {name} process was started again")

    def _exited(self, name: str, child: Supervised, now: float) -> None:
        code = child.exit_code()
        child.cleanup()
        child.exits = [t for t in child.exits if now - t <= self.policy.window] + [now]
        recent = len(child.exits)
        if recent >= self.policy.limit:
            raise StackGaveUp(
                f"the {name} process exited {recent} times within "
                f"{self.policy.window:.0f} s (last exit code {code}); stopping ganserve"
            )
        delay = self.policy.delay(recent)
        child.restart_at = now + delay
        self.echo(
            f"ganserve: the {name} process exited (code {code}); starting it again in "
            f"{delay:.0f} s ({recent} exit(s) within {self.policy.window:.0f} s)"
        )


def supervise_stack(supervisor: Supervisor, stack: Stack) -> None:
    """Put every child process of `stack` under `supervisor`."""
    for name in stack.processes:
        supervisor.add(
            name,
            Supervised(
                alive=lambda n=name: stack.processes[n].poll() is None,
                exit_code=lambda n=name: stack.processes[n].returncode,
                cleanup=lambda n=name: stack.reap(n),
                start=lambda n=name: stack.restart(n),
            ),
        )


def supervise_redis(supervisor: Supervisor, server: EmbeddedRedis) -> None:
    """Put the embedded Redis under `supervisor` (started again on its port and data)."""

    def alive() -> bool:
        return server.process is not None and server.process.poll() is None

    def exit_code() -> int | None:
        return None if server.process is None else server.process.returncode

    supervisor.add(
        "redis",
        Supervised(alive=alive, exit_code=exit_code, cleanup=server.stop, start=server.start),
    )


def torch_threads_per_worker(workers: int = len(QUEUES)) -> int:
    """This machine's usable CPU cores divided between `workers` worker processes (at least 1)."""
    return max(1, len(os.sched_getaffinity(0)) // workers)


def start_services(stack: Stack, settings: Settings, env: dict[str, str]) -> None:
    """Start the gateway and one worker per queue, as `ganserve up` and Compose do; with
    `settings.worker_metrics_port`, each worker serves its metrics on its own port from there."""
    stack.start("gateway", gateway_command(settings), {**env, NAME_VARIABLE: "gateway"})
    for index, queue in enumerate(QUEUES):
        name = f"worker-{queue}"
        worker_env = {**env, NAME_VARIABLE: name}
        if settings.worker_metrics_port is not None:
            worker_env["GANSERVE_WORKER_METRICS_PORT"] = str(settings.worker_metrics_port + index)
        stack.start(name, worker_command(queue), worker_env)


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


@dataclass
class RunningStack:
    """A stack that is up: the gateway's URL, its child processes and its embedded Redis."""

    url: str
    stack: Stack
    redis: EmbeddedRedis | None
    redis_url: str


@contextmanager
def local_stack(
    settings: Settings, extra_env: Mapping[str, str] | None = None
) -> Iterator[RunningStack]:
    """The stack `ganserve up` runs, up and answering /healthz; stopped on exit, Redis last.

    An embedded Redis under the storage root unless `settings.redis_url` names one, the gateway
    on `settings`' address, one worker per queue, the cores divided between the workers unless
    GANSERVE_TORCH_THREADS is set. `extra_env` is added to the children's environment. The one
    way to start the stack: `up`, the tests and the benchmarks use it.
    """
    Storage.from_settings(settings).ensure()
    with ExitStack() as cleanup:
        redis_server, redis_url = None, settings.redis_url
        if redis_url is None:
            redis_server = cleanup.enter_context(EmbeddedRedis(settings.data_dir / "redis"))
            redis_url = redis_server.url
        env = {
            "GANSERVE_TORCH_THREADS": str(torch_threads_per_worker()),
            **os.environ,
            **(extra_env or {}),
            "GANSERVE_REDIS_URL": redis_url,
            "GANSERVE_DATA_DIR": str(settings.data_dir),
            **({"GANSERVE_STORAGE_URL": settings.storage_url} if settings.storage_url else {}),
            "GANSERVE_HOST": settings.host,
            "GANSERVE_PORT": str(settings.port),
        }
        stack = Stack()
        cleanup.callback(stack.stop)
        start_services(stack, settings, env)
        url = f"http://{settings.host}:{settings.port}"
        wait_for_gateway(url, stack)
        yield RunningStack(url, stack, redis_server, redis_url)


def up(
    settings: Settings,
    *,
    demo: bool = True,
    train_demos: bool = False,
    echo: Callable[[str], None] = print,
    policy: RestartPolicy | None = None,
) -> int:
    """Run the stack until interrupted, restarting children that exit; returns the exit code."""
    policy = policy or RestartPolicy()
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with local_stack(settings) as running:
            if running.redis is not None:
                echo(f"embedded Redis on {running.redis_url} (data in {running.redis.folder})")
            url = running.url
            echo(f"ganserve is up: {url} (API docs at {url}/docs); Ctrl-C stops it")
            if demo:
                keys = settings.operator_key_list  # demo models are the operator's: shared
                owner = owner_of_key(keys[0]) if keys else ANONYMOUS
                storage = Storage.from_settings(settings)
                done = install_demo_models(
                    url, storage, owner, keys[0] if keys else None, train=train_demos
                )
                if done is not None:
                    echo(f"first start: demo models ready ({', '.join(done.models) or 'none'})")
                if done is not None and done.jobs:
                    echo(f"training demo models in the background (jobs {', '.join(done.jobs)})")
            supervisor = Supervisor(policy, echo)
            if running.redis is not None:
                supervise_redis(supervisor, running.redis)
            supervise_stack(supervisor, running.stack)
            while not stopping:
                try:
                    supervisor.check()
                except StackGaveUp as exc:
                    echo(f"ganserve: {exc}")
                    return 1
                time.sleep(0.5)
            echo("stopping ganserve")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
