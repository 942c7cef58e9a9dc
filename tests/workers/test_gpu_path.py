"""The GPU path of the infer worker: host <-> device copies (`workers.device_io`), compile modes
and buckets (`workers.fast_path`). On the CPU the copies add nothing and change no bit; the CUDA
tests (skipped without a GPU, run by `benchmarks/gpu.sh`) compare the stream path and CUDA graphs
with the plain path."""

from __future__ import annotations

import logging

import pytest
import torch

import models
from models.pix2pix import translation
from models.sampling import generate, sample_inputs
from workers import inference
from workers.device_io import DeviceIO
from workers.fast_path import Bucketed, FastPath, compile_mode

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def pix2pix(size: int = 32) -> torch.nn.Module:
    torch.manual_seed(0)
    return models.create("pix2pix-generator", image_size=size, base_width=4).eval()


def sampler() -> torch.nn.Module:
    torch.manual_seed(0)
    config = {"image_size": 32, "width": 4, "latent_dim": 8, "num_classes": 3}
    return models.create("unetgan-generator", **config).eval()


def test_on_the_cpu_the_copies_hand_the_tensors_back():
    io = DeviceIO(CPU)
    a, b = torch.rand(2, 3), torch.rand(1, 3)
    assert io.stream is None
    moved = io.to_device(a, b)
    assert moved[0] is a and moved[1] is b
    assert io.to_host(a) is a
    assert torch.equal(io.batch_to_device([a, b]), torch.cat([a, b]))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cpu_translations_are_the_bits_of_the_plain_path(precision):
    """The worker's batch call (copies, masks moved first) equals `models.pix2pix.translation` bit
    for bit on the CPU, in fp32 and under bf16 autocast."""
    generator, fast = pix2pix(), FastPath(CPU, precision=precision, compile=False)
    parts = [torch.rand(1, 3, 32, 32) * 2 - 1 for _ in range(3)]
    seeds = [4, 5, 6]
    with torch.no_grad(), fast.autocast():
        plain = translation.translate_batch(generator, torch.cat(parts), seeds)
        worker = inference.translate_batch(generator, fast.io.batch_to_device(parts), seeds, fast)
    assert worker.dtype == torch.float32 and worker.device == CPU
    assert torch.equal(worker, plain)


def test_bucketed_calls_run_at_powers_of_two_and_keep_each_row():
    calls = []

    def run(z: torch.Tensor, y: torch.Tensor, *, class_embedding: torch.Tensor) -> torch.Tensor:
        calls.append((z.shape[0], y.shape[0], class_embedding.shape[0]))
        return z * 2 + y[:, None] + class_embedding

    network = torch.nn.Linear(1, 1)
    bucketed = Bucketed(network, run)
    assert [id(p) for p in bucketed.parameters()] == [id(p) for p in network.parameters()]
    for rows in (1, 3, 5, 16, 20):
        z, y, e = torch.rand(rows, 4), torch.arange(rows).float(), torch.rand(rows, 4)
        out = bucketed(z, y, class_embedding=e)
        assert torch.equal(out, z * 2 + y[:, None] + e)
    assert calls == [(n, n, n) for n in (1, 4, 8, 16, 32)]


def test_compile_modes(caplog):
    assert compile_mode(None, CPU) is None and compile_mode(False, CPU) is None
    assert compile_mode(True, CPU) == "default"
    with caplog.at_level(logging.WARNING, logger="workers.fast_path"):
        assert compile_mode("reduce-overhead", CPU) == "default"  # CUDA graphs need CUDA
    assert "needs CUDA" in caplog.text
    assert compile_mode("reduce-overhead", torch.device("cuda")) == "reduce-overhead"
    with pytest.raises(ValueError, match="max-autotune"):
        compile_mode("max-autotune", CPU)
    fast = FastPath(CPU, precision="fp32", compile="reduce-overhead")
    assert fast.compile and not fast.cuda_graphs and fast.name == "fp32+compile"
    assert not FastPath(CPU, precision="fp32", compile=None).compile


