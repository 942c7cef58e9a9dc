"""The worker containers' health check: does the worker of this host answer?

`python -m workers.liveness infer@%h` asks the Celery worker named by that template (the
`--hostname` of `ganserve.processes.worker_command`, `%h` expanded to this host's name as Celery
expands it) for a ping over Redis: exit 0 when it answers within `TIMEOUT_S`, 1 when it does not,
with a one-line reason on stderr. Compose's healthcheck and the Kubernetes liveness and startup
probes run it inside the worker's own container, so "this host" is the worker's.

A ping rather than a check of the process: the worker's main process answers control messages
from its event loop, also while its pool process runs a job, so an answer shows that it lives,
holds its broker connection and reads its messages; a hung or disconnected worker does not
answer. It costs one short Python process (this module and Celery's app, no torch: about 0.4 s
of CPU) per check; the probes run it once a minute.
"""

from __future__ import annotations

import argparse
import sys

from celery.utils.nodenames import host_format

from workers.celery_app import celery_app

TIMEOUT_S = 10.0


def worker_answers(node: str, timeout: float = TIMEOUT_S) -> bool:
    """Whether the Celery worker named `node` (e.g. `infer@host`) answers a ping in time."""
    replies = celery_app.control.ping(destination=[node], timeout=timeout)
    return any(node in reply for reply in replies)


def main(argv: list[str] | None = None) -> int:
    """The command line: 0 when the worker answers, 1 (and why, on stderr) when not."""
    parser = argparse.ArgumentParser(
        prog="python -m workers.liveness",
        description="Exit 0 when the Celery worker of this host answers a ping, 1 otherwise.",
    )
    parser.add_argument("node", help="the worker's --hostname template, e.g. infer@%%h")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds to wait")
    args = parser.parse_args(argv)
    node = host_format(args.node)
    try:
        if worker_answers(node, args.timeout):
            return 0
        reason = f"no answer within {args.timeout:g} s"
    except Exception as exc:  # the broker cannot be reached: unhealthy, said in one line
        reason = f"cannot ask it: {exc}"
    print(f"worker {node}: {reason}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
