"""How the infer worker runs a network fast without changing what it computes beyond rounding.

- **bf16 autocast** on CUDA and on CPUs that multiply bf16 in hardware (AMX or AVX512-BF16,
  `models.precision.cpu_has_native_bf16`); elsewhere fp32, where emulated bf16 is many times
  slower. `GANSERVE_PRECISION=fp32` turns it off (results then equal batch-1 fp32 bit for bit).
- **channels_last** on CUDA only: on the CPU it made pix2pix slower (see `models.precision`).
- **torch.compile** (`GANSERVE_COMPILE=1`, translations and samples): batches are padded to the
  next power of two (`bucket`: pix2pix inputs and their dropout masks, which are inputs of the
  compiled function, and the sampling generators' rows, `Bucketed`), so a worker compiles at
  most log2(max batch) + 1 graphs per model and shape. Off by default: on this project's 2-core
  CPU it was no faster than bf16 eager for unet_256 and 1.4-1.8x faster for the small samplers
  (`benchmarks/infer.py`), but each new shape compiles for 12 s or more, and the demo models
  re-register (and reload) at every checkpoint while they train.
- **CUDA graphs** (`GANSERVE_COMPILE=reduce-overhead`, CUDA only; on a CPU it is `1`):
  torch.compile's `reduce-overhead` mode records one CUDA graph per bucket and replays it, which
  takes the launches of the pass's many small kernels (norms, activations) off the host.
  Translations use graphs at the model's own square size (256x256 for unet_256: resized inputs
  and native ones of that size), the shape nearly every job has; other sizes are compiled
  without graphs (a graph per upload size would keep its own activations on the GPU). A graph's
  outputs live in memory that the next replay overwrites, so every call marks a new step
  (`torch.compiler.cudagraph_mark_step_begin`) and returns a copy. Off until `benchmarks/gpu.sh`
  has measured eager, compile and reduce-overhead on a GPU (docs/performance.md, "GPU").
- **host <-> device copies** on CUDA through pinned memory and a copy stream per process
  (`workers.device_io`, `FastPath.io`); on the CPU nothing is copied.

The quality guard (`tests/workers/test_fast_path.py`): the fast path's translations and samples
of a trained model stay within 35 dB PSNR of fp32.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from core.settings import Settings
from models.precision import use_autocast
from workers.device_io import DeviceIO

log = logging.getLogger(__name__)

COMPILED_ATTRIBUTE = "_ganserve_compiled"
COMPILE_MODES = ("default", "reduce-overhead")


def bucket(rows: int) -> int:
    """The batch size a batch of `rows` runs at under compile: the next power of two."""
    return 1 << max(0, rows - 1).bit_length()


def compile_mode(compile: bool | str | None, device: torch.device) -> str | None:
    """The torch.compile mode a path on `device` uses for `compile` (True: "default"; False or
    None: none); "reduce-overhead" (CUDA graphs) is "default" off CUDA."""
    if compile is True:
        return "default"
    if not compile:
        return None
    if compile not in COMPILE_MODES:
        raise ValueError(f"compile is one of {', '.join(COMPILE_MODES)}, not {compile!r}")
    if compile == "reduce-overhead" and device.type != "cuda":
        log.warning("compile mode reduce-overhead (CUDA graphs) needs CUDA; on %s: default", device)
        return "default"
    return compile


class FastPath:
    """The precision, layout, compilation and host copies the worker uses on one device."""

    def __init__(self, device: torch.device, *, precision: str, compile: bool | str | None) -> None:
        self.device = device
        self.bf16 = precision == "bf16" or (precision == "auto" and use_autocast(device, True))
        self.compile_mode = compile_mode(compile, device)

    @classmethod
    def from_settings(cls, settings: Settings, device: torch.device) -> FastPath:
        """The fast path `GANSERVE_PRECISION` and `GANSERVE_COMPILE` ask for on `device`."""
        return cls(device, precision=settings.precision, compile=settings.compile)

    @property
    def compile(self) -> bool:
        """Whether the networks run under torch.compile."""
        return self.compile_mode is not None

    @property
    def cuda_graphs(self) -> bool:
        """Whether compiled networks replay CUDA graphs (where the caller allows them)."""
        return self.compile_mode == "reduce-overhead"

    @functools.cached_property
    def io(self) -> DeviceIO:
        """This path's host <-> device copies (made at first use: a CUDA stream)."""
        return DeviceIO(self.device)

    @property
    def precision(self) -> str:
        """ "bf16" or "fp32"."""
        return "bf16" if self.bf16 else "fp32"

    @property
    def name(self) -> str:
        """How results record the path: the precision, with "+compile" when compiled (CUDA
        graphs or not: they change no value)."""
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
        self,
        owner: object,
        name: str,
        function: Callable[..., torch.Tensor],
        *,
        graphs: bool = True,
    ) -> Callable[..., torch.Tensor]:
        """`function` (returning one tensor) under torch.compile when this path compiles, else
        itself; with CUDA graphs when the path uses them and `graphs` allows. The compiled
        function is kept on `owner` (the network it runs) under `name`, so it goes when the
        network leaves the model cache."""
        if self.compile_mode is None:
            return function
        graphs = graphs and self.cuda_graphs
        cache = owner.__dict__.setdefault(COMPILED_ATTRIBUTE, {})  # not an nn.Module attribute
        key = (name, graphs)
        if key not in cache:
            if graphs:
                cache[key] = replaying(torch.compile(function, mode="reduce-overhead"))
            else:
                cache[key] = torch.compile(function)
        return cache[key]

    def sampler(self, network: nn.Module) -> nn.Module:
        """A sampling generator as `models.sampling.generate` should call it: itself, or, when
        this path compiles, compiled and called at power-of-two row counts."""
        if self.compile_mode is None:
            return network
        return Bucketed(network, self.compiled(network, "sample", network))


def replaying(compiled: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A reduce-overhead function called as a new step each time, its output copied out of the
    CUDA graph's memory (which the next replay overwrites)."""

    def run(*args: Any, **kwargs: Any) -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()
        return compiled(*args, **kwargs).clone()

    return run


def pad_rows_to(x: torch.Tensor, rows: int) -> torch.Tensor:
    """x (B, ...) padded with copies of its first row to `rows` rows."""
    extra = rows - x.shape[0]
    return x if not extra else torch.cat([x, x[:1].expand(extra, *x.shape[1:])])


class Bucketed(nn.Module):
    """A network called at power-of-two row counts: every tensor argument (B, ...) is padded with
    copies of its first row to `bucket(B)` rows and the output cut back to B rows (rows do not
    mix), so a compiled network makes one graph per bucket."""

    def __init__(self, network: nn.Module, run: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.network = network  # the parameters, train() and eval() of the network
        self.run = run

    def forward(self, *inputs: torch.Tensor, **named: torch.Tensor) -> torch.Tensor:
        rows = inputs[0].shape[0]
        size = bucket(rows)
        padded = [pad_rows_to(x, size) for x in inputs]
        return self.run(*padded, **{k: pad_rows_to(v, size) for k, v in named.items()})[:rows]
