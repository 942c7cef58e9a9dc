"""deploy/kubernetes renders, every object matches its schema, the manifests agree with the code.

Each overlay is rendered by kubectl's kustomize and every object validated
(tests/deploy/kubernetes.py); then the manifests are checked against ganserve itself: the commands
and health checks against `ganserve.processes`, the environment against `core.settings`, the
grace periods against the time limits, the KEDA triggers against the Redis lists Celery really
writes (a real Redis) and the metrics the gateway really serves (a real gateway); and against
what the deployment promises: no volume shared between pods, nothing published outside the
cluster, secrets only referenced.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import httpx
import pytest
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from core.jobs import QUEUE_INFER, QUEUE_TRAIN, QUEUES, fair_priority
from core.queues import queue_length
from core.settings import Settings
from ganserve.processes import gateway_command, worker_command, worker_health_command
from tests.conftest import redis_db
from tests.deploy.compose import load as load_compose
from tests.deploy.kubernetes import (
    KUBERNETES_VERSIONS,
    OVERLAYS,
    SECRET_EXAMPLE,
    container,
    find,
    pod_specs,
    render,
    validate,
)
from tests.service.conftest import start_gateway
from tests.workers.processes import client as celery_client
from workers.concurrency import CUDA_INFER_CONCURRENCY

NAMESPACE = "ganserve"
WORKERS = {"worker-infer": QUEUE_INFER, "worker-train": QUEUE_TRAIN}
GANSERVE_WORKLOADS = ("gateway", *WORKERS)
AWS_VARIABLES = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"}
SECRET_VARIABLES = {"GANSERVE_API_KEYS", "GANSERVE_OPERATOR_KEYS", "AWS_SECRET_ACCESS_KEY"}
# The metadata each KEDA scaler reads (KEDA v2.20, pkg/scalers/redis_scaler.go and
# metrics_api_scaler.go): KEDA ignores any other key, so a misspelt one would go unnoticed.
KEDA_METADATA = {
    "redis": {
        "address", "addresses", "host", "hosts", "port", "ports", "addressFromEnv",
        "hostFromEnv", "portFromEnv", "usernameFromEnv", "passwordFromEnv", "listName",
        "listLength", "activationListLength", "databaseIndex", "enableTLS", "unsafeSsl",
    },
    "metrics-api": {
        "targetValue", "activationTargetValue", "url", "format", "valueLocation", "unsafeSsl",
        "timeout", "authMode", "method", "keyParamName",
    },
}  # fmt: skip


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request) -> str:
    return request.param


@pytest.fixture
def objects(overlay) -> list[dict[str, Any]]:
    return render(overlay)


@pytest.fixture
def gpu() -> list[dict[str, Any]]:
    return render("gpu")


def as_python(command: list[str]) -> list[str]:
    """A `ganserve.processes` command as the image runs it: `python` for this interpreter."""
    return ["python", *command[1:]]


def environment(objects: list[dict[str, Any]], workload: str) -> dict[str, Any]:
    """A container's environment: ConfigMap values (envFrom) overridden by its own `env`
    entries (a value, or the `valueFrom` reference), as the kubelet resolves it."""
    config_maps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    box = container(objects, workload)
    env: dict[str, Any] = {}
    for source in box.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for entry in box.get("env", []):
        env[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return env


def settings_variables() -> set[str]:
    prefix = Settings.model_config["env_prefix"]
    return {prefix + name.upper() for name in Settings.model_fields}


def secret_example() -> dict[str, Any]:
    return yaml.safe_load(SECRET_EXAMPLE.read_text())


def secret_refs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every secretKeyRef of every container, and every secretTargetRef of KEDA's objects."""
    refs = []
    for spec in pod_specs(objects).values():
        for box in spec["containers"]:
            refs += [e["valueFrom"]["secretKeyRef"] for e in box.get("env", []) if "valueFrom" in e]
    for auth in (o for o in objects if o["kind"] == "TriggerAuthentication"):
        refs += auth["spec"]["secretTargetRef"]
    return refs


