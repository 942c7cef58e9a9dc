"""pix2pix metrics on known pairs."""

import math

import pytest
import torch

from training.metrics.paired import PairedMetrics, paired_metrics


def test_identical_pairs():
    a = torch.rand(3, 3, 16, 16) * 2 - 1
    result = paired_metrics([(a, a)])
    assert result["l1"] == 0.0 and result["ssim"] == pytest.approx(1.0)
    assert result["psnr"] == 100.0  # capped: identical images have infinite PSNR


def test_known_offset():
    target = torch.zeros(2, 1, 16, 16)  # grey 0.5 in [0, 1]
    prediction = torch.full((2, 1, 16, 16), 0.2)  # 0.6 in [0, 1]: error 0.1 everywhere
    result = paired_metrics([(prediction, target)])
    assert result["l1"] == pytest.approx(0.1, abs=1e-6)
    assert result["psnr"] == pytest.approx(10 * math.log10(1 / 0.01), rel=1e-4)  # 20 dB


def test_means_over_batches_weight_images_equally():
    metrics = PairedMetrics()
    metrics.add(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16))
    metrics.add(torch.full((3, 1, 16, 16), 0.2), torch.zeros(3, 1, 16, 16))
    assert metrics.compute()["l1"] == pytest.approx(0.075, abs=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ"):
        PairedMetrics().add(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="no image pairs"):
        PairedMetrics().compute()
