"""Settings of every ganserve process, read from `GANSERVE_*` environment variables.

Served by a cached function (`get_settings`) rather than an import-time singleton, as in the
full-stack-fastapi-template, so tests and launchers can change the environment first. This module
must stay torch-free: the gateway imports it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.jobs import QUEUES

PLACEHOLDER_KEYS = frozenset({"change-me", "changeme"})


class Settings(BaseSettings):
    """Configuration shared by the gateway, the workers and the command line."""

    model_config = SettingsConfigDict(env_prefix="GANSERVE_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./var"),
        description="Local data directory: the storage root (models, datasets, uploads, results, "
        "training runs) unless GANSERVE_STORAGE_URL names another; with an S3 store, this host's "
        "cache of model versions and datasets and its training runs' working copies.",
    )
    storage_url: str | None = Field(
        default=None,
        description="Where uploads, results, datasets, model versions and training runs live: "
        "unset, the data directory; a local path or file:///path; or s3://bucket/prefix on any "
        "S3-compatible store, reached with the AWS SDKs' variables (AWS_ENDPOINT_URL, "
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION).",
    )
    cache_max_bytes: int = Field(
        default=20 * 1024**3,
        ge=0,
        description="With an S3 store: bytes of model versions and datasets each host keeps "
        "downloaded under the data directory's cache/ (least recently used removed first).",
    )
    result_links: Literal["gateway", "presigned"] = Field(
        default="gateway",
        description="How clients fetch result images: `gateway` (the gateway serves them, "
        "checking the API key) or `presigned` (with an S3 store, result URLs are time-limited "
        "presigned URLs of the store itself; a local store always uses the gateway).",
    )
    presigned_url_seconds: int = Field(
        default=3600,
        ge=60,
        le=7 * 24 * 3600,
        description="Lifetime of a presigned result URL (GANSERVE_RESULT_LINKS=presigned).",
    )

    inception_weights: Path | None = Field(
        default=None,
        description="Inception-v3 weights for FID, KID and IS (pt_inception-2015-12-05-6726825d"
        ".pth or a .safetensors conversion); without them those metrics are reported unavailable.",
    )

    redis_url: str | None = Field(
        default=None,
        description="Redis for the queue and job records; unset: `ganserve up` starts an embedded "
        "Redis persisting under the storage root.",
    )
    host: str = Field(default="127.0.0.1", description="Address the gateway binds to.")
    port: int = Field(default=8000, description="Port of the gateway.")
    gateway_processes: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Processes of the gateway, sharing its port (uvicorn's workers); unset: one "
        "per two usable CPU cores, at most 8, so 1 on a machine of 2 or 3 cores. In a container "
        "limited by a CPU quota, set it (the Kubernetes manifests set 1 and scale pods instead).",
    )
    api_keys: str = Field(
        default="",
        description="Comma-separated API keys; when set every /v1 route needs "
        "`Authorization: Bearer <key>` and a key sees only its own jobs and datasets.",
    )
    operator_keys: str = Field(
        default="",
        description="Comma-separated API keys of operators (accepted as API keys too); unset: "
        "the first of GANSERVE_API_KEYS. Models an operator owns (the demo models) are shared "
        "with every key; operators may delete any model and see every key's usage.",
    )
    max_model_bytes: int = Field(
        default=1024 * 1024 * 1024,
        description="Largest model upload (POST /v1/models: a model zip, or a .pth with its "
        "discriminator).",
    )
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, description="Largest image upload.")
    max_image_pixels: int = Field(
        default=4096 * 4096, description="Largest width x height of an uploaded image."
    )
    max_archive_bytes: int = Field(default=512 * 1024 * 1024, description="Largest dataset zip.")
    max_archive_entries: int = Field(default=100_000, description="Most files in a dataset zip.")
    max_extracted_bytes: int = Field(
        default=2 * 1024 * 1024 * 1024, description="Largest uncompressed size of a dataset zip."
    )
    max_queued_jobs: int = Field(
        default=100, description="Queued jobs per queue before new ones get 429."
    )
    max_queued_jobs_per_key: int | None = Field(
        default=None,
        ge=1,
        description="Queued jobs per queue of one API key before its new ones get 429 "
        "`key_queue_full` (unset: only the queue's limit); operator keys are exempt.",
    )
    key_requests_per_second: int | None = Field(
        default=None,
        ge=1,
        description="Requests per second one API key may send to /v1 (unset: no limit); past "
        "it, 429 `rate_limited` with Retry-After.",
    )
    operator_requests_per_second: int | None = Field(
        default=None,
        ge=1,
        description="The same for each operator key (unset: operators are not limited).",
    )
    requests_per_second: int | None = Field(
        default=None,
        ge=1,
        description="Requests per second the gateway takes from everyone together (unset: no "
        "limit).",
    )
    webhook_allow_http: bool = Field(
        default=False,
        description="Let webhooks use plain http URLs (https only by default).",
    )
    webhook_allowed_hosts: str = Field(
        default="",
        description="Comma-separated host names and networks (CIDR) webhooks may reach although "
        "they are not public (loopback, private, link-local); none by default.",
    )
    webhook_retry_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Seconds before a failed webhook delivery is tried again the first time; "
        "doubling after each failure, at most an hour apart, for 24 h.",
    )
    ready_queues: str = Field(
        default="infer,train",
        description="Comma-separated queues that GET /readyz requires a worker for; empty: ready "
        "as soon as Redis answers and has room (for autoscaled workers, which may be at zero "
        "while jobs queue up: the Kubernetes manifests set it empty).",
    )
    fair_queueing: bool = Field(
        default=True,
        description="Order each queue fairly between API keys: a key's jobs beyond its first "
        "8 waiting go behind other keys' (Celery priorities); false: first come, first served.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines of every process: text (one line each, with the process name, "
        "request id and job id) or json (one JSON object per line, for log shippers).",
    )
    train_demos: bool = Field(
        default=False,
        description="At a fresh start, also train one demo model per family in the background "
        "(the pretrained ones ship and serve at once; by default an idle stack is idle).",
    )
    background_slice_seconds: float = Field(
        default=180.0,
        gt=0,
        description="Seconds a background training run (the demo models) trains before it "
        "yields to another background run waiting; a foreground run waiting makes it yield at "
        "its next step.",
    )
    model_cache_size: int = Field(default=4, description="Models a worker keeps loaded.")
    model_versions_kept: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Versions of each model kept: registering a new one removes the oldest "
        "beyond this many, except versions that a queued or running job pinned (a background "
        "demo run registers a version at every checkpoint).",
    )
    visibility_timeout: int = Field(
        default=3600,
        ge=1,
        description="Seconds before Redis delivers a vanished worker's unacknowledged task again "
        "(longer than any inference job); job leases last half of it, 2 to 60 s.",
    )
    torch_threads: int | None = Field(
        default=None,
        ge=1,
        description="CPU threads torch uses in each worker process (unset: torch's default; "
        "`ganserve up` divides the cores between its workers).",
    )
    reconcile_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Seconds between the workers' reconciler passes, which send the task again "
        "for jobs left with no queue message and no worker (e.g. after a Redis restart).",
    )
    result_ttl: int = Field(
        default=7 * 24 * 3600,  # core.jobs.JOB_TTL_SECONDS, the records' life before it was set
        ge=1,
        description="Seconds an ended job's record lives after its last change; its results, "
        "uploads and training run folder are removed by the workers' sweeper once it is gone "
        "(a queued or running job's record lives at least 7 days after each change).",
    )
    sweep_seconds: float = Field(
        default=600.0,
        ge=0,
        description="Seconds between the workers' storage sweeps (files of expired jobs, "
        "orphans, staging leftovers, stale exports); 0 turns the sweeper off.",
    )
    sweep_grace_seconds: float = Field(
        default=600.0,
        ge=0,
        description="Seconds an entry without a job record (or a staging leftover) must be "
        "unchanged before the sweeper may remove it: the gateway stores a job's upload just "
        "before it records the job, and an S3 store's clock may differ a little from the "
        "workers'.",
    )
    worker_max_memory_mb: int = Field(
        default=8192,
        ge=0,
        description="A worker's pool process is replaced after a job that leaves it using more "
        "than this many MiB of memory (0: never).",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port on which each worker serves its Prometheus metrics at /metrics (job "
        "durations and outcomes, queue waits, batch sizes, model cache, GPU memory); unset: "
        "off. `ganserve up` gives its infer worker this port and its train worker the next.",
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the workers' metrics endpoint binds to (0.0.0.0 in a container "
        "that Prometheus scrapes from outside).",
    )
    max_batch: int | None = Field(
        default=None,
        ge=1,
        description="Most images (counted at the model's size) an infer worker runs in one "
        "forward pass, gathering waiting jobs of the same model and kind (unset: 8 on CPU, 32 "
        "on CUDA; 1 turns batching off).",
    )
    batch_wait_ms: float | None = Field(
        default=None,
        ge=0,
        description="Milliseconds an infer worker waits for more jobs to fill a batch (unset: 0 "
        "on CPU, take what is already queued; 5 on CUDA).",
    )
    precision: Literal["auto", "bf16", "fp32"] = Field(
        default="auto",
        description="Inference precision: auto = bf16 autocast on CUDA and on CPUs with native "
        "bf16 (AMX or AVX512-BF16), else fp32; fp32 turns the fast path off.",
    )
    compile: Literal["default", "reduce-overhead"] | None = Field(
        default=None,
        description="torch.compile the inference networks, one graph per power-of-two batch "
        "bucket: `1` (or `default`) in torch.compile's default mode; `reduce-overhead` adds CUDA "
        "graphs on CUDA (translations at the model's own size, and samples; other sizes "
        "compiled without them; on a CPU the same as `1`); unset or `0`: off (on the CPU it "
        "measured no faster than bf16 eager; on CUDA `benchmarks/gpu.sh` measures all three).",
    )
    infer_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Pool processes of an infer worker, each with its own copy of the models "
        "taking its own batches, so that one's bookkeeping and PNG coding overlap another's "
        "pass on the device (unset: 2 on a host with an NVIDIA GPU, 1 without; a worker started "
        "with `--concurrency` keeps that). Other queues' workers run 1 unless told otherwise.",
    )
    family_modules: str = Field(
        default="",
        description="Model families kept outside ganserve's packages: comma-separated import "
        "paths of modules each holding one torch-free `FAMILY` row (`core.families.Family`) "
        "whose `models_package` and `training_module` name the family's networks and hooks and "
        "its training (docs/design/families.md). Every process of the stack must see the same "
        "value, and the modules must be importable (PYTHONPATH). Read once, when "
        "`core.families` is first imported.",
    )
    max_tile_pixels: int | None = Field(
        default=None,
        ge=65536,
        description="Largest image (padded width x height) a native-resolution translation runs "
        "in one piece; larger ones run in overlapping tiles (unset: 2048x2048 on CPU, 4096x4096 "
        "on CUDA).",
    )
    infer_time_limit: int = Field(
        default=600,
        ge=1,
        description="Seconds a job of the infer queue (translation, sample, interpolation, "
        "projection, inspection, model import or export) may run: past it the job fails "
        "`time_limit` and its worker takes the next job (Celery's soft time limit).",
    )
    train_time_limit: int = Field(
        default=7 * 24 * 3600,
        ge=1,
        description="Seconds a training run may run in one go (from its start or its last "
        "resume) before it fails `time_limit`.",
    )
    max_training_devices: int = Field(
        default=8,
        ge=1,
        le=1024,
        description="Most devices one training run may ask for (`devices`): GPUs of the training "
        "worker's host, each trained on by one torchrun process (DDP); on a host without CUDA, "
        "that many CPU processes (gloo). A request over it is refused (422).",
    )
    time_limit_grace: int = Field(
        default=30,
        ge=1,
        description="Seconds a job past its time limit gets to stop by itself; then its pool "
        "process is killed (Celery's hard time limit) and the job fails `time_limit`.",
    )
    sse_keepalive_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Seconds between keep-alive comments on a quiet job event stream.",
    )

    @field_validator(
        "redis_url",
        "gateway_processes",
        "inception_weights",
        "torch_threads",
        "worker_metrics_port",
        "max_batch",
        "batch_wait_ms",
        "compile",
        "infer_concurrency",
        "max_tile_pixels",
        "max_queued_jobs_per_key",
        "key_requests_per_second",
        "operator_requests_per_second",
        "requests_per_second",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable (`GANSERVE_TORCH_THREADS=` in .env, `${VAR:-}` in Compose) means
        unset, as it always has."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("compile", mode="before")
    @classmethod
    def _compile_mode(cls, value: object) -> object:
        """`1`/`true`/`on` (as before: torch.compile's default mode) and `0`/`false`/`off`."""
        if isinstance(value, str):
            value = value.strip().lower()
        if value in (True, "1", "true", "yes", "on"):
            return "default"
        if value in (False, "0", "false", "no", "off"):
            return None
        return value

    @field_validator("api_keys", "operator_keys")
    @classmethod
    def _no_placeholder(cls, value: str) -> str:
        """Refuse .env.example's placeholder instead of running with a key anyone can read."""
        if any(k.strip().lower() in PLACEHOLDER_KEYS for k in value.split(",")):
            raise ValueError(
                "holds the placeholder 'change-me' from .env.example: set real keys (long random "
                "strings, e.g. from `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
            )
        return value

    @field_validator("ready_queues")
    @classmethod
    def _known_queues(cls, value: str) -> str:
        """Only queues that exist: a typo would make /readyz wait for a worker that never comes."""
        unknown = [q for q in value.split(",") if q.strip() and q.strip() not in QUEUES]
        if unknown:
            raise ValueError(
                f"unknown queue {unknown[0].strip()!r}; choose among {', '.join(QUEUES)}"
            )
        return value

    @field_validator("data_dir", "inception_weights")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        """Resolve relative paths once, here, so every child process and the embedded Redis
        (which changes into its own folder) see the same absolute path."""
        return None if path is None else path.expanduser().resolve()

    @property
    def lease_seconds(self) -> int:
        """How long a job's lease outlives its last renewal: half the visibility timeout, 2 to
        60 s, so a redelivered message finds a dead holder's lease gone."""
        return max(2, min(60, self.visibility_timeout // 2))

    def time_limits(self, queue: str) -> tuple[int, int]:
        """The soft and hard time limits (seconds) of a task of `queue` ("infer" or "train"):
        at the soft one the job is stopped and fails `time_limit`; at the hard one, the grace
        later, its pool process is killed."""
        soft = self.train_time_limit if queue == "train" else self.infer_time_limit
        return soft, soft + self.time_limit_grace

    @property
    def key_list(self) -> list[str]:
        """The configured API keys (empty: no authentication)."""
        keys = [k.strip() for k in self.api_keys.split(",") if k.strip()]
        return keys + [k for k in self.operator_key_list if k not in keys]

    @property
    def ready_queue_list(self) -> list[str]:
        """The queues GET /readyz requires a worker for."""
        return [q.strip() for q in self.ready_queues.split(",") if q.strip()]

    @property
    def operator_key_list(self) -> list[str]:
        """The operators' API keys: GANSERVE_OPERATOR_KEYS, else the first API key (if any)."""
        operators = [k.strip() for k in self.operator_keys.split(",") if k.strip()]
        if operators:
            return operators
        keys = [k.strip() for k in self.api_keys.split(",") if k.strip()]
        return keys[:1]

    @property
    def models_dir(self) -> Path:
        """Where model folders (`model.safetensors` + `config.json`) live."""
        return self.data_dir / "models"


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once from the environment."""
    return Settings()
