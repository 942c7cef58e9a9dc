"""Liveness and readiness (outside /v1, never behind an API key)."""

from __future__ import annotations

import logging

import redis
from fastapi import APIRouter

from core.jobs import QUEUES
from service.api.deps import CeleryDep, RedisDep, SettingsDep
from service.errors import ApiError
from service.schemas import Health, Readiness, error_responses

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

INSPECT_TIMEOUT_S = 1.0


@router.get("/healthz")
def get_health() -> Health:
    """The gateway process answers."""
    return Health()


@router.get("/readyz", responses=error_responses(503))
def get_readiness(client: RedisDep, celery_app: CeleryDep, settings: SettingsDep) -> Readiness:
    """Redis answers and has room, and a worker consumes each queue of GANSERVE_READY_QUEUES
    (both by default); else 503 `not_ready`. The reply counts the workers of every queue."""
    try:
        client.ping()
    except redis.RedisError as exc:
        log.info("not ready: Redis does not answer: %s", exc)
        raise ApiError(503, "not_ready", "Redis does not answer.") from None
    memory = client.info("memory")
    if 0 < int(memory.get("maxmemory", 0)) <= int(memory.get("used_memory", 0)):
        raise ApiError(
            503,
            "not_ready",
            "Redis is out of memory (maxmemory reached): new jobs are refused until it has room.",
        )
    try:
        replies = celery_app.control.inspect(timeout=INSPECT_TIMEOUT_S).active_queues() or {}
    except Exception as exc:
        log.info("not ready: cannot ask the workers: %s", exc)
        raise ApiError(503, "not_ready", "The workers cannot be asked (broker error).") from None
    counts = dict.fromkeys(QUEUES, 0)
    for queues in replies.values():
        for name in {q.get("name") for q in queues or [] if isinstance(q, dict)}:
            if name in counts:
                counts[name] += 1
    missing = [name for name in settings.ready_queue_list if counts[name] == 0]
    if missing:
        raise ApiError(
            503,
            "not_ready",
            f"No worker consumes the queue{'s' if len(missing) > 1 else ''} "
            f"{' and '.join(missing)}.",
        )
    return Readiness(redis="ok", queues=counts)