def metric_selector(location: str) -> tuple[str, dict[str, str]]:
    """`name{label="value",...}` (a metrics-api trigger's valueLocation) as name and labels."""
    match = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:\w+="[^"]*",?)*)\}', location)
    assert match, f"not a metric selector: {location}"
    return match[1], dict(re.findall(r'(\w+)="([^"]*)"', match[2]))


def metric_value(text: str, location: str) -> float:
    """What KEDA's metrics-api trigger (format: prometheus) reads from a /metrics page: the
    value of the first sample of the named metric whose labels include the selector's."""
    name, labels = metric_selector(location)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return sample.value
    raise AssertionError(f"{location} is not on the page")


def test_every_object_matches_its_schema(objects) -> None:
    assert objects
    for version in KUBERNETES_VERSIONS:
        for obj in objects:
            validate(obj, version)
    validate(secret_example(), KUBERNETES_VERSIONS[0])


def test_everything_in_one_namespace_with_its_label(objects) -> None:
    namespaced = [o for o in objects if o["kind"] != "Namespace"]
    assert {o["metadata"].get("namespace") for o in namespaced} == {NAMESPACE}
    assert find(objects, "Namespace", NAMESPACE)
    assert secret_example()["metadata"]["namespace"] == NAMESPACE
    for name in pod_specs(objects):
        workload = next(
            o for o in objects if o["metadata"]["name"] == name and "template" in o["spec"]
        )
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "ganserve", name


def test_commands_are_the_processes(objects) -> None:
    gateway = container(objects, "gateway")
    assert gateway["args"] == as_python(gateway_command(Settings(host="0.0.0.0", port=8000)))
    assert gateway["image"].split(":")[0] == "ganserve-gateway"
    for name, queue in WORKERS.items():
        worker = container(objects, name)
        assert worker["args"] == as_python(worker_command(queue)), name
        # args only: the image's entrypoint `tini -g` forwards SIGTERM to the pool process too.
        assert "command" not in worker, name
        assert worker["image"].split(":")[0] == "ganserve-worker"
    # The same commands as Compose's.
    compose = load_compose()["services"]
    for name in GANSERVE_WORKLOADS:
        assert container(objects, name)["args"] == compose[name]["command"], name


def test_probes(objects) -> None:
    gateway = container(objects, "gateway")
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["startupProbe"]["httpGet"]["path"] == "/healthz"
    # /readyz must not wait for workers that autoscaling may have taken to zero.
    assert environment(objects, "gateway")["GANSERVE_READY_QUEUES"] == ""
    for name, queue in WORKERS.items():
        worker = container(objects, name)
        health = as_python(worker_health_command(queue))
        for probe in ("startupProbe", "livenessProbe"):
            assert worker[probe]["exec"]["command"] == health, (name, probe)
            # The check waits up to workers.liveness.TIMEOUT_S (10 s) for the answer.
            assert worker[probe]["timeoutSeconds"] >= 20, (name, probe)
        startup = worker["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "torch loads first"
    for name, spec in pod_specs(objects).items():
        for box in spec["containers"]:
            assert "livenessProbe" in box, name


def test_grace_periods_let_the_running_job_end(objects) -> None:
    settings = Settings(**{
        key.removeprefix("GANSERVE_").lower(): value
        for key, value in environment(objects, "worker-infer").items()
        if key in settings_variables() and isinstance(value, str)  # not a secretKeyRef
    })  # fmt: skip
    specs = pod_specs(objects)
    # A scale-in lets a running inference job finish, however long its time limit lets it run.
    _, hard = settings.time_limits(QUEUE_INFER)
    assert specs["worker-infer"]["terminationGracePeriodSeconds"] > hard
    # A training run checkpoints and requeues on SIGTERM: at least Compose's stop_grace_period.
    compose_grace = int(load_compose()["services"]["worker-train"]["stop_grace_period"][:-1])
    assert specs["worker-train"]["terminationGracePeriodSeconds"] >= max(compose_grace, 300)


def test_pods_share_no_volume(objects) -> None:
    assert not [o for o in objects if o["kind"] in ("PersistentVolumeClaim", "PersistentVolume")]
    for name in GANSERVE_WORKLOADS:
        spec = pod_specs(objects)[name]
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert all(set(v) == {"name", "emptyDir"} for v in volumes.values()), name
        # The local folder is the pod's own emptyDir, with a bound.
        data_dir = environment(objects, name)["GANSERVE_DATA_DIR"]
        (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == data_dir]
        assert volumes[mount["name"]]["emptyDir"]["sizeLimit"], name
        # Everything shared lives in the object store.
        assert environment(objects, name)["GANSERVE_STORAGE_URL"].startswith("s3://"), name
    for spec in pod_specs(objects).values():
        assert not [v for v in spec.get("volumes", []) if "hostPath" in v]


def test_gpus(objects, overlay) -> None:
    for name, spec in pod_specs(objects).items():
        limits = spec["containers"][0]["resources"]["limits"]
        assert limits["memory"], name
        wants_gpu = overlay != "cpu" and name in WORKERS
        assert ("nvidia.com/gpu" in limits) == wants_gpu, name
        if wants_gpu:
            assert limits["nvidia.com/gpu"] == 1
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
                "tolerations"
            ]
        else:
            assert "tolerations" not in spec, name
    if overlay == "cpu":
        for name in WORKERS:
            cores = container(objects, name)["resources"]["requests"]["cpu"]
            assert environment(objects, name)["GANSERVE_TORCH_THREADS"] == cores


