"""The gateway's server: uvicorn's command line, in as many processes as the settings ask.

`python -m service.uvicorn_server [uvicorn options]` runs `uvicorn [uvicorn options] --workers N`
with N = `gateway_processes(settings.gateway_processes)`: GANSERVE_GATEWAY_PROCESSES, or when it is
unset one process per two usable CPU cores, at most `MAX_AUTO_PROCESSES` (1 on 2 or 3 cores).
`ganserve.processes.gateway_command` builds its command line for `ganserve up`, Compose and the
Kubernetes manifests, so every deployment reads the count from its own environment.

One process is plain uvicorn. With several, uvicorn's supervisor (this process) binds the port,
starts N processes that each build the app (`--factory service.app:serve`) and take connections
from that one socket, starts again one that dies, and stops them all on SIGTERM or SIGINT. What a
gateway process keeps for itself is per process by design (its Redis clients, its job-change
subscriber waking its own long polls and event streams, the model cards it read); everything the
processes must agree on lives in Redis (job records, request rates, idempotency keys, queues). The
HTTP metrics of /metrics are added up over the processes with prometheus_client's multiprocess
mode: the supervisor points PROMETHEUS_MULTIPROC_DIR at a fresh folder before it starts them and
removes the folder when it stops (`service.app`).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile

from pydantic import ValidationError
from uvicorn.main import main as uvicorn_cli

from core.logs import configure_logging
from core.settings import Settings, get_settings

MAX_AUTO_PROCESSES = 8
METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger(__name__)


def gateway_processes(configured: int | None, cores: int | None = None) -> int:
    """The gateway's process count: `configured` when set, else one per two of `cores` (this
    process's usable CPU cores), at least 1 and at most `MAX_AUTO_PROCESSES`."""
    if configured is not None:
        return configured
    cores = len(os.sched_getaffinity(0)) if cores is None else cores
    return max(1, min(cores // 2, MAX_AUTO_PROCESSES))


def settings_or_exit() -> Settings:
    """The settings, or exit 1 after one readable log line naming the invalid variable."""
    try:
        return get_settings()
    except ValidationError as exc:  # one readable line, not a traceback
        first = exc.errors()[0]
        log.error("invalid setting GANSERVE_%s: %s", str(first["loc"][0]).upper(), first["msg"])
        raise SystemExit(1) from None


def _uvicorn(args: list[str], processes: int) -> None:
    """uvicorn's command line with `args`, in `processes` processes. (The supervisor's few lines
    of its own are in uvicorn's format: its command line always configures its loggers.)"""
    with uvicorn_cli.make_context("service.uvicorn_server", args) as context:
        context.params["workers"] = processes
        uvicorn_cli.invoke(context)


def main(argv: list[str] | None = None) -> None:
    """Run uvicorn with `argv` (default: this command's arguments) and the process count."""
    configure_logging()
    args = list(sys.argv[1:] if argv is None else argv)
    processes = gateway_processes(settings_or_exit().gateway_processes)
    if processes == 1:
        _uvicorn(args, 1)
        return
    folder = tempfile.mkdtemp(prefix="ganserve-gateway-metrics-")
    os.environ[METRICS_VARIABLE] = folder  # the processes inherit it (service.app)
    try:
        _uvicorn(args, processes)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
