"""How many pool processes a Celery worker runs, decided in its parent before it forks them.

An infer worker on a host with an NVIDIA GPU runs 2 pool processes (`GANSERVE_INFER_CONCURRENCY`
sets another number). Each loads its own copy of the models (unet_256: 54 M parameters, about
220 MB in fp32) and takes its own batches (`workers.batching`), so while one reads inputs,
updates job records in Redis or codes PNGs, the other's forward pass keeps the GPU busy. Without
MPS the two processes' kernels do not run at the same time (the GPU switches between their
contexts): what pays is the host work of one filling the other's gaps. On a CPU the model itself
is the bottleneck and two processes only split its cores (docs/performance.md, "The command line
on a folder": 0.61x against 0.72x with one), so 1. A worker of any other queue runs 1 (a training
run holds the device it trains on). A worker started with `--concurrency` keeps that number.

The parent imports neither torch nor anything that initialises CUDA (`workers.tasks`: a CUDA
context does not survive a fork). GPUs are counted through NVML (`libnvidia-ml`, the driver's
management library, which creates no CUDA context) and narrowed by `CUDA_VISIBLE_DEVICES`; a
torch built without CUDA (no `libtorch_cuda.so` beside it) counts as no GPU, since its pool
processes would run on the CPU.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

from core.jobs import QUEUE_INFER
from core.settings import Settings

CUDA_INFER_CONCURRENCY = 2
NVML_SUCCESS = 0


def visible_nvidia_gpus() -> int:
    """NVIDIA GPUs this process may use (0 without the driver or with CUDA_VISIBLE_DEVICES
    hiding them), counted without creating a CUDA context."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    allowed = None
    if visible is not None:
        entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
        if not entries or entries[0].startswith("-"):  # "" or "-1": no device
            return 0
        allowed = len(entries)
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return 0
    if nvml.nvmlInit_v2() != NVML_SUCCESS:
        return 0
    try:
        count = ctypes.c_uint(0)
        if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) != NVML_SUCCESS:
            return 0
    finally:
        nvml.nvmlShutdown()
    return count.value if allowed is None else min(allowed, count.value)


def torch_has_cuda() -> bool:
    """Whether the installed torch is a CUDA build, found without importing it."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(
        (Path(location) / "lib" / "libtorch_cuda.so").is_file()
        for location in spec.submodule_search_locations
    )


def cuda_host() -> bool:
    """Whether a pool process here would run its networks on CUDA."""
    return torch_has_cuda() and visible_nvidia_gpus() > 0


def pool_size(queues: Sequence[str] | None, settings: Settings) -> int:
    """The pool processes of a worker consuming `queues` (None: the default queue, infer)
    started without `--concurrency`."""
    if list(queues or [QUEUE_INFER]) != [QUEUE_INFER]:
        return 1
    if settings.infer_concurrency is not None:
        return settings.infer_concurrency
    return CUDA_INFER_CONCURRENCY if cuda_host() else 1
