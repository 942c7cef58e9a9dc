"""How a batch's tensors cross between the host and the infer worker's device.

On CUDA, every pool process has its own copy stream. A batch's input is assembled (`torch.cat`)
straight into page-locked (pinned) host memory and copied to the device with `non_blocking=True`
on that stream; other CPU tensors of the pass (pix2pix's dropout masks) are pinned and copied the
same way. The compute stream then waits for the copies (`wait_stream`), and each copied tensor
records its use there (`record_stream`), so the caching allocator does not hand its memory to
another tensor while the forward pass may still read it. The results come back the other way: the
copy stream waits for the forward pass, copies them without blocking into pinned host memory,
and the host waits once per batch (one event), not once per image. Pinned blocks come from
torch's caching host allocator, which keeps a block from reuse until the copy that reads it has
run, so a steady flow of batches of one shape pins no new memory.

On the CPU every function hands its tensors back as they are (beside the `torch.cat` a batch
always needed): no copy is added and the results are the same bits as before.
"""

from __future__ import annotations

import torch


class DeviceIO:
    """Host <-> device copies of one process on one device (a copy stream of its own on CUDA)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def batch_to_device(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """CPU tensors (b_i, ...) of one shape but the first concatenated on the device:
        (sum b_i, ...), assembled in pinned memory on CUDA."""
        if self.stream is None:
            return torch.cat(parts)
        rows = sum(part.shape[0] for part in parts)
        host = torch.empty((rows, *parts[0].shape[1:]), dtype=parts[0].dtype, pin_memory=True)
        torch.cat(parts, out=host)
        (batch,) = self.to_device(host)
        return batch

    def to_device(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        """CPU tensors on the device, ready for the current stream (on the CPU: themselves)."""
        if self.stream is None:
            return list(tensors)
        pinned = [t if t.is_pinned() else t.pin_memory() for t in tensors]
        with torch.cuda.stream(self.stream):
            copies = [t.to(self.device, non_blocking=True) for t in pinned]
        compute = torch.cuda.current_stream(self.device)
        compute.wait_stream(self.stream)
        for copy in copies:
            copy.record_stream(compute)  # allocated on the copy stream, read on the compute one
        return copies

    def to_host(self, y: torch.Tensor) -> torch.Tensor:
        """A device tensor's values in (pinned) host memory once they are there: the host waits
        here, once, for the pass and the copy (on the CPU: y itself)."""
        if self.stream is None:
            return y
        y = y.contiguous()  # on the compute stream: the copy below is one plain memcpy
        host = torch.empty(y.shape, dtype=y.dtype, pin_memory=True)
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.stream):
            host.copy_(y, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.stream)
        done.synchronize()  # before y can be freed: the copy has read it
        return host
