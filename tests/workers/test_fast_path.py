"""The inference fast path: what it picks, and the quality guard on briefly trained models
(bf16 autocast output within 35 dB PSNR of fp32 for translations and samples)."""

from __future__ import annotations

import math

import pytest
import torch

import models
from core.settings import Settings
from models.pix2pix.translation import translate_batch
from models.precision import cpu_has_native_bf16
from models.sampling import generate, sample_inputs
from training.demo import build_demo
from training.families.pix2pix import Pix2PixConfig
from training.families.unetgan import UNetGANConfig
from training.loop import RunOptions, train
from workers.fast_path import FastPath, bucket

CPU = torch.device("cpu")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two images in [-1, 1], measured on [0, 1]."""
    mse = float((((a - b) / 2) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def trained(tmp_path, family: str, demo: str, steps: int, config) -> torch.nn.Module:
    data = build_demo(demo, tmp_path / demo, size=32, count=16)
    run = train(
        family,
        RunOptions(
            data=data,
            out=tmp_path / f"{family}-run",
            image_size=32,
            batch_size=4,
            steps=steps,
            device="cpu",
            progress_bar=False,
        ),
        config,
    )
    return models.load(run.model_dir)


def test_auto_picks_bf16_where_the_cpu_has_it_and_fp32_turns_it_off():
    auto = FastPath.from_settings(Settings(precision="auto"), CPU)
    assert auto.bf16 == cpu_has_native_bf16() and not auto.compile
    assert not FastPath.from_settings(Settings(precision="fp32"), CPU).bf16
    assert FastPath.from_settings(Settings(precision="fp32"), CPU).name == "fp32"
    assert FastPath(CPU, precision="bf16", compile=True).name == "bf16+compile"
    assert [bucket(n) for n in (1, 2, 3, 5, 8, 9, 32)] == [1, 2, 4, 8, 8, 16, 32]


def test_bf16_translations_and_samples_stay_within_35_db_of_fp32(tmp_path, one_torch_thread):
    fast = FastPath(CPU, precision="bf16", compile=False)
    translator = trained(tmp_path, "pix2pix", "edges2photo", 40, Pix2PixConfig(width=16))
    x = torch.rand(4, translator.config.in_channels, 32, 32) * 2 - 1
    fp32 = translate_batch(translator, x, [1, 2, 3, 4])
    with fast.autocast():
        bf16 = translate_batch(translator, x, [1, 2, 3, 4])
    assert psnr(bf16, fp32) >= 35, psnr(bf16, fp32)

    sampler = trained(tmp_path, "unetgan", "digits", 30, UNetGANConfig(width=8))
    z, y = sample_inputs(sampler.config, 8, seed=5)
    fp32 = generate(sampler, z, y)
    with fast.autocast():
        bf16 = generate(sampler, z, y)
    assert psnr(bf16, fp32) >= 35, psnr(bf16, fp32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_cuda_fast_path_uses_channels_last():
    cuda = torch.device("cuda")
    fast = FastPath(cuda, precision="auto", compile=False)
    network = fast.prepare(models.create("pix2pix-generator", image_size=32, base_width=4).to(cuda))
    conv = next(m for m in network.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_bf16_batches_stay_within_one_grey_level_of_their_single_images(one_torch_thread):
    """On the fast path a batch is not bit-identical to single images (the kernels differ by
    batch size), but stays within 1/255 of the [0, 1] range: the PNG values differ by one
    level at most."""
    fast = FastPath(CPU, precision="bf16", compile=False)
    torch.manual_seed(0)
    translator = models.create("pix2pix-generator", image_size=64, base_width=8)
    x = torch.rand(8, 3, 64, 64) * 2 - 1
    seeds = list(range(8))
    with fast.autocast():
        batch = translate_batch(translator, x, seeds)
        singles = torch.cat([translate_batch(translator, x[i : i + 1], [i]) for i in range(8)])
    assert (batch - singles).abs().max() / 2 <= 1 / 255
