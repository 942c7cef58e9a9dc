"""Drive a family through real training iterations the way `training.loop` does."""

from collections.abc import Callable, Iterator
from typing import Any

import torch

from training.family import Batch, GANFamily, Stats


def iterate(
    family: GANFamily, make_batch: Callable[[int], Batch], steps: int
) -> Iterator[tuple[int, Any, Stats]]:
    """Yield (step, context, stats) after each D and G update; losses are checked finite."""
    opt_g, opt_d = family.optimizers()
    for step in range(steps):
        if family.begin_step(step):
            opt_g, opt_d = family.optimizers()
        ctx = family.prepare(make_batch(step))
        d_loss, d_stats = family.d_loss(ctx)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss, g_stats = family.g_loss(ctx)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
        yield step, ctx, {**d_stats, **g_stats}
