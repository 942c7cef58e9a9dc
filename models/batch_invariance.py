"""Row alignment that makes a network's output for one image independent of its batch-mates.

Serving batches jobs together, and a job must get the same bytes whatever it shares a forward
pass with; a latent given back (`POST /v1/samples` with `latents`) must redraw its image bit for
bit. The CPU kernels behind linear layers and convolutions pick their blocking by the number of
rows, so a row's result can depend on how many rows the call has. Measured with this project's
torch 2.13 CPU build on the demo U-Net GAN and Progressive GAN generators (2026-12-04): with 2
threads, calls of 1-3, 5-7 and 9-11 rows differ in the last bits from the same rows in larger
calls, multiples of four and 12+ agree; with 1 thread (what `ganserve up` gives each of two
workers on a 2-core machine) every call below 16 rows differs, in the convolutions as well as
the linear layers, and 16+ agree. Padding every batch with copies of its first row to at least
`MIN_ROWS` rows and to a multiple of `ROW_ALIGN`, and dropping them afterwards, makes each row's
result the same at any batch size and either thread count; a 1-image pass costs what a 16-image
pass does. Used for the sampling generators and the U-Net GAN and Progressive GAN
discriminators; pix2pix networks run unpadded (`models.pix2pix.translation` normalises each
image alone).
`tests/models/test_batch_invariance.py` checks the property on the machine that runs the tests,
at 1 and 2 threads.
"""

from __future__ import annotations

import torch

ROW_ALIGN = 4
MIN_ROWS = 16


def padded_rows(rows: int) -> int:
    """The rows a call of `rows` rows is padded to: at least MIN_ROWS, a multiple of ROW_ALIGN."""
    return max(MIN_ROWS, rows + (-rows % ROW_ALIGN))


def pad_rows(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each (B, ...) tensor padded with copies of its first row to `padded_rows(B)` rows."""
    rows = tensors[0].shape[0]
    extra = padded_rows(rows) - rows
    if not extra:
        return tensors
    return tuple(torch.cat([t, t[:1].expand(extra, *t.shape[1:])]) for t in tensors)
