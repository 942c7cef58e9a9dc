"""The Python client of the ganserve API (torch-free, in the base install).

    from ganserve.client import Client

    with Client("http://127.0.0.1:8000", api_key="...") as client:
        client.translate("edges.png", "edges2shoes").save("shoe.png")
        pictures = client.sample("digits", 4, seed=7, class_label=3)

`Client` blocks; `AsyncClient` is its asyncio twin. Jobs are `Job` / `AsyncJob` objects; every
error is a `GanserveError` subclass (`ganserve.client.errors`). The modules: `sync` and
`asynchronous` (the two clients), `operations` and `calls` (the requests and flows both run),
`jobs`, `results`, `images` (what an image argument may be), `uploads`, `retry`, `config`,
`errors`. See docs/client.md.
"""

from ganserve.client.asynchronous import AsyncClient
from ganserve.client.errors import (
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    GanserveError,
    InvalidField,
    JobCancelled,
    JobFailed,
    NotFound,
    PayloadTooLarge,
    QueueFull,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    StorageFull,
    Timeout,
    Unauthorized,
    UnsupportedType,
)
from ganserve.client.jobs import AsyncJob, Job, JobEvent
from ganserve.client.results import Inspection, Interpolation, Projection
from ganserve.client.retry import RetryPolicy
from ganserve.client.sync import Client

__all__ = [
    "AsyncClient",
    "AsyncJob",
    "BadRequest",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "GanserveError",
    "Inspection",
    "Interpolation",
    "InvalidField",
    "Job",
    "JobCancelled",
    "JobEvent",
    "JobFailed",
    "NotFound",
    "PayloadTooLarge",
    "Projection",
    "QueueFull",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "StorageFull",
    "Timeout",
    "Unauthorized",
    "UnsupportedType",
]
