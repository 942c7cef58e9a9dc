"""The progressive-growing schedule of Progressive GAN, as a pure function of the iteration.

Karras, Aila, Laine and Lehtinen, "Progressive Growing of GANs for Improved Quality, Stability,
and Variation", ICLR 2018 (arXiv:1710.10196), section 2 and appendix A; reference code
tkarras/progressive_growing_of_gans, train.py `TrainingSchedule` and config.py.

Training starts at 4x4. Every later resolution first fades in (its new layers are blended in with
a weight alpha rising linearly from 0 to 1 by images shown) and then trains stably; each phase
lasts `phase_images` real images (the reference's lod_transition_kimg = lod_training_kimg = 600
kimg). The 4x4 resolution has only its stable phase. So the run is

    4 (stable), 8 (fade-in), 8 (stable), 16 (fade-in), 16 (stable), ..., R (fade-in), R (stable)

The mini-batch size depends on the resolution (the reference's `minibatch_dict`, with
`minibatch_base` for resolutions not listed). A phase of N images at batch size b lasts
ceil(N / b) iterations, so every phase starts on an iteration boundary and the schedule is a pure
function of the iteration index: resuming at step s recomputes exactly the stage, alpha and batch
size that an uninterrupted run had at s. Alpha at a fading step is (images of the phase shown
before that step) / N: 0 at the phase's first step, approaching 1 at its last.

Unlike the reference (which keeps training at full resolution until `total_kimg`), the last
stable phase also lasts `phase_images`; steps past the end of the schedule (`at(step)` with
`step >= total_steps`) stay at the last stage with alpha 1, so a caller may train longer.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.training_config import (
    REFERENCE_BATCH_BASE,
    REFERENCE_PHASE_IMAGES,
)


def _is_resolution(value: int) -> bool:
    return isinstance(value, int) and value >= 4 and value & (value - 1) == 0


def parse_batch_sizes(spec: str) -> dict[int, int]:
    """Parse "4:128,8:128,16:64" into {4: 128, 8: 128, 16: 64}; "" gives {}.

    Resolutions must be powers of two from 4 up, batch sizes positive integers.
    """
    sizes: dict[int, int] = {}
    for item in spec.replace(" ", "").split(","):
        if not item:
            continue
        resolution, sep, size = item.partition(":")
        try:
            if not sep:
                raise ValueError
            res, batch = int(resolution), int(size)
        except ValueError:
            raise ValueError(
                f"bad batch size entry {item!r}: expected RESOLUTION:BATCH, e.g. '4:128,8:64'"
            ) from None
        if not _is_resolution(res):
            raise ValueError(f"bad batch size entry {item!r}: {res} is not a power of two >= 4")
        if batch < 1:
            raise ValueError(f"bad batch size entry {item!r}: the batch size must be >= 1")
        if res in sizes:
            raise ValueError(f"resolution {res} appears twice in batch sizes {spec!r}")
        sizes[res] = batch
    return sizes


@dataclass(frozen=True)
class Phase:
    """Where one iteration lies in the schedule.

    `stage` k works at `resolution` 4 * 2**k; `alpha` is the fade-in weight of that stage's new
    layers (1 outside fade-ins); `images_seen` counts the real images shown before this step,
    `phase_images_seen` those of the current phase only; `phase_start` is the phase's first step.
    """

    stage: int
    resolution: int
    alpha: float
    fading: bool
    batch_size: int
    phase_index: int
    phase_start: int
    images_seen: int
    phase_images_seen: int


@dataclass(frozen=True)
class GrowthSchedule:
    """Progressive growing from 4x4 to `max_resolution`: phases, alpha and batch sizes per step.

    `batch_sizes` maps resolutions to mini-batch sizes; resolutions it leaves out use
    `batch_base` (the reference's minibatch_dict and minibatch_base).
    """

    max_resolution: int
    phase_images: int = REFERENCE_PHASE_IMAGES
    batch_sizes: Mapping[int, int] = field(default_factory=dict)
    batch_base: int = REFERENCE_BATCH_BASE
    # Derived in __post_init__: the first step of every phase, and one past the last.
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _is_resolution(self.max_resolution):
            raise ValueError(
                f"max_resolution must be a power of two >= 4, got {self.max_resolution!r}"
            )
        if not isinstance(self.phase_images, int) or self.phase_images < 1:
            raise ValueError(f"phase_images must be a positive integer, got {self.phase_images!r}")
        if self.batch_base < 1:
            raise ValueError(f"batch_base must be at least 1, got {self.batch_base!r}")
        for res, batch in self.batch_sizes.items():
            if not _is_resolution(res) or batch < 1:
                raise ValueError(f"bad batch size {res}: {batch}")
        object.__setattr__(self, "batch_sizes", dict(self.batch_sizes))
        starts = [0]
        for index in range(self.num_phases):
            starts.append(starts[-1] + self.phase_steps(index))
        object.__setattr__(self, "_starts", tuple(starts))

    @property
    def num_stages(self) -> int:
        """Resolutions from 4x4 to `max_resolution`: stages 0 .. num_stages - 1."""
        return int(math.log2(self.max_resolution)) - 1

    @property
    def num_phases(self) -> int:
        """One stable phase at 4x4, then a fade-in and a stable phase per later resolution."""
        return 2 * self.num_stages - 1

    @property
    def total_steps(self) -> int:
        """Iterations of the whole schedule: the sum over phases of ceil(phase_images / batch)."""
        return self._starts[-1]

    @property
    def phase_starts(self) -> tuple[int, ...]:
        """The first step of every phase, in order (the first is 0)."""
        return self._starts[:-1]

    def batch_size_at(self, resolution: int) -> int:
        """Mini-batch size at `resolution`."""
        return self.batch_sizes.get(resolution, self.batch_base)

    def phase_stage(self, index: int) -> tuple[int, bool]:
        """(stage, fading) of phase `index`: 0 -> (0, False), 1 -> (1, True), 2 -> (1, False)..."""
        if not 0 <= index < self.num_phases:
            raise ValueError(f"phase index must be in [0, {self.num_phases}), got {index}")
        return (index + 1) // 2, index % 2 == 1

    def phase_steps(self, index: int) -> int:
        """Iterations of phase `index`: ceil(phase_images / its batch size)."""
        stage, _ = self.phase_stage(index)
        return -(-self.phase_images // self.batch_size_at(4 * 2**stage))

    def at(self, step: int) -> Phase:
        """The phase, stage, alpha and batch size of iteration `step` (0-based).

        Steps at or past `total_steps` are stable at the last stage (alpha 1).
        """
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        index = min(bisect.bisect_right(self._starts, step) - 1, self.num_phases - 1)
        stage, fading = self.phase_stage(index)
        resolution = 4 * 2**stage
        batch = self.batch_size_at(resolution)
        start = self._starts[index]
        images_before = sum(
            self.phase_steps(i) * self.batch_size_at(4 * 2 ** self.phase_stage(i)[0])
            for i in range(index)
        )
        in_phase = (step - start) * batch
        alpha = min(in_phase / self.phase_images, 1.0) if fading else 1.0
        return Phase(
            stage=stage,
            resolution=resolution,
            alpha=alpha,
            fading=fading,
            batch_size=batch,
            phase_index=index,
            phase_start=start,
            images_seen=images_before + in_phase,
            phase_images_seen=in_phase,
        )
