"""Errors a job can end with, worded for the person who asked for the job.

Code that does a job's work raises `JobFailure(code, message)` where it knows what went wrong in
the user's terms (a model that cannot be loaded, an image that cannot be read, an unknown config
field). Anything else is turned into a generic sentence by `describe`; the traceback goes to the
worker's log, not to the user. Torch-free, so the Celery parent process can import it.
"""

from __future__ import annotations

import errno

from core.jobs import JobError


class JobFailure(Exception):
    """A job failed for a reason a person can act on: `code` is snake_case, `message` a sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_error(self) -> JobError:
        """The error stored in the job's record."""
        return JobError(code=self.code, message=self.message)


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def describe(exc: BaseException) -> JobError:
    """The error to record for an exception that ended a job."""
    if isinstance(exc, JobFailure):
        return exc.to_error()
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" ({exc.filename})" if exc.filename else ""
        return JobError(
            code="storage_full",
            message=f"the storage volume is full: the worker could not write the job's files"
            f"{where}; nothing half-written was kept. Free space under the data dir and submit "
            "the job again",
        )
    if _is_out_of_memory(exc):
        return JobError(
            code="out_of_memory",
            message="the worker ran out of memory running this job; try fewer or smaller images, "
            "a smaller batch size, or a worker with more memory",
        )
    detail = str(exc).strip() or "no details"
    return JobError(
        code="internal_error",
        message=f"the job failed unexpectedly ({type(exc).__name__}: {detail}); the worker's "
        "log has the details",
    )
