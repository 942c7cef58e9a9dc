"""Errors a job can end with, worded for the person who asked for the job.

Code that does a job's work raises `JobFailure(code, message)` where it knows what went wrong in
the user's terms (a model that cannot be loaded, an image that cannot be read, an unknown config
field). Anything else is turned into a generic sentence by `describe`; the traceback goes to the
worker's log, not to the user. A message names what the user sent (a file by its name), never a
path on the server; as a last line of defence, every error recorded here has the storage root
replaced by a placeholder (`core.server_paths`). Torch-free, so the Celery parent process can
import it.
"""

from __future__ import annotations

import errno
import os
from pathlib import PurePath

from core.jobs import JobError
from core.server_paths import hide_storage_root


class JobFailure(Exception):
    """A job failed for a reason a person can act on: `code` is snake_case, `message` a sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_error(self) -> JobError:
        """The error stored in the job's record (without the storage root)."""
        return JobError(code=self.code, message=hide_storage_root(self.message))


def exception_text(exc: BaseException) -> str:
    """What an exception says, without the file names an OSError carries in its text."""
    if isinstance(exc, OSError) and (exc.filename is not None or exc.filename2 is not None):
        return exc.strerror or type(exc).__name__
    return str(exc).strip()


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
        name = PurePath(os.fsdecode(exc.filename)).name if exc.filename else ""
        where = f" ({name})" if name else ""
        return JobError(
            code="storage_full",
            message=f"the storage volume is full: the worker could not write the job's files"
            f"{where}; nothing half-written was kept. Free space on the service's storage "
            "volume and submit the job again",
        )
    if _is_out_of_memory(exc):
        return JobError(
            code="out_of_memory",
            message="the worker ran out of memory running this job; try fewer or smaller images, "
            "a smaller batch size, or a worker with more memory",
        )
    detail = exception_text(exc) or "no details"
    return JobError(
        code="internal_error",
        message=hide_storage_root(
            f"the job failed unexpectedly ({type(exc).__name__}: {detail}); the worker's "
            "log has the details"
        ),
    )
