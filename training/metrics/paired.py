"""pix2pix's per-image metrics: L1, PSNR and SSIM between translations and their targets.

Isola et al. (CVPR 2017) judge translations against the ground truth of the validation split;
PSNR and SSIM (Wang et al., 2004) come from torchmetrics. All three are computed on images scaled
to [0, 1] (data range 1), averaged over images.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)


class PairedMetrics:
    """Running means of L1, PSNR and SSIM over batches of (prediction, target) pairs."""

    def __init__(self) -> None:
        self.count = 0
        self.sums = {"l1": 0.0, "psnr": 0.0, "ssim": 0.0}

    def add(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: (N, C, H, W) images in [-1, 1] of the same shape."""
        if prediction.shape != target.shape:
            raise ValueError(
                f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ"
            )
        pred = (prediction.detach().float().clamp(-1, 1) + 1) / 2  # (N, C, H, W) in [0, 1]
        true = (target.detach().float().clamp(-1, 1) + 1) / 2
        n = pred.shape[0]
        l1 = (pred - true).abs().flatten(1).mean(1)  # (N,)
        psnr = peak_signal_noise_ratio(
            pred, true, data_range=1.0, reduction="none", dim=(1, 2, 3)
        )  # (N,)
        ssim = structural_similarity_index_measure(pred, true, data_range=1.0, reduction="none")
        self.sums["l1"] += l1.sum().item()
        self.sums["psnr"] += psnr.clamp(max=100.0).sum().item()  # identical images: cap at 100 dB
        self.sums["ssim"] += ssim.sum().item()
        self.count += n

    def compute(self) -> dict[str, float]:
        """{"l1", "psnr" (dB), "ssim"}: means over every image added."""
        if self.count == 0:
            raise ValueError("no image pairs were added")
        return {key: value / self.count for key, value in self.sums.items()}


def paired_metrics(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """L1, PSNR and SSIM over an iterable of (prediction, target) batches in [-1, 1]."""
    metrics = PairedMetrics()
    for prediction, target in pairs:
        metrics.add(prediction, target)
    return metrics.compute()
