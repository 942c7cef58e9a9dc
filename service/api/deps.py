"""Dependencies of the routes, as `Annotated` aliases (the full-stack-fastapi-template style).

Everything per-application (settings, the Redis client, the job store, the Celery app used to send
tasks by name, the storage paths) is created once by `service.app.create_app` and kept on
`app.state`; these functions hand it to the routes. They are `async def` because they neither block
nor wait: FastAPI runs a plain `def` dependency in its thread pool, a hand-off to a thread and back
for each one of every request. They take the request and read `app.state` rather than depend on
each other: FastAPI solves a dependency's own dependencies again wherever it is used (a cached
one too), and each costs a few microseconds of every request. The API key is checked once, by
`require_key`, the dependency of every `/v1` route.
"""

from __future__ import annotations

from typing import Annotated

import redis
from celery import Celery
from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.jobs import JobStore
from core.settings import Settings
from core.storage import Storage
from service.job_changes import JobChanges
from service.jobs import JobQueue
from service.security import Caller, authenticate, caller

bearer = HTTPBearer(
    auto_error=False,
    description="An API key from GANSERVE_API_KEYS (needed only when keys are configured).",
)


async def get_app_settings(request: Request) -> Settings:
    """The settings the application was created with."""
    return request.app.state.settings


async def get_redis(request: Request) -> redis.Redis:
    """The application's Redis client (job records and the broker's queues)."""
    return request.app.state.redis


async def get_job_store(request: Request) -> JobStore:
    """The job records."""
    return request.app.state.job_store


async def get_celery(request: Request) -> Celery:
    """The Celery app that sends tasks by name (it does not import the workers)."""
    return request.app.state.celery


async def get_job_changes(request: Request) -> JobChanges:
    """The process's subscriber to job changes (`service.job_changes`)."""
    return request.app.state.job_changes


async def get_storage(request: Request) -> Storage:
    """The store of uploads, results, models and runs (`core.storage`)."""
    return request.app.state.storage


def _owner(request: Request) -> str:
    """The caller: "anonymous" without configured keys, else the digest of a valid key (401)."""
    return authenticate(request.headers.get("authorization"), request.app.state.settings.key_list)


async def require_key(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The dependency of every `/v1` route (`service.app`): the caller, 401 without a valid key
    when keys are configured; through `bearer`, the OpenAPI document's security scheme."""
    return _owner(request)


async def get_owner(request: Request) -> str:
    """The caller (see `require_key`, which has checked the key already)."""
    return _owner(request)


async def get_caller(request: Request) -> Caller:
    """The caller and what it may see and manage (`service.security.Caller`)."""
    settings = request.app.state.settings
    return caller(_owner(request), settings.key_list, settings.operator_key_list)


async def get_job_queue(request: Request, response: Response) -> JobQueue:
    """Submission of the caller's jobs: capacity checks, record, task (`service.jobs.JobQueue`);
    an operator (or everyone, without keys) has no per-key limit."""
    state = request.app.state
    settings = state.settings
    owner = _owner(request)
    operator = caller(owner, settings.key_list, settings.operator_key_list).operator
    return JobQueue(
        state.job_store,
        state.celery,
        state.redis,
        settings.max_queued_jobs,
        owner,
        response,
        state.storage.objects,
        max_queued_per_key=None if operator else settings.max_queued_jobs_per_key,
        fair_queueing=settings.fair_queueing,
    )


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
StoreDep = Annotated[JobStore, Depends(get_job_store)]
CeleryDep = Annotated[Celery, Depends(get_celery)]
StorageDep = Annotated[Storage, Depends(get_storage)]
JobChangesDep = Annotated[JobChanges, Depends(get_job_changes)]
OwnerDep = Annotated[str, Depends(get_owner)]
CallerDep = Annotated[Caller, Depends(get_caller)]
JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]
