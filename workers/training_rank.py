"""One process of a training run on several devices: `python -m workers.training_rank CHANNEL`.

`workers.distributed_training` has torchrun start N of these. Each reads what to train from the
run's channel folder (`workers.run_channel`), joins the process group (`training.distributed`:
NCCL on GPUs, gloo on CPUs) and trains its share of every batch with the one training loop
(`training.loop.train`); rank 0 writes the run folder as a run in the worker's own process
does. Rank 0 also reports to the worker through the channel: progress at every logged step,
each checkpoint of a background run (and waits until the worker has registered it, as the loop
does in process) and how the run ended. Before every step all ranks agree on whether the worker
asked them to stop (`training.distributed.any_rank`), so they stop at the same step, checkpoint
and end together. A process that fails records why in the channel, for the job's error.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import pydantic

from core.logs import about_job, configure_logging, process_name
from core.storage import DATASET_FILE
from training import distributed
from training.data import DatasetWarning
from training.families import training_family
from training.loop import Progress, RunOptions, RunResult, train
from workers.model_cache import configure_torch
from workers.run_channel import RunChannel
from workers.torchrun import die_with_parent

log = logging.getLogger(__name__)


def read_spec(spec: dict[str, Any]) -> tuple[str, RunOptions, Any]:
    """The family, run options and family config the worker wrote into the channel."""
    family_name = spec["family"]
    options = pydantic.TypeAdapter(RunOptions).validate_python(spec["options"])
    config_class = training_family(family_name).config_class
    config = pydantic.TypeAdapter(config_class).validate_python(spec["config"])
    return family_name, options, config


def run(channel: RunChannel, spec: dict[str, Any], rank: int) -> RunResult:
    """Train this process's part of the run `spec` describes, reporting through `channel`."""
    family_name, options, config = read_spec(spec)

    def report(progress: Progress) -> None:
        channel.send(
            {
                "event": "progress",
                "step": progress.step,
                "total": progress.total,
                "stats": progress.stats,
            }
        )

    def publish(step: int, model_dir: Path) -> None:
        channel.send({"event": "checkpoint", "step": step, "model_dir": str(model_dir)})
        channel.wait_published(step)

    def should_stop() -> bool:
        return distributed.any_rank(channel.stop_requested())

    with warnings.catch_warnings():
        # the dataset's own description is not a training image
        warnings.filterwarnings(
            "ignore", message=rf"skipped .*{DATASET_FILE}", category=DatasetWarning
        )
        return train(
            family_name,
            options,
            config,
            on_progress=report if rank == 0 else None,
            should_stop=should_stop,
            on_checkpoint=publish if spec["publish_checkpoints"] else None,
        )


def main(argv: list[str]) -> int:
    """Train as rank $RANK of the run whose channel folder is `argv[0]`; the exit code."""
    die_with_parent()
    rank = int(os.environ.get("RANK", "0"))
    configure_logging(f"{process_name()}-rank{rank}")
    configure_torch()
    channel = RunChannel(Path(argv[0]))
    spec = channel.spec()
    with about_job(spec["job"]):
        try:
            result = run(channel, spec, rank)
        except Exception as exc:
            channel.write_error(rank, exc)
            if isinstance(exc, ValueError):  # a dataset, a checkpoint or options the job names
                log.error("training process %d stopped: %s", rank, exc)
            else:
                log.exception("training process %d failed", rank)
            return 1
        if rank == 0:
            channel.write_result(
                {
                    "status": result.status,
                    "step": result.step,
                    "total": result.total,
                    "model_dir": str(result.model_dir),
                    "stats": result.stats,
                }
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
