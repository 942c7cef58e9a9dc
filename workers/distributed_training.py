"""Training runs on several devices of the worker's host: torchrun, supervised by the worker.

A training job with `devices: N` (N > 1) trains under torchrun with DistributedDataParallel on N
GPUs of the training worker's host (NCCL), or, on a host without CUDA, in N CPU processes
(gloo), the same path. `train_on_devices` takes the place of `training.loop.train` in
`workers.training_jobs.run_training`, with the same callbacks, so everything the worker does
around a run stays as it is in process:

- It starts `python -m workers.torchrun --standalone --nproc_per_node N -m
  workers.training_rank <channel>` in a session of its own (a SIGTERM to the worker's process
  group reaches the worker alone, which stops the run gracefully), and talks with rank 0
  through the channel folder (`workers.run_channel`): rank 0 reports progress, which the worker
  turns into the job's progress, details and events as before; it reports a background run's
  checkpoints, which the worker registers while rank 0 waits; it says how the run ended.
- Every `POLL_SECONDS` the worker asks `should_stop()` (cancellation, the lease, a waiting run
  for a background one, its own SIGTERM); when it says stop, the worker asks the ranks to stop:
  they agree on it before their next step, rank 0 writes the checkpoint, and the run returns
  `cancelled` just as in process.
- When anything else ends the supervision (the lease lost, the time limit's interruption, a
  failure to register), the processes are ended without writing anything: SIGTERM to torchrun,
  which ends its ranks, and SIGKILL after `END_SECONDS`. When the worker itself is killed,
  torchrun and its ranks die with it (`workers.torchrun`: the kernel's parent-death signal), so
  a restarted worker resumes the run from its checkpoint with no process of the old one left.
- A process that fails says why in the channel; the first failure becomes the job's error
  (a dataset, checkpoint or config error keeps its code, as in process).

Rank 0 writes the run folder (`storage.run_dir(job)`) exactly as a run in process does.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import workers
from core.settings import Settings
from training.data import DatasetError
from training.loop import (
    CheckpointCallback,
    Progress,
    ProgressCallback,
    RunOptions,
    RunResult,
    StopCheck,
)
from training.state import StateError
from workers.errors import JobFailure
from workers.run_channel import RunChannel
from workers.torchrun import PARENT_VARIABLE

POLL_SECONDS = 0.2  # how often the worker reads rank 0's events and asks should_stop()
END_SECONDS = 10.0  # how long torchrun gets to end its ranks before it is killed
# The exceptions a rank reports that keep their meaning (and the job's error code) here.
KNOWN_ERRORS: dict[str, type[ValueError]] = {
    "DatasetError": DatasetError,
    "StateError": StateError,
    "ValueError": ValueError,
}


class TrainingProcessFailed(RuntimeError):
    """A process of a multi-device run failed for a reason that is not the job's input."""


def check_devices(devices: Any, settings: Settings) -> int:
    """The devices a job asks for, when this worker can give them (JobFailure otherwise: an
    out-of-range value, or more GPUs than this host has)."""
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise JobFailure("invalid_config", f"devices must be a whole number >= 1, not {devices!r}")
    if devices > settings.max_training_devices:
        raise JobFailure(
            "invalid_config",
            f"the run asks for {devices} devices and at most {settings.max_training_devices} are "
            "allowed (GANSERVE_MAX_TRAINING_DEVICES)",
        )
    if devices > 1 and torch.cuda.is_available() and torch.cuda.device_count() < devices:
        raise JobFailure(
            "not_enough_devices",
            f"the run asks for {devices} GPUs and the training worker's host has "
            f"{torch.cuda.device_count()}; ask for fewer devices, or ask the operator for a "
            "training worker with more GPUs",
        )
    return devices


def launch_command(devices: int, channel: Path) -> list[str]:
    """torchrun (bound to this process) on `devices` local processes of `workers.training_rank`."""
    return [
        sys.executable,
        "-m",
        "workers.torchrun",
        "--standalone",  # a rendezvous on this host, on a free port
        f"--nproc_per_node={devices}",
        "--max_restarts=0",  # a failed run fails its job; the queue resumes it, not torchrun
        "-m",
        "workers.training_rank",
        str(channel),
    ]