def test_compiled_translations_and_samples_on_the_cpu():
    """reduce-overhead on a CPU is plain torch.compile: bucketed translations (3 images at
    bucket 4) and samples match eager within float rounding."""
    fast = FastPath(CPU, precision="fp32", compile="reduce-overhead")
    generator = pix2pix()
    x, seeds = torch.rand(3, 3, 32, 32) * 2 - 1, [1, 2, 3]
    with torch.no_grad():
        eager = translation.translate_batch(generator, x, seeds)
        compiled = inference.translate_batch(generator, x, seeds, fast)
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)

    network = sampler()
    z, y = sample_inputs(network.config, 5, seed=3)
    with torch.no_grad():
        eager = generate(network, z, y)
        compiled = generate(fast.sampler(network), z, y)
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)


@needs_cuda
def test_cuda_copies_use_pinned_memory_and_keep_the_values():
    cuda = torch.device("cuda")
    io = DeviceIO(cuda)
    parts = [torch.rand(2, 3, 8, 8), torch.rand(1, 3, 8, 8)]
    batch = io.batch_to_device(parts)
    assert batch.device.type == "cuda"
    mask = torch.rand(3, 4)
    (moved,) = io.to_device(mask)
    y = (batch * 2).to(memory_format=torch.channels_last)
    host = io.to_host(y)
    assert host.device == CPU and host.is_pinned() and host.is_contiguous()
    assert torch.equal(host, torch.cat(parts) * 2)
    assert torch.equal(moved.cpu(), mask)


@needs_cuda
def test_cuda_stream_path_translates_like_the_plain_path():
    cuda = torch.device("cuda")
    fast = FastPath(cuda, precision="fp32", compile=False)
    generator = pix2pix().to(cuda)
    parts = [torch.rand(1, 3, 32, 32) * 2 - 1 for _ in range(4)]
    seeds = [7, 8, 9, 10]
    with torch.no_grad():
        plain = translation.translate_batch(generator, torch.cat(parts).to(cuda), seeds).cpu()
        worker = inference.translate_batch(generator, fast.io.batch_to_device(parts), seeds, fast)
    torch.testing.assert_close(worker, plain, atol=1e-5, rtol=1e-5)


@needs_cuda
def test_cuda_graphs_translate_and_sample_like_eager():
    """reduce-overhead on CUDA: graphs at the model's size (3 images at bucket 4), a result
    still right after the next replay (copied out), other sizes compiled without graphs, and
    samples; within the 0.05 (of [-1, 1]) that compiled bf16 kernels may differ by."""
    cuda = torch.device("cuda")
    graphs = FastPath(cuda, precision="bf16", compile="reduce-overhead")
    eager = FastPath(cuda, precision="bf16", compile=False)
    assert graphs.cuda_graphs
    generator = graphs.prepare(pix2pix().to(cuda))

    def translate(fast: FastPath, x: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        with torch.no_grad(), fast.autocast():
            return inference.translate_batch(generator, fast.io.batch_to_device([x]), seeds, fast)

    first, second = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 32, 32) * 2 - 1
    expected = translate(eager, first, [1, 2, 3])
    for _ in range(3):  # warm-up, recording, replays
        got = translate(graphs, first, [1, 2, 3])
        translate(graphs, second, [4, 5, 6])
        torch.testing.assert_close(got, expected, atol=0.05, rtol=0)
    wide = torch.rand(2, 3, 32, 64) * 2 - 1
    torch.testing.assert_close(
        translate(graphs, wide, [1, 2]), translate(eager, wide, [1, 2]), atol=0.05, rtol=0
    )

    network = graphs.prepare(sampler().to(cuda))
    z, y = sample_inputs(network.config, 5, seed=3)
    with torch.no_grad(), graphs.autocast():
        plain = generate(network, z, y)
        for _ in range(3):
            torch.testing.assert_close(
                generate(graphs.sampler(network), z, y), plain, atol=0.05, rtol=0
            )
