"""The contract between the shared training loop and a GAN family.

As in stylegan2-ada-pytorch, the loop (`training.loop`) knows nothing about any paper's losses: it
moves batches, steps optimizers, keeps the EMA, writes samples, stats and checkpoints. A family
(pix2pix, Isola et al. 2017; U-Net GAN, Schonfeld et al. 2020; Progressive GAN, Karras et al. 2018)
supplies its networks, optimizers, schedule and the two losses of one iteration.

One iteration of the loop:

    family.begin_step(step)          # schedule: stage/alpha, p_mix, lr decay ...
    ctx = family.prepare(batch)      # the generator's forward pass, once
    d_loss = family.d_loss(ctx)      # -> D optimizer step
    g_loss = family.g_loss(ctx)      # -> G optimizer step (D's new weights)
    ema.update(...)                  # when family.ema_decay(step) is not None
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from models import architecture_of
from training.data import Batch  # paired: "A", "B"; image sets: "x", "y"

Stats = dict[str, float]


@dataclass(frozen=True)
class DataInfo:
    """What a family needs to know of its dataset to build its networks."""

    image_size: int
    channels: int  # images: their channels; paired: the target (B) side's channels
    in_channels: int = 0  # paired: the input (A) side's channels
    num_classes: int = 0  # class-conditional image sets: the number of classes


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the network itself)."""
    return getattr(module, "module", module)


class GANFamily(ABC):
    """What one GAN family supplies to the shared training loop.

    Subclasses take `(config, data: DataInfo, device)` in `__init__`, `config` being the family's
    own config dataclass (its fields become command-line options; each field's
    `metadata["help"]` is its help text). They build `self.G` and `self.D` (registered `models`
    networks) on `device` and, when
    the paper trains with an exponential moving average of G, `self.G_ema` (else None). The loop may
    replace `self.G` / `self.D` by DistributedDataParallel wrappers: call the networks through
    these attributes, and reach their own attributes through `unwrap(...)`.
    """

    name: ClassVar[str]
    data_kind: ClassVar[str]  # "paired" or "images": which dataset the loop loads
    config_class: ClassVar[type]
    grows: ClassVar[bool] = False  # networks with blocks unused until they grow in (DDP needs this)

    G: nn.Module
    D: nn.Module
    G_ema: nn.Module | None = None

    @classmethod
    def dataset_options(cls, config: Any) -> dict[str, Any]:
        """Keyword arguments for the dataset class from the family's config (flip, direction...)."""
        return {}

    @abstractmethod
    def optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """Fresh (G, D) optimizers over the current parameters."""

    @classmethod
    def planned_steps(cls, config: Any, image_size: int, requested: int) -> int:
        """Iterations a run of this config will take, known before the family is built.

        The default is what the user asked for; a family whose schedule sets the run's length
        (Progressive GAN) overrides it, and raises ValueError for a schedule it cannot build.
        """
        return requested

    def total_steps(self, requested: int) -> int:
        """Iterations of the whole run; the default is what the user asked for."""
        return requested

    def batch_size(self, step: int, requested: int) -> int:
        """Mini-batch size at `step` (Progressive GAN changes it per resolution)."""
        return requested

    def begin_step(self, step: int) -> bool:
        """Apply the schedule for `step`; True when the optimizers must be created afresh."""
        return False

    def ema_decay(self, step: int) -> float | None:
        """The EMA decay to apply after `step`, or None for no EMA update at this step."""
        return None

    @abstractmethod
    def prepare(self, batch: Batch) -> Any:
        """Run the generator once for this iteration; the context feeds both losses."""

    @abstractmethod
    def d_loss(self, ctx: Any) -> tuple[torch.Tensor, Stats]:
        """The discriminator's loss (fakes detached) and the numbers to log."""

    @abstractmethod
    def g_loss(self, ctx: Any) -> tuple[torch.Tensor, Stats]:
        """The generator's loss and the numbers to log."""

    @abstractmethod
    def fixed_sample_inputs(self, batch: Batch, count: int, seed: int) -> Batch:
        """Inputs for the sample grids, drawn once per run (z with a fixed seed, or val pairs)."""

    @abstractmethod
    @torch.no_grad()
    def sample_grid(self, generator: nn.Module, inputs: Batch) -> tuple[torch.Tensor, int]:
        """Images (N, C, H, W) in [-1, 1] for a grid and its number of columns."""

    def export_generator(self) -> nn.Module:
        """The generator to save as the model: the EMA copy when there is one."""
        return unwrap(self.G_ema if self.G_ema is not None else self.G)

    def discriminator_export(self) -> tuple[nn.Module, str, dict[str, Any]]:
        """The discriminator to save beside the model: (network, registered name, config fields).

        The network is unwrapped from DistributedDataParallel, so its weights carry no
        `module.` prefix and load into the bare network (`models.load_discriminator`).
        """
        d = unwrap(self.D)
        return d, architecture_of(d).name, dataclasses.asdict(d.config)

    def state_dict(self) -> dict[str, Any]:
        """Family state beyond the networks and optimizers, for resuming (tensors and numbers)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Restore what `state_dict` returned."""

    def card_extras(self) -> dict[str, Any]:
        """Extra provenance for the model's config.json (the family's hyperparameters)."""
        return {}