def rank_environment(devices: int, settings: Settings) -> dict[str, str]:
    """The ranks' environment: this process's, this code first on the path, this process as
    the parent they die with, and the CPU threads divided between them."""
    threads = max(1, (settings.torch_threads or len(os.sched_getaffinity(0))) // devices)
    code = str(Path(workers.__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [code, os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        "PYTHONPATH": path,
        PARENT_VARIABLE: str(os.getpid()),
        "GANSERVE_TORCH_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
    }


def spec_of(
    job_id: str, family_name: str, options: RunOptions, config: Any, publish: bool
) -> dict[str, Any]:
    """What the ranks train, as JSON (`workers.training_rank.read_spec` reads it back)."""
    return {
        "job": job_id,
        "family": family_name,
        "options": dataclasses.asdict(options),
        "config": dataclasses.asdict(config),
        "publish_checkpoints": publish,
    }


def train_on_devices(
    devices: int,
    job_id: str,
    settings: Settings,
    family_name: str,
    options: RunOptions,
    config: Any,
    *,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    on_checkpoint: CheckpointCallback | None = None,
) -> RunResult:
    """`training.loop.train` of job `job_id` on `devices` processes under torchrun."""
    with tempfile.TemporaryDirectory(
        prefix=f"ganserve-run-{job_id}-", ignore_cleanup_errors=True
    ) as folder:
        channel = RunChannel(Path(folder))
        channel.write_spec(spec_of(job_id, family_name, options, config, on_checkpoint is not None))
        process = subprocess.Popen(
            launch_command(devices, channel.folder),
            env=rank_environment(devices, settings),
            start_new_session=True,  # the worker's SIGTERM is the worker's to act on
        )
        try:
            _supervise(process, channel, on_progress, should_stop, on_checkpoint)
        finally:
            end(process)
        return run_outcome(process.returncode, channel, devices)


def _supervise(
    process: subprocess.Popen[bytes],
    channel: RunChannel,
    on_progress: ProgressCallback | None,
    should_stop: StopCheck | None,
    on_checkpoint: CheckpointCallback | None,
) -> None:
    """Relay rank 0's events until torchrun exits; ask the ranks to stop when told to."""
    stopping = False
    while True:
        exited = process.poll() is not None  # then every event it sent is in the file
        for event in channel.new_events():
            if event["event"] == "progress" and on_progress is not None:
                on_progress(Progress(event["step"], event["total"], event["stats"]))
            elif event["event"] == "checkpoint" and on_checkpoint is not None:
                on_checkpoint(event["step"], Path(event["model_dir"]))
                channel.published(event["step"])
        if exited:
            return
        if not stopping and should_stop is not None and should_stop():
            channel.request_stop()
            stopping = True
        time.sleep(POLL_SECONDS)


def end(process: subprocess.Popen[bytes]) -> None:
    """End torchrun and its ranks if they still run: SIGTERM (torchrun ends its ranks), then
    SIGKILL (the ranks die with it)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(END_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_outcome(returncode: int | None, channel: RunChannel, devices: int) -> RunResult:
    """How the run ended, or the exception its first failing process reported."""
    result = channel.result()
    if result is not None:  # rank 0 wrote the run's last files, then this
        return RunResult(
            result["status"],
            result["step"],
            result["total"],
            Path(result["model_dir"]),
            result["stats"],
        )
    error = channel.first_error()
    if error is None:
        raise TrainingProcessFailed(
            f"the training processes ended (exit code {returncode}) without saying why; "
            "the worker's log has their output"
        )
    message = error["message"]
    if error["type"] in KNOWN_ERRORS:
        raise KNOWN_ERRORS[error["type"]](message)
    if error["errno"] is not None:  # a full disk is `storage_full`, as in process
        raise OSError(error["errno"], os.strerror(error["errno"]))
    if error["type"] in ("MemoryError", "OutOfMemoryError"):
        raise MemoryError(message)
    raise TrainingProcessFailed(
        f"process {error['rank']} of {devices} failed: {error['type']}: {message}"
    )