def test_worker_memory_above_the_pool_limit(objects) -> None:
    for name in WORKERS:
        limit = container(objects, name)["resources"]["limits"]["memory"]
        assert limit.endswith("Gi"), limit
        pool_mb = int(environment(objects, name)["GANSERVE_WORKER_MAX_MEMORY_MB"])
        assert int(limit[:-2]) * 1024 >= 1.5 * pool_mb, name


def test_infer_memory_above_the_pool_limit_of_each_gpu_process(objects) -> None:
    """The infer worker runs CUDA_INFER_CONCURRENCY pool processes on a GPU node."""
    limit = container(objects, "worker-infer")["resources"]["limits"]["memory"]
    pool_mb = int(environment(objects, "worker-infer")["GANSERVE_WORKER_MAX_MEMORY_MB"])
    assert int(limit[:-2]) * 1024 >= 1.5 * CUDA_INFER_CONCURRENCY * pool_mb, limit


def test_nothing_published_outside_the_cluster(objects) -> None:
    assert not [o for o in objects if o["kind"] in ("Ingress", "HTTPRoute", "Gateway")]
    for service in (o for o in objects if o["kind"] == "Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]
    for spec in pod_specs(objects).values():
        assert not spec.get("hostNetwork")
        for box in spec["containers"]:
            assert all("hostPort" not in p for p in box.get("ports", []))
    gateway = find(objects, "Service", "gateway")
    assert gateway["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http"}]


