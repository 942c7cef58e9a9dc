"""Multi-GPU training through `torchrun` (PyTorch DistributedDataParallel).

`torchrun --nproc_per_node=N -m training ...` starts N processes with RANK/WORLD_SIZE/LOCAL_RANK
in their environment; each trains on its own slice of every batch, DDP averages the gradients,
and rank 0 alone writes checkpoints, samples and logs. Without torchrun this is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from models.devices import resolve_device


@dataclass(frozen=True)
class Topology:
    """Where this process sits: its rank among `world_size` processes and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run's files."""
        return self.rank == 0


def setup(device_name: str) -> Topology:
    """Join the process group torchrun set up (if any) and pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world_size == 1:
        return Topology(0, 1, device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Topology(dist.get_rank(), world_size, device)


def wrap(module: nn.Module, topology: Topology, *, grows: bool = False) -> nn.Module:
    """DDP-wrap a network when running on several processes, else return it as it is.

    `grows`: the network has blocks that stay unused until they grow in (Progressive GAN).
    """
    if topology.world_size == 1:
        return module
    device_ids = [topology.device.index] if topology.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=grows)


def any_rank(flag: bool) -> bool:
    """Whether `flag` is true on any process of the run, answered alike on every process (each
    must ask at the same point of the loop, as with any collective); `flag` without torchrun.

    How a run stops together: one process alone leaving the loop would leave the others
    waiting for it in DDP's next gradient exchange."""
    if not dist.is_initialized():
        return flag
    on_gpu = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def teardown() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()
