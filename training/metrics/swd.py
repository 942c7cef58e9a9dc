"""Multi-scale sliced Wasserstein distance (SWD) of Progressive GAN.

Karras, Aila, Laine and Lehtinen, "Progressive Growing of GANs for Improved Quality, Stability,
and Variation", ICLR 2018, section 5; reference code tkarras/progressive_growing_of_gans,
`metrics/sliced_wasserstein.py` (read and ported for this module's tests), fed by
`util_scripts.evaluate_metrics`. What is followed, step by step:

- Input: uint8 RGB images in [0, 255] (grey images tiled to 3 channels, as `evaluate_metrics`
  does), converted to float32 without rescaling; the arithmetic is float32 as in the reference.
- Levels: one per resolution from the full one halving down to 16 (`res >= 16`).
- Laplacian pyramid: `pyr_down` convolves with the 5x5 binomial filter
  [1 4 6 4 1]^T [1 4 6 4 1] / 256 under scipy's `mode='mirror'` border (the same as torch's
  'reflect' padding) and keeps every second row and column starting at 0; `pyr_up` inserts zeros
  (the input at even rows and columns), then convolves with 4x the filter, same border (here as
  two separable polyphase passes, equal up to float rounding; the tests compare with scipy).
  `pyramid[i] = G_i - pyr_up(G_{i+1})`, the last level is the low-pass image G_{L-1} itself.
- Descriptors: per image and level, 128 neighbourhoods of 7x7 pixels x 3 colours, centres drawn
  uniformly in [3, S - 3) on each axis independently. Like the reference's flat indexing, the
  7x7 patch is stored transposed (its axis 2 runs along the width); this only permutes the 147
  descriptor components, which random directions cannot tell apart.
- Normalisation: each set (real, fake) is normalised by its OWN mean and (population) standard
  deviation per colour channel, over all its neighbourhoods and the 7x7 positions, then flattened
  to 147 components.
- Distance: 4 repeats of 128 random directions (Gaussian, normalised to unit length); project both
  sets, sort each along the neighbourhood axis, mean absolute difference; mean over directions
  and repeats; new directions for every level; reported x 1e3 per level and their mean ("avg").

Where this implementation departs, and why (none changes the quantity estimated):

- Random numbers come from private `torch.Generator`s seeded from `seed` (one stream for the real
  set's neighbourhoods, one for the fake set's, one for the directions), not from numpy's global
  state; results are deterministic for a seed and do not touch the global RNG. Neighbourhood
  centres are drawn image by image (all levels of one image together), so a set's result does
  not depend on how it was cut into batches, nor on how real and fake batches interleave.
  `compute()` draws its directions afresh from the seed, so calling it twice gives one answer.
- Streaming: descriptors are stored per level as float16 (`storage_dtype`) after subtracting a
  per-channel offset (the mean over the set's first image's neighbourhoods, so it does not
  depend on batching; normalisation removes it again), which keeps 16384 images at 128 px to
  ~617 MB per level per set. Normalisation statistics are accumulated in float64 from the stored
  values. On 512 + 512 photo crops the float16 rounding moved results by <= 1.5e-4 relative
  (the tests bound it); `storage_dtype=torch.float32` turns it off.
- Projection is done in chunks of directions (bounded memory) with the normalisation folded into
  the directions: ((x - m) / s) . d == x . (d / s) - (m / s) . d. On the CPU the sort is numpy's
  in-place sort (faster than torch.sort there), on other devices torch.sort.
- Sets of different sizes: the reference asserts equal sizes. Here the distance per direction is
  the exact 1-D Wasserstein-1 distance between the two empirical distributions (integral of the
  absolute difference of their quantile functions). For equal sizes this is exactly the mean
  absolute difference of the sorted projections, i.e. the reference.
- A colour channel with zero variance (constant images) is left unscaled instead of dividing by
  zero (the reference would produce NaN).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "SWDAccumulator",
    "laplacian_pyramid",
    "pyr_down",
    "pyr_up",
    "reconstruct",
    "sliced_wasserstein",
    "sliced_wasserstein_distance",
    "swd_resolutions",
]

MIN_RESOLUTION = 16  # the reference's coarsest level: `while res >= 16`
_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # outer(b, b) / 256 is the reference's gaussian_filter
_ROWS_PER_MATMUL = 1 << 16  # descriptors converted to float32 at a time during projection
_PROJECTION_BUDGET_BYTES = 512 << 20  # memory for one chunk of projections (values + sort)
_SLAB_ROWS = 1 << 17  # descriptors per storage slab (38.5 MB of float16 at 147 components)


def swd_resolutions(resolution: int) -> list[int]:
    """The pyramid levels SWD reports for square images of side `resolution`, finest first.

    128 -> [128, 64, 32, 16]. The side must be a power of two and at least 16.
    """
    if isinstance(resolution, bool) or not isinstance(resolution, int | np.integer):
        raise ValueError(f"SWD resolution must be an int, got {resolution!r}")
    resolution = int(resolution)
    if resolution < MIN_RESOLUTION or resolution & (resolution - 1):
        raise ValueError(
            f"SWD needs square images whose side is a power of two >= {MIN_RESOLUTION} "
            f"(its Laplacian pyramid halves the side down to 16x16); got {resolution}"
        )
    levels = []
    while resolution >= MIN_RESOLUTION:
        levels.append(resolution)
        resolution //= 2
    return levels


def pyr_down(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) float -> (N, C, ceil(H/2), ceil(W/2)): binomial blur, keep even pixels.

    The reference's `pyr_down` (cv2.pyrDown): scipy.ndimage.convolve with the 5x5 filter
    outer(b, b) / 256, b = [1 4 6 4 1], mode='mirror' (== torch 'reflect' padding), then
    [..., ::2, ::2]. Done separably with stride 2, which computes only the samples kept.
    """
    c, h, w = images.shape[1:]
    if h < 3 or w < 3:
        raise ValueError(f"pyr_down needs images of at least 3x3 pixels, got {h}x{w}")
    taps = torch.tensor(_BINOMIAL, dtype=images.dtype, device=images.device) / 16.0  # (5,)
    x = F.pad(images, (2, 2, 2, 2), mode="reflect")  # (N, C, H+4, W+4)
    x = F.conv2d(x, taps.view(1, 1, 1, 5).expand(c, 1, 1, 5), stride=(1, 2), groups=c)
    return F.conv2d(x, taps.view(1, 1, 5, 1).expand(c, 1, 5, 1), stride=(2, 1), groups=c)