def test_pods_run_unprivileged(objects) -> None:
    for name, spec in pod_specs(objects).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["automountServiceAccountToken"] is False, name
        for box in spec["containers"]:
            context = box["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
    for name in GANSERVE_WORKLOADS:  # the images' user (docker/*.Dockerfile)
        assert pod_specs(objects)[name]["securityContext"]["runAsUser"] == 10001


def test_settings_are_settings(objects) -> None:
    known = settings_variables()
    for config_map in (o for o in objects if o["kind"] == "ConfigMap"):
        for key, value in config_map["data"].items():
            assert key in known | AWS_VARIABLES, f"{key}: no code reads it"
            assert isinstance(value, str)
            assert key not in SECRET_VARIABLES | {"AWS_ACCESS_KEY_ID"}, f"{key} is a secret"
    # The values are ones the settings accept.
    for name in GANSERVE_WORKLOADS:
        ganserve = {k: v for k, v in environment(objects, name).items() if k in known}
        values = {k.removeprefix("GANSERVE_").lower(): v for k, v in ganserve.items()}
        Settings(**{k: v for k, v in values.items() if isinstance(v, str)})


def test_secrets_are_referenced_not_inlined(objects) -> None:
    assert not [o for o in objects if o["kind"] == "Secret"], "the Secret is the operator's own"
    example = secret_example()["stringData"]
    for ref in secret_refs(objects):
        assert ref["name"] == "ganserve-secrets"
        assert ref["key"] in example, f"secret.example.yaml lacks {ref['key']}"
    for name in GANSERVE_WORKLOADS:
        env = environment(objects, name)
        for variable in SECRET_VARIABLES & set(env):
            assert env[variable]["secretKeyRef"]["key"] == variable, (name, variable)
    assert "secretKeyRef" in environment(objects, "gateway")["GANSERVE_API_KEYS"]
    for name in WORKERS:
        assert "GANSERVE_API_KEYS" not in environment(objects, name)
    # The example holds placeholders only, which the gateway refuses.
    assert example["GANSERVE_API_KEYS"] == "change-me"
    with pytest.raises(ValueError, match="placeholder"):
        Settings(api_keys=example["GANSERVE_API_KEYS"])


def test_redis_like_compose(overlay, objects) -> None:
    if overlay == "external-redis":
        assert not [o for o in objects if o["metadata"]["name"] == "redis"]
        for name in GANSERVE_WORKLOADS:
            url = environment(objects, name)["GANSERVE_REDIS_URL"]
            assert url == {
                "secretKeyRef": {"name": "ganserve-secrets", "key": "GANSERVE_REDIS_URL"}
            }
        return
    redis_set = find(objects, "StatefulSet", "redis")
    compose = load_compose()["services"]["redis"]
    assert container(objects, "redis")["args"] == compose["command"]
    assert container(objects, "redis")["image"] == compose["image"]
    (claim,) = redis_set["spec"]["volumeClaimTemplates"]
    assert container(objects, "redis")["volumeMounts"] == [
        {"name": claim["metadata"]["name"], "mountPath": "/data"}
    ]
    service = find(objects, "Service", "redis")
    assert service["spec"]["ports"][0]["port"] == 6379
    for name in GANSERVE_WORKLOADS:
        assert environment(objects, name)["GANSERVE_REDIS_URL"] == "redis://redis:6379/0"
    # Only ganserve's pods and KEDA reach it.
    (rule,) = find(objects, "NetworkPolicy", "redis")["spec"]["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "ganserve"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}},
    ]


def kombu_lists(queue: str) -> list[str]:
    """The Redis lists of a Celery queue with priorities: `queue` and `queue\\x06\\x16<step>`."""
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    return [f"{queue}{Channel.sep}{step}" if step else queue for step in PRIORITY_STEPS]


def test_inference_scales_on_every_list_of_the_infer_queue(objects, overlay) -> None:
    scaled = find(objects, "ScaledObject", "worker-infer")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"name": "worker-infer"}
    assert spec["minReplicaCount"] >= 1
    triggers = spec["triggers"]
    assert [t["type"] for t in triggers] == ["redis"] * len(triggers)
    assert sorted(t["metadata"]["listName"] for t in triggers) == sorted(kombu_lists(QUEUE_INFER))
    # Their sum, not their largest (KEDA's default for several triggers).
    modifiers = spec["advanced"]["scalingModifiers"]
    assert set(re.split(r"\s*\+\s*", modifiers["formula"])) == {t["name"] for t in triggers}
    assert float(modifiers["target"]) > 0
    for trigger in triggers:
        assert set(trigger["metadata"]) <= KEDA_METADATA["redis"]
        assert trigger["metadata"]["databaseIndex"] == "0"  # GANSERVE_REDIS_URL's /0
        if overlay == "external-redis":
            assert trigger["authenticationRef"] == {"name": "ganserve-redis"}
            assert "address" not in trigger["metadata"]
        else:
            # KEDA's operator runs in its own namespace: the Redis Service's full name.
            assert trigger["metadata"]["address"] == f"redis.{NAMESPACE}.svc.cluster.local:6379"
    if overlay == "external-redis":
        auth = find(objects, "TriggerAuthentication", "ganserve-redis")
        parameters = {ref["parameter"]: ref["key"] for ref in auth["spec"]["secretTargetRef"]}
        assert parameters == {"address": "REDIS_ADDRESS", "password": "REDIS_PASSWORD"}


