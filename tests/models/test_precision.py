"""Where the training loop uses bf16 autocast: CUDA, or a CPU that multiplies bf16 natively."""

import torch

from models import precision


def write_flags(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n")
    return path


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    assert precision.cpu_has_native_bf16(write_flags(tmp_path, "amx_bf16 amx_tile"))
    assert precision.cpu_has_native_bf16(write_flags(tmp_path / "..", "avx512_bf16"))
    assert not precision.cpu_has_native_bf16(write_flags(tmp_path / "../..", "avx512f"))
    assert not precision.cpu_has_native_bf16(tmp_path / "missing")


def test_autocast_follows_the_hardware_and_no_amp(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert not precision.use_autocast(cpu, True)
    assert precision.use_autocast(cuda, True) and not precision.use_autocast(cuda, False)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.use_autocast(cpu, True) and not precision.use_autocast(cpu, False)


def test_channels_last_only_on_cuda():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert precision.memory_format(cpu, True) == torch.contiguous_format
    assert precision.memory_format(cuda, True) == torch.channels_last
    assert precision.memory_format(cuda, False) == torch.contiguous_format


def test_bf16_autocast_on_cpu_computes_in_bf16():
    conv = torch.nn.Conv2d(1, 2, 3)
    with precision.autocast(torch.device("cpu"), True):
        assert conv(torch.randn(1, 1, 8, 8)).dtype == torch.bfloat16
    with precision.autocast(torch.device("cpu"), False):
        assert conv(torch.randn(1, 1, 8, 8)).dtype == torch.float32
