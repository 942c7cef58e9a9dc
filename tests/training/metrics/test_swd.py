"""Multi-scale sliced Wasserstein distance (training.metrics.swd) against Karras et al. 2018.

The pyramid, the neighbourhood indexing and the distance are checked against a small numpy/scipy
port of the reference code (tkarras/progressive_growing_of_gans, metrics/sliced_wasserstein.py),
and the metric's behaviour on real photographs (scikit-image's bundled samples): ~0 for a set
against itself, growing with noise and with blur.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
import torch
import torch.nn.functional as F

from training.metrics import swd
from training.metrics.swd import (
    SWDAccumulator,
    laplacian_pyramid,
    pyr_down,
    pyr_up,
    reconstruct,
    sliced_wasserstein,
    sliced_wasserstein_distance,
    swd_resolutions,
)

# Small settings keep the file fast; one test runs the paper's defaults.
FAST = {"nhoods_per_image": 32, "dir_repeats": 4, "dirs_per_repeat": 32}

# --- a numpy/scipy port of the reference, for comparison ------------------------------------
REF_FILTER = np.float64([[1, 4, 6, 4, 1]]).T @ np.float64([[1, 4, 6, 4, 1]]) / 256.0


def ref_pyr_down(x: np.ndarray) -> np.ndarray:
    kernel = REF_FILTER.astype(x.dtype)[None, None]
    return scipy.ndimage.convolve(x, kernel, mode="mirror")[:, :, ::2, ::2]


def ref_pyr_up(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    up = np.zeros((n, c, 2 * h, 2 * w), x.dtype)
    up[:, :, ::2, ::2] = x
    return scipy.ndimage.convolve(up, (REF_FILTER * 4.0).astype(x.dtype)[None, None], mode="mirror")


def ref_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    pyramid = [x.copy()]
    for _ in range(1, levels):
        pyramid.append(ref_pyr_down(pyramid[-1]))
        pyramid[-2] -= ref_pyr_up(pyramid[-1])
    return pyramid


def ref_descriptors(level: np.ndarray, xs: np.ndarray, ys: np.ndarray, per_image: int):
    """The reference's flat indexing with given centres xs, ys of shape (N * per_image,)."""
    s = level.shape
    n, h = xs.shape[0], 3
    nhood, chan, x, y = np.ogrid[0:n, 0:3, -h : h + 1, -h : h + 1]
    img = nhood // per_image
    x = x + xs.reshape(n, 1, 1, 1)
    y = y + ys.reshape(n, 1, 1, 1)
    idx = ((img * s[1] + chan) * s[2] + y) * s[3] + x
    return level.flat[idx]


def ref_finalize(desc: np.ndarray) -> np.ndarray:
    desc = desc - np.mean(desc, axis=(0, 2, 3), keepdims=True)
    desc /= np.std(desc, axis=(0, 2, 3), keepdims=True)
    return desc.reshape(desc.shape[0], -1)


def ref_sliced_wasserstein(a: np.ndarray, b: np.ndarray, dirs_per_repeat: list[np.ndarray]):
    results = []
    for dirs in dirs_per_repeat:
        proj_a = np.sort(a @ dirs, axis=0)
        proj_b = np.sort(b @ dirs, axis=0)
        results.append(np.mean(np.abs(proj_a - proj_b)))
    return np.mean(results)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: on a small, shared CPU OpenMP barriers cost more than they give."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- images ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    from skimage import data

    return [data.astronaut(), data.coffee(), data.chelsea()]  # (H, W, 3) uint8


