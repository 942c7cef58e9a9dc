"""EMA of generator weights."""

import torch
from torch import nn

from training.ema import make_ema, update_ema


def test_ema_is_a_frozen_eval_copy_that_averages():
    g = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    ema = make_ema(g)
    assert not ema.training and not any(p.requires_grad for p in ema.parameters())
    before = ema[0].weight.clone()
    with torch.no_grad():
        g[0].weight.add_(1.0)
        g[1].running_mean.fill_(5.0)
    update_ema(ema, g, decay=0.9)
    assert torch.allclose(ema[0].weight, before + 0.1)
    assert torch.equal(ema[1].running_mean, g[1].running_mean)
    update_ema(ema, g, decay=0.0)
    assert torch.equal(ema[0].weight, g[0].weight)
