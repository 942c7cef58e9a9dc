"""Mixed precision and memory layout: where bf16 autocast pays, and where not.

Training runs (`training.loop`) and the inference workers' fast path (`workers.fast_path`) decide
alike.

On CUDA, bf16 autocast and channels_last (as stylegan2-ada-pytorch and the papers' successors
train). On a CPU, bf16 is a speed path only where the hardware multiplies bf16 natively (Intel
AMX or AVX512-BF16, which oneDNN uses for convolutions); elsewhere oneDNN emulates it and a step
runs many times slower (measured by `benchmarks/train_step.py`: 0.06x on an AVX2-only AMD EPYC),
so the loop keeps fp32 there. channels_last is a CUDA-only choice: on a CPU with native bf16 it
made no step faster and pix2pix's 1.3x slower (measured on an AVX512-BF16 AMD EPYC, 2 threads).
`--no-amp` turns autocast off everywhere; exact resume is guaranteed for fp32 runs.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@lru_cache
def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX or AVX512-BF16 in its flags)."""
    try:
        flags = set(cpuinfo.read_text(errors="replace").split())
    except OSError:
        return False
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def use_autocast(device: torch.device, amp: bool) -> bool:
    """bf16 autocast for this run: asked for, and on CUDA or a CPU with native bf16."""
    if not amp:
        return False
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on `device` when `enabled`, else nothing."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def memory_format(device: torch.device, channels_last: bool) -> torch.memory_format:
    """channels_last on CUDA when asked for; contiguous elsewhere."""
    if channels_last and device.type == "cuda":
        return torch.channels_last
    return torch.contiguous_format