def _upsample_last_axis(x: torch.Tensor) -> torch.Tensor:
    """(..., L) -> (..., 2L): zeros inserted at odd positions, then [1 4 6 4 1] / 8, mirrored.

    Polyphase form of the reference's 1-D step: with z[2k] = x[k], z[2k+1] = 0 and scipy's
    'mirror' border (z[-2] = z[2] = x[1], z[2L] = z[2L-2] = x[L-1], z[-1] = z[2L+1] = 0):
    out[2k] = (x[k-1] + 6 x[k] + x[k+1]) / 8 and out[2k+1] = (x[k] + x[k+1]) / 2, where
    x[-1] = x[1] and x[L] = x[L-1] (mirror on the left, edge copy on the right).
    """
    xp = torch.cat([x[..., 1:2], x, x[..., -1:]], dim=-1)  # (..., L+2): xp[j] = x[j-1]
    even = (xp[..., :-2] + xp[..., 2:]).mul_(0.125).add_(xp[..., 1:-1], alpha=0.75)  # (..., L)
    odd = (xp[..., 1:-1] + xp[..., 2:]).mul_(0.5)  # (..., L)
    return torch.stack([even, odd], dim=-1).flatten(-2)  # (..., 2L) interleaved


def pyr_up(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) float -> (N, C, 2H, 2W): zeros inserted, then 4x the binomial filter.

    The reference's `pyr_up` (cv2.pyrUp): the input lands on even rows and columns of a zero
    image, convolved with 4 * outer(b, b) / 256 under scipy's 'mirror' border. The filter is
    separable and zero insertion commutes with filtering the other axis, so this runs as two
    1-D polyphase passes (no multiplications by the inserted zeros); equal up to float rounding.
    """
    h, w = images.shape[-2:]
    if h < 2 or w < 2:
        raise ValueError(f"pyr_up needs images of at least 2x2 pixels, got {h}x{w}")
    x = _upsample_last_axis(images)  # (N, C, H, 2W)
    return _upsample_last_axis(x.transpose(-1, -2)).transpose(-1, -2)  # (N, C, 2H, 2W)


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """The reference's `generate_laplacian_pyramid`: `levels` tensors, finest first.

    images: (N, C, H, W); integer images are converted to float32, floating ones keep their dtype.
    Level i (< levels - 1) is G_i - pyr_up(G_{i+1}) with G_0 = images, G_{i+1} = pyr_down(G_i),
    shape (N, C, H / 2^i, W / 2^i); the last level is the low-pass G_{levels-1}.
    """
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be an int >= 1, got {levels!r}")
    h, w = images.shape[-2:]
    scale = 1 << (levels - 1)
    if levels > 1 and (h % scale or w % scale or h // scale < 2 or w // scale < 2):
        raise ValueError(
            f"a {levels}-level pyramid needs H and W divisible by {scale} with at least 2 pixels "
            f"left at the coarsest level; got {h}x{w}"
        )
    pyramid = [images if images.is_floating_point() else images.float()]
    for _ in range(1, levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])  # not in place: level 0 may be the input
    return pyramid


def reconstruct(pyramid: list[torch.Tensor]) -> torch.Tensor:
    """Invert `laplacian_pyramid`: from the coarsest level, pyr_up and add the next finer level."""
    if not pyramid:
        raise ValueError("cannot reconstruct an empty pyramid")
    images = pyramid[-1]
    for level in pyramid[-2::-1]:
        images = pyr_up(images) + level
    return images


def _extract_descriptors(
    level: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, nhood_size: int
) -> torch.Tensor:
    """Gather neighbourhoods: level (N, C, S, S); cx, cy (N, P) long centres (column, row).

    Returns (N * P, C, K, K) with K = nhood_size, image-major, laid out as the reference's flat
    indexing does: out[n, c, i, j] = level[image, c, cy + j - K//2, cx + i - K//2].
    """
    n, c, s, _ = level.shape
    half = nhood_size // 2
    steps = torch.arange(nhood_size, device=level.device)  # (K,)
    pattern = (  # (C, K, K): offset of each component from the neighbourhood's corner
        torch.arange(c, device=level.device).view(c, 1, 1) * (s * s)
        + steps.view(1, 1, -1) * s  # axis 2 (i) runs along x, axis 3 (j) along y
        + steps.view(1, -1, 1)
    )
    image = torch.arange(n, device=level.device).view(n, 1) * (c * s * s)  # (N, 1)
    corner = image + (cy - half) * s + (cx - half)  # (N, P) flat index of the top-left pixel
    index = corner.view(-1, 1, 1, 1) + pattern  # (N*P, C, K, K)
    return torch.take(level, index)  # (N*P, C, K, K)


def _quantile_pairs(n: int, m: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Pairs of sorted indices and weights whose weighted |a[ia] - b[ib]| sum is W1(a, b).

    The quantile function of n sorted samples is a[floor(t * n)] on [0, 1); over the merged
    breakpoints {i / n} U {j / m} both are constant. Integers over the denominator n * m keep it
    exact. Returns ia (L,), ib (L,) long and w (L,) float32 summing to 1, L <= n + m - 1.
    """
    ends = torch.cat([torch.arange(1, n + 1) * m, torch.arange(1, m + 1) * n]).sort().values
    widths = torch.diff(ends, prepend=ends.new_zeros(1))  # (n + m,) interval lengths x n*m
    keep = widths > 0
    ends, widths = ends[keep], widths[keep]
    ia, ib = (ends - 1) // m, (ends - 1) // n  # the sample index active on each interval
    w = (widths.double() / (n * m)).float()
    return ia.to(device), ib.to(device), w.to(device)


def sliced_wasserstein(
    a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor, *, chunk: int | None = None
) -> torch.Tensor:
    """Wasserstein-1 distance of a and b projected on each direction.

    a (Na, D), b (Nb, D): already normalised descriptors; directions (D, K), unit columns.
    Returns (K,) float64: mean |sort(a d) - sort(b d)| per direction when Na == Nb (the
    reference's pointwise distances, before its mean); for Na != Nb the exact W1 between the two
    empirical distributions of the projections. Projections are float32, as in the reference;
    `chunk` directions are projected at a time.
    """
    identity = (
        torch.zeros(a.shape[1], dtype=torch.float32, device=a.device),  # (D,) mean 0
        torch.ones(a.shape[1], dtype=torch.float32, device=a.device),  # (D,) std 1: used as given
    )
    dirs = directions.to(torch.float32)  # (D, K)
    return _sliced_w1([a], [b], identity, identity, dirs, chunk=chunk)


def _project(
    blocks: list[torch.Tensor],
    mean: torch.Tensor,
    std: torch.Tensor,
    dirs: torch.Tensor,
    out: torch.Tensor,
    rows: torch.Tensor,
) -> torch.Tensor:
    """Normalised projections: blocks of (n_i, D) stored descriptors, mean/std (D,), dirs (D, K).

    Fills and returns out (K, sum n_i) float32 with out[k, r] = ((x_r - mean) / std) . dirs[:, k],
    computed as x_r . (dirs / std) - (mean / std) . dirs (the normalisation folded into the
    directions). rows (B, D) float32 is scratch space for converting B stored rows at a time.
    """
    scaled = dirs / std[:, None]  # (D, K)
    offset = (mean / std) @ dirs  # (K,)
    start = 0
    for block in blocks:
        for row in range(0, block.shape[0], rows.shape[0]):
            part = block[row : row + rows.shape[0]]  # (r, D) in the storage dtype
            converted = rows[: part.shape[0]].copy_(part)  # (r, D) float32
            stop = start + part.shape[0]
            out[:, start:stop] = torch.mm(scaled.T, converted.T)  # (K, r)
            start = stop
    return out.sub_(offset[:, None])


def _sort_rows(x: torch.Tensor) -> torch.Tensor:
    """Sort each row of a (k, n) float32 tensor that nothing else references.

    On the CPU numpy's in-place quicksort (SIMD) is several times faster than torch.sort and
    allocates no index tensor; elsewhere torch.sort.
    """
    if x.device.type == "cpu":
        x.numpy().sort(axis=1)  # in place, shares x's memory
        return x
    return x.sort(dim=1).values


def _sliced_w1(
    blocks_a: list[torch.Tensor],
    blocks_b: list[torch.Tensor],
    stats_a: tuple[torch.Tensor, torch.Tensor],
    stats_b: tuple[torch.Tensor, torch.Tensor],
    directions: torch.Tensor,
    *,
    chunk: int | None,
) -> torch.Tensor:
    """W1 per direction (K,) float64 between two descriptor sets held as blocks (n_i, D).

    Each set is normalised by its own (mean, std) of shape (D,); directions (D, K) unit columns.
    """
    device = directions.device
    n = sum(block.shape[0] for block in blocks_a)
    m = sum(block.shape[0] for block in blocks_b)
    k_total = directions.shape[1]
    if chunk is None:  # projection values (4 B) + sorted values (4 B) + sort indices (8 B)
        chunk = max(1, _PROJECTION_BUDGET_BYTES // (16 * (n + m)))
    pairs = None if n == m else _quantile_pairs(n, m, device)
    chunk = min(chunk, k_total)
    # Buffers reused across chunks (fewer large allocations, less allocator fragmentation).
    buf_a = torch.empty(chunk, n, dtype=torch.float32, device=device)  # (chunk, n)
    buf_b = torch.empty(chunk, m, dtype=torch.float32, device=device)  # (chunk, m)
    rows = torch.empty(  # (B, D) conversion scratch
        min(_ROWS_PER_MATMUL, max(n, m)), directions.shape[0], dtype=torch.float32, device=device
    )
    dists = []
    for k0 in range(0, k_total, chunk):
        dirs = directions[:, k0 : k0 + chunk]  # (D, k)
        k = dirs.shape[1]
        proj_a = _sort_rows(_project(blocks_a, *stats_a, dirs, buf_a[:k], rows))  # (k, n) sorted
        proj_b = _sort_rows(_project(blocks_b, *stats_b, dirs, buf_b[:k], rows))  # (k, m) sorted
        if pairs is None:
            dist = proj_a.sub_(proj_b).abs_().mean(dim=1)  # (k,) the reference's pointwise mean
        else:
            ia, ib = pairs[0], pairs[1]
            dist = (proj_a[:, ia] - proj_b[:, ib]).abs_() @ pairs[2]  # (k,) quantile-weighted
        dists.append(dist.double().cpu())
    return torch.cat(dists)  # (K,)


def _generator(seed: int, stream: int) -> torch.Generator:
    """A private CPU generator for one random stream (0 real, 1 fake, 2 directions) of a seed."""
    state = np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


@dataclass
class _DescriptorSet:
    """The descriptors of one image set (real or fake), per level, in large slabs.

    Slabs grow geometrically up to `_SLAB_ROWS` rows (38.5 MB in float16) instead of one
    tensor per batch: few large allocations, which the allocator does not fragment.
    """

    levels: int
    generator: torch.Generator
    images: int = 0
    slabs: list[list[torch.Tensor]] = field(default_factory=list)  # [level][k] (rows, 147)
    filled: list[int] = field(default_factory=list)  # [level] rows used in the last slab
    offset: list[torch.Tensor | None] = field(default_factory=list)  # [level] (C,) float32
    sums: list[torch.Tensor | None] = field(default_factory=list)  # [level] (C,) float64
    squares: list[torch.Tensor | None] = field(default_factory=list)  # [level] (C,) float64

    def __post_init__(self) -> None:
        self.slabs = [[] for _ in range(self.levels)]
        self.filled = [0] * self.levels
        self.offset = [None] * self.levels
        self.sums = [None] * self.levels
        self.squares = [None] * self.levels

    def blocks(self, level: int) -> list[torch.Tensor]:
        """The stored descriptors of a level as (n_i, D) views, in the order they were added."""
        slabs = self.slabs[level]
        return [*slabs[:-1], slabs[-1][: self.filled[level]]] if slabs else []

    def rows(self, level: int) -> int:
        """Number of descriptors stored for a level."""
        slabs = self.slabs[level]
        return sum(slab.shape[0] for slab in slabs[:-1]) + self.filled[level] if slabs else 0

    def store(self, level: int, values: torch.Tensor, dtype: torch.dtype) -> None:
        """Append values (r, C, K, K) float32 (already centred) and add to the level's sums."""
        r, c = values.shape[:2]
        flat = values.reshape(r, -1)  # (r, C*K*K)
        slabs, start = self.slabs[level], 0
        while start < r:
            if not slabs or self.filled[level] == slabs[-1].shape[0]:
                last = slabs[-1].shape[0] if slabs else 0
                rows = min(_SLAB_ROWS, max(r - start, 2 * last))
                slabs.append(flat.new_empty(rows, flat.shape[1], dtype=dtype))
                self.filled[level] = 0
            begin = self.filled[level]
            take = min(r - start, slabs[-1].shape[0] - begin)
            dest = slabs[-1][begin : begin + take].copy_(flat[start : start + take])  # rounds
            exact = dest.to(torch.float64).view(take, c, -1)  # statistics of what is stored
            self.sums[level] += exact.sum(dim=(0, 2))
            self.squares[level] += exact.square().sum(dim=(0, 2))
            self.filled[level] += take
            start += take

    def statistics(self, level: int, nhood_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and population std per descriptor component (147,) float32, from the channels'."""
        count = self.rows(level) * nhood_size**2
        mean = self.sums[level] / count  # (C,) float64
        var = (self.squares[level] / count - mean**2).clamp_min(0.0)
        std = var.sqrt()
        std = torch.where(std > 0, std, torch.ones_like(std))  # constant channel: leave unscaled
        per = nhood_size**2  # components are channel-major: C blocks of K*K
        return (
            mean.repeat_interleave(per).float(),  # (C*K*K,)
            std.repeat_interleave(per).float(),  # (C*K*K,)
        )


def _in_range(x: torch.Tensor) -> bool:
    """Whether all values are finite and within [0, 255] (1e-3 slack for float rounding)."""
    low, high = torch.aminmax(x)  # NaN propagates into both
    return bool(low >= -1e-3) and bool(high <= 255.001)


class SWDAccumulator:
    """Streaming multi-scale sliced Wasserstein distance between a real and a fake image set.

    Feed batches with `add(images, real=True/False)` (uint8 or float (N, C, R, R) in [0, 255],
    C = 1 or 3), then `compute()` -> {"<res>": SWD x 1e3 per level, ..., "avg": their mean}.
    Defaults are the paper's: 7x7 neighbourhoods, 128 per image per level, 4 x 128 directions.
    Descriptors live on `device` in `storage_dtype` (float16: 16384 images at 128 px take
    ~617 MB per level per set). `projection_chunk` directions are projected at a time (None: as
    many as fit a 512 MiB working set). `reset()` forgets a set, e.g. to score a new generator
    snapshot against the same reals.
    """

    def __init__(
        self,
        resolution: int,
        *,
        seed: int = 0,
        nhood_size: int = 7,
        nhoods_per_image: int = 128,
        dir_repeats: int = 4,
        dirs_per_repeat: int = 128,
        device: str | torch.device = "cpu",
        storage_dtype: torch.dtype = torch.float16,
        projection_chunk: int | None = None,
    ) -> None:
        self.resolutions = swd_resolutions(resolution)
        self.resolution = int(resolution)
        for name, value in (
            ("nhood_size", nhood_size),
            ("nhoods_per_image", nhoods_per_image),
            ("dir_repeats", dir_repeats),
            ("dirs_per_repeat", dirs_per_repeat),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if nhood_size % 2 == 0 or nhood_size > MIN_RESOLUTION:
            raise ValueError(f"nhood_size must be odd and <= {MIN_RESOLUTION}, got {nhood_size}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        if not storage_dtype.is_floating_point:
            raise ValueError(f"storage_dtype must be a floating dtype, got {storage_dtype}")
        if projection_chunk is not None and projection_chunk < 1:
            raise ValueError(f"projection_chunk must be >= 1 or None, got {projection_chunk}")
        self.seed = seed
        self.nhood_size = nhood_size
        self.nhoods_per_image = nhoods_per_image
        self.dir_repeats = dir_repeats
        self.dirs_per_repeat = dirs_per_repeat
        self.device = torch.device(device)
        self.storage_dtype = storage_dtype
        self.projection_chunk = projection_chunk
        self._sets: dict[bool, _DescriptorSet] = {}
        self.reset()

    @property
    def num_real(self) -> int:
        """Images added to the real set so far."""
        return self._sets[True].images

    @property
    def num_fake(self) -> int:
        """Images added to the fake set so far."""
        return self._sets[False].images

    @property
    def descriptor_bytes(self) -> int:
        """Bytes of descriptors stored for both sets (slabs reserve up to 38.5 MB more each)."""
        width = 3 * self.nhood_size**2
        size = torch.empty(0, dtype=self.storage_dtype).element_size()
        return sum(
            stored.rows(level) * width * size
            for stored in self._sets.values()
            for level in range(len(self.resolutions))
        )

    def reset(self, *, real: bool = True, fake: bool = True) -> None:
        """Forget the real and/or fake set; its neighbourhood stream restarts from the seed."""
        for is_real, chosen in ((True, real), (False, fake)):
            if chosen:
                stream = 0 if is_real else 1
                self._sets[is_real] = _DescriptorSet(
                    len(self.resolutions), _generator(self.seed, stream)
                )

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        """Validate a batch; return it as float32 (N, 3, R, R) on the device."""
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        n, c, h, w = images.shape
        if c not in (1, 3):
            raise ValueError(f"images must have 1 (grey) or 3 (RGB) channels, got {c}")
        if h != w or h != self.resolution:
            raise ValueError(
                f"images must be {self.resolution}x{self.resolution} (this accumulator's "
                f"resolution), got {h}x{w}"
            )
        if images.dtype == torch.bool or images.is_complex():
            raise TypeError(f"images must be uint8 or float in [0, 255], got {images.dtype}")
        x = images.to(self.device, torch.float32)  # (N, C, R, R)
        if images.dtype != torch.uint8 and n and not _in_range(x):
            raise ValueError(
                "image values must lie in [0, 255] (uint8 scale); got range "
                f"[{float(x.min()):.4g}, {float(x.max()):.4g}] - convert [-1, 1] images with "
                "((x + 1) * 127.5).round().clamp(0, 255)"
            )
        return x.expand(n, 3, h, w) if c == 1 else x  # grey -> RGB, as the reference tiles

    def add(self, images: torch.Tensor, *, real: bool) -> None:
        """Extract the descriptors of a batch (N, C, R, R) into the real or the fake set."""
        x = self._check(images)  # (N, 3, R, R) float32
        n = x.shape[0]
        if n == 0:
            return
        target = self._sets[bool(real)]
        half = self.nhood_size // 2
        levels = len(self.resolutions)
        # Centres per image, image-major: (N, levels, 2 = (x, y), P) uniforms on the CPU stream.
        uniform = torch.rand(
            (n, levels, 2, self.nhoods_per_image), dtype=torch.float64, generator=target.generator
        )
        pyramid = laplacian_pyramid(x, levels)  # [(N, 3, R / 2^l, R / 2^l)]
        for index, (level, side) in enumerate(zip(pyramid, self.resolutions, strict=True)):
            # randint(H, S - H) as in the reference: floor(u * (S - 2H)) + H
            centres = (uniform[:, index] * (side - 2 * half)).floor_().long() + half  # (N, 2, P)
            centres = centres.to(self.device)
            desc = _extract_descriptors(level, centres[:, 0], centres[:, 1], self.nhood_size)
            if target.offset[index] is None:  # desc (N*P, 3, K, K); centre the stored values
                first = desc[: self.nhoods_per_image]  # the set's first image
                target.offset[index] = first.mean(dim=(0, 2, 3))  # (3,)
                target.sums[index] = torch.zeros(3, dtype=torch.float64, device=self.device)
                target.squares[index] = torch.zeros(3, dtype=torch.float64, device=self.device)
            centred = desc.sub_(target.offset[index].view(1, 3, 1, 1))  # (N*P, 3, K, K)
            target.store(index, centred, self.storage_dtype)
        target.images += n

    def _directions(self, generator: torch.Generator, dim: int) -> torch.Tensor:
        """(dim, repeats * per_repeat) float32 unit columns, drawn repeat by repeat in float64."""
        dirs = []
        for _ in range(self.dir_repeats):
            d = torch.randn(dim, self.dirs_per_repeat, dtype=torch.float64, generator=generator)
            dirs.append(d / d.square().sum(dim=0, keepdim=True).sqrt())  # (dim, per_repeat)
        return torch.cat(dirs, dim=1).float().to(self.device)

    def compute(self) -> dict[str, float]:
        """SWD x 1e3 per level ("128", "64", ... "16") and their mean ("avg")."""
        real, fake = self._sets[True], self._sets[False]
        if real.images == 0 or fake.images == 0:
            raise ValueError(
                "SWD needs at least one real and one fake image; got "
                f"{real.images} real and {fake.images} fake"
            )
        generator = _generator(self.seed, 2)
        dim = 3 * self.nhood_size**2
        results: dict[str, float] = {}
        for index, side in enumerate(self.resolutions):
            directions = self._directions(generator, dim)  # (147, R * K), new per level
            w1 = _sliced_w1(
                real.blocks(index),
                fake.blocks(index),
                real.statistics(index, self.nhood_size),
                fake.statistics(index, self.nhood_size),
                directions,
                chunk=self.projection_chunk,
            )  # (R * K,)
            per_repeat = w1.view(self.dir_repeats, self.dirs_per_repeat).mean(dim=1)  # (R,)
            results[str(side)] = float(per_repeat.mean()) * 1e3
        results["avg"] = float(np.mean([results[str(side)] for side in self.resolutions]))
        return results


def sliced_wasserstein_distance(
    real: Iterable[torch.Tensor],
    fake: Iterable[torch.Tensor],
    resolution: int,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    **options: Any,
) -> dict[str, float]:
    """SWD x 1e3 between two streams of image batches (N, C, R, R) in [0, 255].

    A single (N, C, R, R) tensor counts as one batch. `options` go to `SWDAccumulator`
    (nhoods_per_image, dir_repeats, storage_dtype, ...).
    """
    accumulator = SWDAccumulator(resolution, seed=seed, device=device, **options)
    if isinstance(real, torch.Tensor):
        real = [real]
    if isinstance(fake, torch.Tensor):
        fake = [fake]
    for batch in real:
        accumulator.add(batch, real=True)
    for batch in fake:
        accumulator.add(batch, real=False)
    return accumulator.compute()
