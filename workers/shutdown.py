"""Stopping a worker in the middle of a training run without losing the run.

When the stack stops (`ganserve up` on Ctrl-C sends SIGTERM to each worker's process group, as a
container runtime does on `docker stop` to the whole container), the pool process running a
training run notes the signal; the training loop's should-stop check sees it, the run writes its
checkpoint and stops, the job goes back to `queued` and its message is requeued (`Reject`), so
the next worker resumes it from that checkpoint. Inference jobs are short and simply finish.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_requested = threading.Event()


class WorkerShuttingDown(Exception):
    """Raised by a job interrupted because its worker is stopping; the job is requeued."""


def shutdown_requested() -> bool:
    """Whether this (pool) process was asked to stop."""
    return _requested.is_set()


def _note_sigterm(signum: int, frame: Any) -> None:
    _requested.set()


@contextmanager
def sigterm_requests_stop() -> Iterator[None]:
    """While a training run runs: SIGTERM sets the flag instead of ending the process mid-step.

    Installed around the run itself, in the pool process's main thread: billiard resets signal
    handlers after `worker_process_init`, so a handler installed there would not last.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread (e.g. --pool solo tests)
        return
    previous = signal.signal(signal.SIGTERM, _note_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
