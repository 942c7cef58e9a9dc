"""One log format for every ganserve process: the launcher, the gateway and the workers.

Every line names its process (`gateway`, `worker-infer`, `worker-train`, `launcher`: the
`GANSERVE_PROCESS_NAME` the launcher and Compose set, else guessed from the command line) and
its pid, and carries the request id of the HTTP request and the job id of the job it is about
when there is one (context variables set by the gateway's request middleware and by the
worker around a job's work):

    2026-12-07 05:50:01.123 INFO  gateway[4242] service.access: GET /v1/jobs 200 3.1 ms [req=9b1e]
    2026-12-07 05:50:02.456 INFO  worker-infer[4250] workers.jobs: job 3f2c succeeded [job=3f2c]

`GANSERVE_LOG_FORMAT=json` writes one JSON object per line instead (python-json-logger), with
the same fields (`time`, `level`, `process_name`, `pid`, `logger`, `message`, `request_id`,
`job_id`), for log shippers. Torch-free.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

request_id: ContextVar[str | None] = ContextVar("ganserve_request_id", default=None)
job_id: ContextVar[str | None] = ContextVar("ganserve_job_id", default=None)

TEXT_FORMAT = (
    "%(asctime)s.%(msecs)03d %(levelname)-5s %(process_name)s[%(process)d] %(name)s: "
    "%(message)s%(context)s"
)
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
JSON_FIELDS = "%(asctime)s %(levelname)s %(process_name)s %(process)d %(name)s %(message)s"
JSON_RENAMES = {"asctime": "time", "levelname": "level", "process": "pid", "name": "logger"}
# Libraries whose every line is ours to format (they otherwise bring their own handlers).
OWN_HANDLERS = ("uvicorn", "uvicorn.error", "celery", "celery.task")
# uvicorn's access log is replaced by the gateway's (`service.request_log`, with request ids);
# httpx's request lines (the launcher's health checks) are noise at INFO.
SILENCED = {"uvicorn.access": logging.CRITICAL + 1, "httpx": logging.WARNING}


NAME_VARIABLE = "GANSERVE_PROCESS_NAME"


def process_name() -> str:
    """This process's name in the logs: GANSERVE_PROCESS_NAME, else from its command line."""
    named = os.environ.get(NAME_VARIABLE)
    if named:
        return named
    argv = sys.argv
    if "uvicorn" in " ".join(argv):
        return "gateway"
    if "--queues" in argv:
        return f"worker-{argv[argv.index('--queues') + 1]}"
    return "ganserve"


class ContextFilter(logging.Filter):
    """Adds the process name, the request id and the job id to every record."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.process_name = name

    def filter(self, record: logging.LogRecord) -> bool:
        record.process_name = self.process_name
        record.request_id = request_id.get()
        record.job_id = job_id.get()
        parts = [f"req={record.request_id}"] if record.request_id else []
        parts += [f"job={record.job_id}"] if record.job_id else []
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return True


def formatter(fmt: str | None = None) -> logging.Formatter:
    """The text formatter, or the JSON one when GANSERVE_LOG_FORMAT is `json`."""
    if (fmt or os.environ.get("GANSERVE_LOG_FORMAT", "text")).lower() == "json":
        return JsonFormatter(
            JSON_FIELDS + " %(request_id)s %(job_id)s",
            rename_fields=JSON_RENAMES,
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    return logging.Formatter(TEXT_FORMAT, DATE_FORMAT)


def configure_logging(name: str | None = None, level: int = logging.INFO) -> None:
    """Send every log record of this process to stderr in ganserve's format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter())
    handler.addFilter(ContextFilter(name or process_name()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for logger_name in OWN_HANDLERS:
        library = logging.getLogger(logger_name)
        library.handlers[:] = []
        library.propagate = True
    for logger_name, floor in SILENCED.items():
        logging.getLogger(logger_name).setLevel(floor)
    logging.captureWarnings(True)  # warnings too, in the same format


@contextlib.contextmanager
def about_job(job: str) -> Iterator[None]:
    """Every line logged inside the block names `job`."""
    token = job_id.set(job)
    try:
        yield
    finally:
        job_id.reset(token)
