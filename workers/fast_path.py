"""How the infer worker runs a network fast without changing what it computes beyond rounding.

- **bf16 autocast** on CUDA and on CPUs that multiply bf16 in hardware (AMX or AVX512-BF16,
  `training.precision.cpu_has_native_bf16`); elsewhere fp32, where emulated bf16 is many times
  slower. `GANSERVE_PRECISION=fp32` turns it off (results then equal batch-1 fp32 bit for bit).
- **channels_last** on CUDA only: on the CPU it made pix2pix slower (see `training.precision`).
- **torch.compile** (`GANSERVE_COMPILE=1`, translations and samples): pix2pix batches are padded
  to the next power of two, so a worker compiles at most log2(max batch) + 1 graphs per model and
  shape. Off by default: on this project's 2-core CPU it was no faster than bf16 eager for
  unet_256 and 1.4-1.8x faster for the small samplers (`benchmarks/infer.py`), but each new shape
  compiles for 12 s or more, and the demo models re-register (and reload) at every checkpoint
  while they train; on CUDA it has not been measured yet (`benchmarks/gpu.sh`).

The quality guard (`tests/workers/test_fast_path.py`): the fast path's translations and samples
of a trained model stay within 35 dB PSNR of fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from core.settings import Settings
from training.precision import use_autocast

COMPILED_ATTRIBUTE = "_ganserve_compiled"


def bucket(rows: int) -> int:
    """The batch size a batch of `rows` runs at under compile: the next power of two."""
    return 1 << max(0, rows - 1).bit_length()


class FastPath:
    """The precision, layout and compilation the worker uses on one device."""

    def __init__(self, device: torch.device, *, precision: str, compile: bool) -> None:
        self.device = device
        self.bf16 = precision == "bf16" or (precision == "auto" and use_autocast(device, True))
        self.compile = compile

    @classmethod
    def from_settings(cls, settings: Settings, device: torch.device) -> FastPath:
        """The fast path `GANSERVE_PRECISION` and `GANSERVE_COMPILE` ask for on `device`."""
        return cls(device, precision=settings.precision, compile=bool(settings.compile))

    @property
    def precision(self) -> str:
        """ "bf16" or "fp32"."""
        return "bf16" if self.bf16 else "fp32"

    @property
    def name(self) -> str:
        """How results record the path: the precision, with "+compile" when compiled."""
        return self.precision + ("+compile" if self.compile else "")

    def prepare(self, network: nn.Module) -> nn.Module:
        """The network in the memory layout of this path (channels_last on CUDA under bf16)."""
        if self.bf16 and self.device.type == "cuda":
            return network.to(memory_format=torch.channels_last)
        return network

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast on this device when the path uses it, else nothing."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def compiled(
        self, owner: object, name: str, function: Callable[..., Any]
    ) -> Callable[..., Any]:
        """`function` under torch.compile when this path compiles, else itself. The compiled
        function is kept on `owner` (the network it runs) under `name`, so it goes when the
        network leaves the model cache."""
        if not self.compile:
            return function
        cache = owner.__dict__.setdefault(COMPILED_ATTRIBUTE, {})  # not an nn.Module attribute
        if name not in cache:
            cache[name] = torch.compile(function)
        return cache[name]
