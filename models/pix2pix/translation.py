"""pix2pix at test time: batches of independent images, full resolution, tiles without seams.

Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial Networks",
CVPR 2017, section 3.3 and 4: at test time the generator keeps dropout on (its only noise) and
applies batch normalisation with the statistics of the test batch, at batch size 1. This module
computes exactly that for many images at once without letting them touch each other:

- **per-sample normalisation**: every norm layer normalises each image by its own per-channel
  mean and variance (the instance-norm computation with the batch-norm affine weights), which is
  what batch norm in training mode computes at batch 1; batch-norm running averages are unused;
- **per-job dropout noise**: each image's dropout masks come from its own `torch.Generator`
  seeded by the job's seed, drawn on the CPU before the forward pass (`draw_masks`), so the same
  seed gives the same translation on any device, next to any batch-mates, and the forward pass
  itself holds no random draw (it compiles);
- **full resolution** (`translate_native`): the generator is fully convolutional, so an image
  of any size runs as it is, reflect-padded to a multiple of the network's total stride
  (2**depth: 256 for unet_256) and cropped back;
- **tiles** for images above a pixel budget: overlapping tiles aligned to the stride, blended
  with a raised-cosine window. Normalisation must describe the whole image, not each tile, or
  tiles would differ in tone and leave seams: a first pass over all tiles gathers every norm
  layer's per-channel statistics pooled over the tiles (each tile normalised by its own in that
  pass), and the second pass normalises every tile with those pooled statistics. Dropout masks
  are drawn once at the whole image's size per layer and each tile uses its own crop of them, so
  overlapping tiles agree on the noise.

The PatchGAN discriminator's test-time forward (`per_sample_sequential`) uses the same
per-sample normalisation, so realness maps of a batch equal those of single images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from models.pix2pix.networks import Pix2PixGenerator, UNetBlock
from models.stopping import ShouldStop, check_stop

NORMS = (nn.BatchNorm2d, nn.InstanceNorm2d)


@dataclass
class PooledStats:
    """Per-layer channel statistics summed over tiles: pass 1 adds, pass 2 normalises with them."""

    sums: list[torch.Tensor] = field(default_factory=list)  # per norm layer: (C,) sum of x
    squares: list[torch.Tensor] = field(default_factory=list)  # (C,) sum of x**2
    counts: list[int] = field(default_factory=list)  # values per channel
    frozen: bool = False

    def add(self, index: int, x: torch.Tensor) -> None:
        """Add the values of one tile's activation x (1, C, h, w) to layer `index`."""
        values = x.float()
        total = values.sum(dim=(0, 2, 3))  # (C,)
        square = (values * values).sum(dim=(0, 2, 3))  # (C,)
        if index == len(self.sums):
            self.sums.append(total)
            self.squares.append(square)
            self.counts.append(x[0, 0].numel())
        else:
            self.sums[index] += total
            self.squares[index] += square
            self.counts[index] += x[0, 0].numel()

    def mean_var(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled mean and (biased) variance (C,) of layer `index`."""
        mean = self.sums[index] / self.counts[index]
        var = (self.squares[index] / self.counts[index] - mean * mean).clamp_min(0)
        return mean, var


class TestTimeRun:
    """The state of one test-time forward over a batch (or over one tile of an image).

    `full_size`: the (H, W) of the whole (padded) image; `masks`: the dropout masks drawn for it
    (`draw_masks`), one (B, C, h, w) tensor per dropout layer in execution order; `offset`: the
    (y, x) of this tile, whose crop of each mask it uses. `stats`: statistics pooled over the
    tiles of one image (None: each image normalised by its own).
    """

    def __init__(
        self,
        full_size: tuple[int, int],
        masks: list[torch.Tensor],
        offset: tuple[int, int] = (0, 0),
        stats: PooledStats | None = None,
    ) -> None:
        self.full_size = full_size
        self.masks = masks
        self.offset = offset
        self.stats = stats
        self.tile_height = full_size[0]
        self._norm_index = 0
        self._dropout_index = 0

    def at(self, offset: tuple[int, int]) -> TestTimeRun:
        """The same run (same masks and statistics) for the tile at `offset`."""
        return TestTimeRun(self.full_size, self.masks, offset, self.stats)

    def start(self, height: int) -> None:
        """Begin a forward over an input `height` pixels high (layers are counted afresh)."""
        self.tile_height = height
        self._norm_index = self._dropout_index = 0

    def norm(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Normalise x (B, C, h, w) per sample, or with the pooled statistics of the tiles."""
        index = self._norm_index
        self._norm_index += 1
        weight, bias = layer.weight, layer.bias  # None for the reference's instance norm
        if self.stats is not None and self.stats.frozen:
            mean, var = self.stats.mean_var(index)  # float32, like the affine weights
            y = F.batch_norm(x.float(), mean, var, weight, bias, eps=layer.eps)
            return y.to(x.dtype)  # bf16 in, bf16 out under autocast
        if self.stats is not None:
            self.stats.add(index, x)
        return F.instance_norm(x, weight=weight, bias=bias, eps=layer.eps)

    def dropout(self, x: torch.Tensor) -> torch.Tensor:
        """Apply each image's seeded dropout mask (this tile's crop of it) to x (B, C, h, w)."""
        mask = self.masks[self._dropout_index]  # (B, C, H / stride, W / stride)
        self._dropout_index += 1
        stride = self.tile_height // x.shape[-2]  # image pixels per pixel of x
        y0, x0 = self.offset[0] // stride, self.offset[1] // stride
        crop = mask[:, :, y0 : y0 + x.shape[-2], x0 : x0 + x.shape[-1]]  # (B, C, h, w)
        return x * crop.to(device=x.device, dtype=x.dtype)


def _blocks(generator: Pix2PixGenerator) -> list[UNetBlock]:
    """The U-Net's levels, outermost first."""
    blocks, block = [], generator.model
    while isinstance(block, UNetBlock):
        blocks.append(block)
        block = block.inner
    return blocks


def draw_masks(
    generator: Pix2PixGenerator, seeds: list[int], size: tuple[int, int]
) -> list[torch.Tensor]:
    """Each image's dropout masks for an (H, W) input, drawn on the CPU from its own generator
    seeded by its seed: one (B, C, H / 2**level, W / 2**level) tensor of 0 and 1/(1-p) per
    dropout layer, in the order the forward pass meets them (deepest level first)."""
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    masks = []
    for level, block in reversed(list(enumerate(_blocks(generator)))):
        for layer in block.up:
            if isinstance(layer, nn.Dropout) and layer.p > 0:
                channels = next(m for m in block.up if isinstance(m, nn.ConvTranspose2d))
                shape = (channels.out_channels, size[0] >> level, size[1] >> level)
                keep = 1.0 - layer.p
                masks.append(
                    torch.stack(
                        [
                            torch.empty(shape).bernoulli_(keep, generator=g) / keep
                            for g in generators
                        ]
                    )
                )
    return masks


def per_sample_sequential(layers: nn.Sequential, x: torch.Tensor, run: TestTimeRun) -> torch.Tensor:
    """Run `layers` on x with test-time norm and dropout (other layers as they are)."""
    for layer in layers:
        if isinstance(layer, NORMS):
            x = run.norm(layer, x)
        elif isinstance(layer, nn.Dropout):
            x = run.dropout(x) if layer.p > 0 else x
        else:
            x = layer(x)
    return x


def _unet(block: UNetBlock, x: torch.Tensor, run: TestTimeRun) -> torch.Tensor:
    """One U-Net level at test time: (B, outer, H, W) -> (B, 2*outer, H, W) (outermost: output)."""
    y = per_sample_sequential(block.down, x, run)
    if isinstance(block.inner, UNetBlock):
        y = _unet(block.inner, y, run)
    y = per_sample_sequential(block.up, y, run)
    return y if block.outermost else torch.cat([x, y], dim=1)


def forward(generator: Pix2PixGenerator, x: torch.Tensor, run: TestTimeRun) -> torch.Tensor:
    """The generator at test time: (B, Ci, H, W) -> (B, Co, H, W); H, W multiples of the stride."""
    stride = total_stride(generator)
    if x.shape[-2] % stride or x.shape[-1] % stride:
        raise ValueError(f"height and width must be multiples of {stride}, got {tuple(x.shape)}")
    run.start(x.shape[-2])
    return _unet(generator.model, x, run)


def total_stride(generator: Pix2PixGenerator) -> int:
    """How much the encoder shrinks an image: 2**depth (256 for unet_256)."""
    return 2**generator.config.downsamplings


@torch.no_grad()
def translate_batch(generator: Pix2PixGenerator, x: torch.Tensor, seeds: list[int]) -> torch.Tensor:
    """Translate a batch of independent images: (B, Ci, H, W) -> (B, Co, H, W) float32 in [-1, 1].

    Image i is normalised by its own statistics and its dropout drawn from `seeds[i]`: its result
    does not depend on its batch-mates (bit for bit on the CPU in fp32).
    """
    if len(seeds) != x.shape[0]:
        raise ValueError(f"one seed per image: {len(seeds)} seeds for {x.shape[0]} images")
    size = (x.shape[-2], x.shape[-1])
    run = TestTimeRun(size, draw_masks(generator, seeds, size))
    return forward(generator, x, run).float().clamp(-1, 1)


def translate(generator: Pix2PixGenerator, x: torch.Tensor, seed: int) -> torch.Tensor:
    """What a translation job computes for one image at the model's size: (1, Ci, S, S) ->
    (1, Co, S, S). Evaluation uses it, so every reported pix2pix figure is what the service
    serves."""
    if x.shape[0] != 1:
        raise ValueError(f"translate one image at a time, got a batch of {x.shape[0]}")
    return translate_batch(generator, x, [seed])


def reflect_pad(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """x (B, C, H, W) reflect-padded (repeatedly, for pads wider than the image) to multiples of
    `multiple`, centred; returns it and the (top, left) offset of the original."""
    height, width = x.shape[-2:]
    target_h, target_w = padded_size(height, width, multiple)
    top, left = (target_h - height) // 2, (target_w - width) // 2
    pads = [left, target_w - width - left, top, target_h - height - top]  # l, r, t, b
    while any(pads):
        h, w = x.shape[-2:]
        step = [min(pads[0], w - 1), min(pads[1], w - 1), min(pads[2], h - 1), min(pads[3], h - 1)]
        if not any(step):  # a 1-pixel side cannot reflect: repeat it
            step, mode = pads, "replicate"
        else:
            mode = "reflect"
        x = F.pad(x, step, mode=mode)
        pads = [p - s for p, s in zip(pads, step, strict=True)]
    return x, (top, left)


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """The (H, W) an image of this size runs at: rounded up to multiples of the stride."""
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of a padded (H, W) image lie: square tiles of `size`, starts per axis."""

    size: tuple[int, int]  # (tile height, tile width)
    rows: list[int]
    columns: list[int]

    @property
    def count(self) -> int:
        return len(self.rows) * len(self.columns)


def _starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile starts along one axis: a quarter of a tile of overlap at least, stride-aligned."""
    if length <= tile:
        return [0]
    overlap = max(stride, (tile // 4) // stride * stride)
    step = tile - overlap
    count = math.ceil((length - tile) / step) + 1
    return [min(i * step, length - tile) for i in range(count)]


def plan_tiles(height: int, width: int, stride: int, max_pixels: int) -> TilePlan | None:
    """The tiles for a padded (H, W) image, or None when it fits `max_pixels` in one piece."""
    if height * width <= max_pixels:
        return None
    side = max(stride, math.isqrt(max_pixels) // stride * stride)
    if side < 4 * stride:  # keep room for overlap between stride-aligned tiles
        side = 4 * stride
    tile = (min(side, height), min(side, width))
    return TilePlan(tile, _starts(height, tile[0], stride), _starts(width, tile[1], stride))


def _ramp(length: int, start: int, total: int, overlap: int) -> torch.Tensor:
    """1-D blending weights of a tile: raised-cosine ramps over `overlap` where it meets another
    tile, 1 elsewhere (image borders keep full weight)."""
    weights = torch.ones(length)
    ramp = 0.5 - 0.5 * torch.cos(torch.linspace(0, math.pi, overlap + 2)[1:-1])  # (overlap,)
    if start > 0:
        weights[:overlap] = ramp
    if start + length < total:
        weights[-overlap:] = ramp.flip(0)
    return weights


@torch.no_grad()
def translate_native(
    generator: Pix2PixGenerator,
    x: torch.Tensor,
    seed: int,
    max_tile_pixels: int,
    should_stop: ShouldStop | None = None,
) -> torch.Tensor:
    """Translate one image at its own resolution: (1, Ci, H, W) -> (1, Co, H, W) in [-1, 1].

    Runs in one piece when the padded image has at most `max_tile_pixels` pixels, else in
    overlapping tiles with pooled statistics (two passes) and blended outputs, asking
    `should_stop` before every tile (True raises `models.stopping.Stopped`).
    """
    if x.shape[0] != 1:
        raise ValueError(f"translate one image at a time, got a batch of {x.shape[0]}")
    height, width = x.shape[-2:]
    stride = total_stride(generator)
    padded, (top, left) = reflect_pad(x, stride)
    full = (padded.shape[-2], padded.shape[-1])
    plan = plan_tiles(*full, stride, max_tile_pixels)
    if plan is None:
        y = forward(generator, padded, TestTimeRun(full, draw_masks(generator, [seed], full)))
        y = y.float()
    else:
        y = _tiled(generator, padded, seed, plan, should_stop)
    return y[:, :, top : top + height, left : left + width].clamp(-1, 1)


def _tiled(
    generator: Pix2PixGenerator,
    x: torch.Tensor,
    seed: int,
    plan: TilePlan,
    should_stop: ShouldStop | None = None,
) -> torch.Tensor:
    """The two tile passes over a padded image x (1, Ci, H, W) -> (1, Co, H, W) on the CPU."""
    (height, width), (th, tw) = x.shape[-2:], plan.size
    stats = PooledStats()
    run = TestTimeRun((height, width), draw_masks(generator, [seed], (height, width)), stats=stats)
    offsets = [(r, c) for r in plan.rows for c in plan.columns]
    for r, c in offsets:  # pass 1: gather the statistics of the whole image
        check_stop(should_stop, "the tiled translation")
        forward(generator, x[:, :, r : r + th, c : c + tw], run.at((r, c)))
    stats.frozen = True
    out = torch.zeros(1, generator.config.out_channels, height, width)
    weight = torch.zeros(1, 1, height, width)
    overlap_h = th - (plan.rows[1] - plan.rows[0]) if len(plan.rows) > 1 else 0
    overlap_w = tw - (plan.columns[1] - plan.columns[0]) if len(plan.columns) > 1 else 0
    for r, c in offsets:  # pass 2: every tile with the whole image's statistics
        check_stop(should_stop, "the tiled translation")
        y = forward(generator, x[:, :, r : r + th, c : c + tw], run.at((r, c))).float().cpu()
        window = _ramp(th, r, height, overlap_h)[:, None] * _ramp(tw, c, width, overlap_w)[None]
        out[:, :, r : r + th, c : c + tw] += y * window
        weight[:, :, r : r + th, c : c + tw] += window
    return out / weight
