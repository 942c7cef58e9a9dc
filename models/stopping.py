"""Stopping long work when its job is cancelled: the caller passes `should_stop`, a callable that
says whether to stop (a worker's `JobContext.cancel_requested`); loops over chunks, candidates,
tiles or optimisation steps ask it before each and raise `Stopped`. Models never import the
workers: the callback is all they know of a job."""

from __future__ import annotations

from collections.abc import Callable

ShouldStop = Callable[[], bool]


class Stopped(Exception):
    """The caller's `should_stop()` said True (its job was cancelled): the work stopped."""


def check_stop(should_stop: ShouldStop | None, what: str) -> None:
    """Raise `Stopped` when `should_stop` says so; `what` names the work for the message."""
    if should_stop is not None and should_stop():
        raise Stopped(f"{what} stopped: the caller asked it to")