def test_the_listed_lists_are_where_the_gateway_queues_jobs(gpu, redis_url) -> None:
    """Jobs sent as the gateway sends them, with each priority fair queueing gives, land in the
    lists the triggers read, and the triggers' sum is the queue's length."""
    url = redis_db(redis_url, 13)
    client = redis.Redis.from_url(url)
    client.flushdb()
    priorities = sorted({fair_priority(n) for n in range(1000)})
    assert priorities == [0, 3, 6, 9]
    sender = celery_client(url)
    for priority in priorities:
        sender.send_task("ganserve.probe", args=["job"], queue=QUEUE_INFER, priority=priority)
    triggers = find(gpu, "ScaledObject", "worker-infer")["spec"]["triggers"]
    lengths = [client.llen(t["metadata"]["listName"]) for t in triggers]
    assert lengths == [1, 1, 1, 1]
    assert sum(lengths) == queue_length(client, QUEUE_INFER)
    client.flushdb()


def test_training_scales_on_waiting_and_running_runs(objects) -> None:
    spec = find(objects, "ScaledObject", "worker-train")["spec"]
    assert spec["scaleTargetRef"] == {"name": "worker-train"}
    assert spec["minReplicaCount"] == 0
    assert "fallback" not in spec, "an unreadable metric keeps the workers, never starts one"
    triggers = {t["name"]: t for t in spec["triggers"]}
    assert {t["type"] for t in triggers.values()} == {"metrics-api"}
    locations = {name: t["metadata"]["valueLocation"] for name, t in triggers.items()}
    assert {name: metric_selector(loc) for name, loc in locations.items()} == {
        "waiting": ("ganserve_queue_depth", {"queue": QUEUE_TRAIN}),
        "running": ("ganserve_jobs_running", {"queue": QUEUE_TRAIN}),
    }
    modifiers = spec["advanced"]["scalingModifiers"]
    assert modifiers["formula"] == "waiting + running"
    assert float(modifiers["activationTarget"]) == 0 and float(modifiers["target"]) >= 1
    assert spec["cooldownPeriod"] >= 300
    for trigger in triggers.values():
        metadata = trigger["metadata"]
        assert set(metadata) <= KEDA_METADATA["metrics-api"]
        assert metadata["format"] == "prometheus"
        assert float(metadata["targetValue"]) > 0
        url = urllib.parse.urlsplit(metadata["url"])
        assert url.hostname == f"gateway.{NAMESPACE}.svc.cluster.local"
        assert url.port == find(objects, "Service", "gateway")["spec"]["ports"][0]["port"]
        assert url.path == "/metrics"


@pytest.fixture(scope="module")
def metrics_page(redis_url, tmp_path_factory) -> str:
    """The /metrics page of a real gateway, with no worker and nothing queued."""
    gateway = start_gateway(tmp_path_factory.mktemp("metrics"), redis_url)
    try:
        response = httpx.get(f"{gateway.url}/metrics", timeout=10)
        assert response.status_code == 200
        return response.text
    finally:
        gateway.stop()


def test_the_training_metrics_are_on_the_gateway(gpu, metrics_page) -> None:
    """Both series are there, at 0, before any job: KEDA reads a missing one as an error and
    would then never start the first training worker."""
    for trigger in find(gpu, "ScaledObject", "worker-train")["spec"]["triggers"]:
        assert metric_value(metrics_page, trigger["metadata"]["valueLocation"]) == 0
    for queue in QUEUES:
        assert metric_value(metrics_page, f'ganserve_queue_depth{{queue="{queue}"}}') == 0
