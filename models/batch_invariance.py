"""Row alignment that makes a network's output for one image independent of its batch-mates.

Serving batches jobs together, and a job must get the same bytes whatever it shares a forward
pass with. Convolutions on the CPU compute each image alone, but the CPU GEMM kernels behind
linear layers (and small convolutions) process rows in blocks of four: a row's result depends
on how many rows the call has only when that count is not a multiple of four (measured with
this project's torch 2.13 CPU build: rows of 1-3, 5-7, 9-11 differ in the last bits from rows of
the same inputs in larger calls; multiples of four and 12+ agree). Padding every batch to a
multiple of `ROW_ALIGN` rows with copies of its first row, and dropping them afterwards, makes
each row's result the same at any batch size. Used for the sampling generators (BigGAN's linear
projection, Progressive GAN's equalised dense layer) and the U-Net GAN discriminator; pix2pix
networks are convolutional throughout and run unpadded. `tests/models/test_batch_invariance.py`
checks the property on the machine that runs the tests.
"""

from __future__ import annotations

import torch

ROW_ALIGN = 4


def pad_rows(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each (B, ...) tensor padded to a multiple of ROW_ALIGN rows with copies of its first row."""
    rows = tensors[0].shape[0]
    extra = -rows % ROW_ALIGN
    if not extra:
        return tensors
    return tuple(torch.cat([t, t[:1].expand(extra, *t.shape[1:])]) for t in tensors)
