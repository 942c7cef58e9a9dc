"""`python -m workers.torchrun ARGS`: torchrun (`torch.distributed.run`) that dies with its worker.

A multi-device training run (`workers.distributed_training`) starts this in place of `torchrun`.
It and every process it starts (`workers.training_rank`) ask the kernel to SIGKILL them when the
process that started them dies (Linux's `PR_SET_PDEATHSIG`), so a worker killed in the middle of
a run (SIGKILL, the OOM killer, Celery's hard time limit) leaves no training process behind to
train on, and hold the GPUs, beside the worker that resumes the run.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_VARIABLE = "GANSERVE_PARENT_PID"  # the pid of the process that started this one
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> None:
    """Be SIGKILLed when the process that started this one dies; leave at once if it is gone
    already (this process's parent is no longer the pid `GANSERVE_PARENT_PID` names). A no-op
    where the C library has no `prctl` (not Linux)."""
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)
    if prctl is None:
        return
    if prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG): {os.strerror(error)}")
    parent = os.environ.get(PARENT_VARIABLE)
    if parent is not None and os.getppid() != int(parent):
        os._exit(1)  # the parent died before the line above took effect


def main(argv: list[str]) -> None:
    """Run torchrun on `argv`, bound to this process's parent, and its ranks bound to it."""
    die_with_parent()
    os.environ[PARENT_VARIABLE] = str(os.getpid())  # what the ranks check in their turn
    from torch.distributed.run import main as torchrun

    torchrun(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