def crops(photos: list[np.ndarray], count: int, seed: int, size: int = 64) -> torch.Tensor:
    """(count, 3, size, size) uint8 random crops of the sample photos."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        photo = photos[rng.integers(len(photos))]
        y = rng.integers(0, photo.shape[0] - size)
        x = rng.integers(0, photo.shape[1] - size)
        out.append(photo[y : y + size, x : x + size])
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def real(photos) -> torch.Tensor:
    return crops(photos, 48, seed=0)


def swd_of(real: torch.Tensor, fake: torch.Tensor, **options) -> dict[str, float]:
    acc = SWDAccumulator(real.shape[-1], **{**FAST, **options})
    acc.add(real, real=True)
    acc.add(fake, real=False)
    return acc.compute()


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255).to(torch.uint8)


# --- resolutions ----------------------------------------------------------------------------
def test_resolutions_halve_down_to_16():
    assert swd_resolutions(128) == [128, 64, 32, 16]
    assert swd_resolutions(64) == [64, 32, 16]
    assert swd_resolutions(16) == [16]
    assert swd_resolutions(1024)[-1] == 16


@pytest.mark.parametrize("bad", [8, 0, -16, 48, 100])
def test_resolutions_reject_small_or_not_power_of_two(bad):
    with pytest.raises(ValueError, match="power of two >= 16"):
        swd_resolutions(bad)


# --- Laplacian pyramid ----------------------------------------------------------------------
def test_pyramid_reconstructs_its_input():
    x = torch.rand(3, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    pyramid = laplacian_pyramid(x * 255, 3)
    assert [p.shape[-1] for p in pyramid] == [64, 32, 16]
    torch.testing.assert_close(reconstruct(pyramid), x * 255, rtol=0, atol=1e-10)
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    pyramid = laplacian_pyramid(images, 2)  # uint8 -> float32, like np.float32(minibatch)
    assert pyramid[0].dtype == torch.float32
    torch.testing.assert_close(reconstruct(pyramid), images.float(), rtol=0, atol=1e-3)


def test_pyramid_matches_the_reference_scipy_code():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 255, size=(2, 3, 64, 64))
    for mine, ref in zip(laplacian_pyramid(torch.from_numpy(x), 3), ref_pyramid(x, 3), strict=True):
        np.testing.assert_allclose(mine.numpy(), ref, rtol=0, atol=1e-10)
    small = rng.uniform(0, 255, size=(1, 2, 8, 12))  # non-square and odd widths in pyr_up
    np.testing.assert_allclose(pyr_down(torch.from_numpy(small)).numpy(), ref_pyr_down(small))
    np.testing.assert_allclose(pyr_up(torch.from_numpy(small)).numpy(), ref_pyr_up(small))
    odd = rng.uniform(0, 255, size=(1, 1, 5, 3))
    np.testing.assert_allclose(pyr_up(torch.from_numpy(odd)).numpy(), ref_pyr_up(odd))


def test_lowest_level_is_a_binomial_blur_and_subsample():
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64) * 255
    kernel = torch.tensor([1.0, 4, 6, 4, 1], dtype=torch.float64)
    kernel = (kernel[:, None] * kernel[None, :] / 256).expand(3, 1, 5, 5)  # direct 5x5

    def blur_down(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, (2, 2, 2, 2), mode="reflect"), kernel, groups=3)[..., ::2, ::2]

    torch.testing.assert_close(laplacian_pyramid(x, 2)[-1], blur_down(x))
    torch.testing.assert_close(laplacian_pyramid(x, 3)[-1], blur_down(blur_down(x)))


def test_pyramid_rejects_bad_shapes():
    with pytest.raises(ValueError, match="divisible"):
        laplacian_pyramid(torch.zeros(1, 3, 24, 18), 3)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        laplacian_pyramid(torch.zeros(3, 16, 16), 2)


# --- descriptors and the distance -----------------------------------------------------------
def test_descriptors_follow_the_reference_indexing():
    rng = np.random.default_rng(3)
    level = rng.standard_normal((3, 3, 16, 16)).astype(np.float32)
    per_image = 5
    xs = rng.integers(3, 13, size=3 * per_image)
    ys = rng.integers(3, 13, size=3 * per_image)
    mine = swd._extract_descriptors(
        torch.from_numpy(level),
        torch.from_numpy(xs).view(3, per_image),
        torch.from_numpy(ys).view(3, per_image),
        7,
    )
    np.testing.assert_array_equal(mine.numpy(), ref_descriptors(level, xs, ys, per_image))


def unit_directions(dim: int, count: int, seed: int) -> torch.Tensor:
    d = torch.randn(dim, count, generator=torch.Generator().manual_seed(seed))
    return d / d.norm(dim=0)


def test_sliced_wasserstein_is_mean_sorted_difference_and_zero_on_identical_sets():
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(300, 147, generator=g), torch.randn(300, 147, generator=g) * 1.1
    dirs = unit_directions(147, 12, seed=5)
    expected = np.abs(np.sort((a @ dirs).numpy(), 0) - np.sort((b @ dirs).numpy(), 0)).mean(0)
    np.testing.assert_allclose(sliced_wasserstein(a, b, dirs, chunk=5).numpy(), expected, 1e-5)
    assert torch.equal(sliced_wasserstein(a, a, dirs), torch.zeros(12, dtype=torch.float64))


def test_sliced_wasserstein_of_different_sizes_is_the_exact_1d_w1():
    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(257, 147, generator=g), torch.randn(100, 147, generator=g) + 0.2
    dirs = unit_directions(147, 6, seed=7)
    pa, pb = (a @ dirs).numpy(), (b @ dirs).numpy()
    expected = [scipy.stats.wasserstein_distance(pa[:, k], pb[:, k]) for k in range(6)]
    np.testing.assert_allclose(sliced_wasserstein(a, b, dirs).numpy(), expected, rtol=1e-5)
    doubled = sliced_wasserstein(a, torch.cat([a, a]), dirs)  # same empirical distribution
    assert doubled.abs().max() < 1e-6


def test_end_to_end_matches_a_port_of_the_reference():
    """Same neighbourhood centres and directions as the accumulator draws: same SWD."""
    images = torch.randint(0, 256, (6, 3, 32, 32), generator=torch.Generator().manual_seed(8))
    fake = to_uint8(images.float() * 0.8 + 20)
    seed, per_image, repeats, per_repeat = 3, 16, 2, 24
    acc = SWDAccumulator(
        32,
        seed=seed,
        nhoods_per_image=per_image,
        dir_repeats=repeats,
        dirs_per_repeat=per_repeat,
        storage_dtype=torch.float32,
    )
    acc.add(images, real=True)
    acc.add(fake, real=False)
    got = acc.compute()

    def ref_descriptor_sets(batch: torch.Tensor, stream: int) -> list[np.ndarray]:
        uniform = torch.rand(
            (batch.shape[0], 2, 2, per_image),
            dtype=torch.float64,
            generator=swd._generator(seed, stream),
        ).numpy()  # (N, levels, (x, y), P), as the accumulator draws them
        out = []
        for index, level in enumerate(ref_pyramid(batch.numpy().astype(np.float32), 2)):
            centres = np.floor(uniform[:, index] * (level.shape[-1] - 6)).astype(np.int64) + 3
            desc = ref_descriptors(level, centres[:, 0].ravel(), centres[:, 1].ravel(), per_image)
            out.append(ref_finalize(desc))
        return out

    generator = swd._generator(seed, 2)
    expected = {}
    for index, (a, b) in enumerate(
        zip(ref_descriptor_sets(images, 0), ref_descriptor_sets(fake, 1), strict=True)
    ):
        dirs = []
        for _ in range(repeats):
            d = torch.randn(147, per_repeat, dtype=torch.float64, generator=generator).numpy()
            dirs.append((d / np.sqrt(np.sum(np.square(d), axis=0, keepdims=True))).astype("f4"))
        expected[str(32 >> index)] = ref_sliced_wasserstein(a, b, dirs) * 1e3
    expected["avg"] = np.mean([expected["32"], expected["16"]])
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-4), key


# --- behaviour on photographs ---------------------------------------------------------------
def test_set_against_itself_is_near_zero(real, photos):
    """~0 means the sampling floor: independent neighbourhood draws of one set differ a little."""
    same = swd_of(real, real)  # the same images, independent neighbourhood draws
    other = swd_of(real, crops(photos, 48, seed=1))  # other crops of the same photos
    noise = torch.randn(real.shape, generator=torch.Generator().manual_seed(10))
    noisy = swd_of(real, to_uint8(real.float() + 16 * noise))
    for key in same:
        assert 0 < same[key] < 0.5 * noisy["64"]
    assert same["avg"] < 0.5 * noisy["avg"]
    assert other["avg"] < noisy["avg"]
    more = swd_of(real, real, nhoods_per_image=128)  # 4x the samples: about half the floor
    assert more["avg"] < 0.75 * same["avg"]


def test_rises_with_noise(real):
    g = torch.Generator().manual_seed(9)
    noise = torch.randn(real.shape, generator=g)
    results = [swd_of(real, to_uint8(real.float() + sigma * noise)) for sigma in (0, 8, 16, 32)]
    for key in ("64", "32", "avg"):
        values = [r[key] for r in results]
        assert values == sorted(values) and len(set(values)) == 4, (key, values)


def test_rises_with_blur(real):
    x = real.numpy().astype(np.float32)
    results = [
        swd_of(real, to_uint8(torch.from_numpy(scipy.ndimage.gaussian_filter(x, (0, 0, s, s)))))
        for s in (0, 1, 2, 4)
    ]
    for key in ("64", "32", "avg"):
        values = [r[key] for r in results]
        assert values == sorted(values) and len(set(values)) == 4, (key, values)


# --- API ------------------------------------------------------------------------------------
def test_keys_values_and_counts(real):
    acc = SWDAccumulator(64, **FAST)
    acc.add(real[:20], real=True)
    acc.add(real[20:], real=False)
    assert (acc.num_real, acc.num_fake) == (20, 28)  # sets of different sizes are fine
    result = acc.compute()
    assert list(result) == ["64", "32", "16", "avg"]
    assert all(isinstance(v, float) and np.isfinite(v) and v > 0 for v in result.values())
    assert result["avg"] == pytest.approx(np.mean([result[k] for k in ("64", "32", "16")]))
    assert acc.compute() == result  # compute() does not consume anything


def test_deterministic_for_a_seed_and_leaves_the_global_rng_alone(real):
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    first = swd_of(real[:24], real[24:], seed=5)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.random.get_state()[1].tolist() == numpy_state[1].tolist()
    assert swd_of(real[:24], real[24:], seed=5) == first
    assert swd_of(real[:24], real[24:], seed=6) != first


def test_batching_interleaving_and_storage_slabs_do_not_matter(real, monkeypatch):
    whole = swd_of(real[:24], real[24:])
    monkeypatch.setattr(swd, "_SLAB_ROWS", 100)  # batches split across many small slabs
    acc = SWDAccumulator(64, **FAST)
    for start, stop in ((0, 5), (5, 17), (17, 24)):
        acc.add(real[24 + start : 24 + stop], real=False)
        acc.add(real[start:stop], real=True)
    assert acc.descriptor_bytes == 48 * 32 * 147 * 2 * 3  # images x nhoods x 147 x f16 x levels
    for key, value in acc.compute().items():
        assert value == pytest.approx(whole[key], rel=1e-6)


def test_float16_storage_and_direction_chunks_barely_change_the_result(real):
    exact = swd_of(real[:24], real[24:], storage_dtype=torch.float32)
    half = swd_of(real[:24], real[24:])
    chunked = swd_of(real[:24], real[24:], projection_chunk=7)
    for key in exact:
        assert half[key] == pytest.approx(exact[key], rel=2e-3)
        assert chunked[key] == pytest.approx(half[key], rel=1e-5)


def test_paper_defaults_on_a_small_set(photos):
    real, fake = crops(photos, 12, seed=2, size=32), crops(photos, 12, seed=3, size=32)
    result = sliced_wasserstein_distance([real[:6], real[6:]], [fake], 32, seed=1)
    acc = SWDAccumulator(32, seed=1)  # defaults: 7x7, 128 per image, 4 x 128 directions
    assert (acc.nhood_size, acc.nhoods_per_image, acc.dir_repeats, acc.dirs_per_repeat) == (
        7,
        128,
        4,
        128,
    )
    acc.add(real, real=True)
    acc.add(fake, real=False)
    expected = acc.compute()
    assert list(result) == ["32", "16", "avg"]
    for key in expected:
        assert result[key] == pytest.approx(expected[key], rel=1e-3)
        assert 0 < result[key] < 1e3


def test_grey_images_count_as_tiled_rgb(real):
    grey = real[:, :1]
    tiled = grey.expand(-1, 3, -1, -1)
    assert swd_of(grey[:24], grey[24:]) == swd_of(tiled[:24], tiled[24:])
    floats = swd_of(real[:24].float(), real[24:].float())  # float in [0, 255] == uint8
    assert floats == swd_of(real[:24], real[24:])


def test_reset_scores_a_new_fake_set_against_the_same_reals(real):
    acc = SWDAccumulator(64, **FAST)
    acc.add(real[:24], real=True)
    acc.add(real[24:], real=False)
    first = acc.compute()
    acc.reset(real=False)
    assert (acc.num_real, acc.num_fake) == (24, 0)
    acc.add(real[24:], real=False)
    assert acc.compute() == first


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), "64x64"),
        (torch.zeros(2, 3, 64, 32, dtype=torch.uint8), "64x64"),
        (torch.zeros(2, 2, 64, 64, dtype=torch.uint8), "1 \\(grey\\) or 3"),
        (torch.zeros(3, 64, 64, dtype=torch.uint8), r"\(N, C, H, W\)"),
        (torch.full((2, 3, 64, 64), -1.0), r"\[0, 255\]"),
        (torch.full((2, 3, 64, 64), 300.0), r"\[0, 255\]"),
        (torch.full((2, 3, 64, 64), float("nan")), r"\[0, 255\]"),
    ],
)
def test_bad_batches_are_refused(images, match):
    acc = SWDAccumulator(64, **FAST)
    with pytest.raises(ValueError, match=match):
        acc.add(images, real=True)


def test_empty_sets_and_bad_settings_are_refused(real):
    acc = SWDAccumulator(64, **FAST)
    with pytest.raises(ValueError, match="0 real and 0 fake"):
        acc.compute()
    acc.add(real[:4], real=True)
    acc.add(real[:0], real=False)  # an empty batch adds nothing
    with pytest.raises(ValueError, match="at least one real and one fake"):
        acc.compute()
    with pytest.raises(ValueError, match="power of two"):
        SWDAccumulator(48)
    with pytest.raises(ValueError, match="odd"):
        SWDAccumulator(64, nhood_size=6)
    with pytest.raises(ValueError, match="nhoods_per_image"):
        SWDAccumulator(64, nhoods_per_image=0)
    with pytest.raises(ValueError, match="seed"):
        SWDAccumulator(64, seed=-1)
