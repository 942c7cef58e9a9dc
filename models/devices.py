"""The torch device a device name means: `auto` (CUDA when there is a GPU, else the CPU), `cpu`,
`cuda` or `cuda:N`; used by the inference workers' model cache and by training runs."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when there is a GPU, else CPU; 'cuda' without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but PyTorch sees no CUDA device here")
    return device
