"""pix2pix's hooks (`models.family`): realness maps of its PatchGAN and its ONNX graph.

Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial Networks",
CVPR 2017. The PatchGAN judges a pair (input A, output B) with a grid of logits, one per
receptive-field patch (70x70 by default); it runs as pix2pix runs at test time, each image
normalised by its own statistics (`models.pix2pix.translation`). The ONNX graph is the
generator's test-time forward with dropout off (see `models.onnx_export`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.family import FamilyHooks, OnnxGraph
from models.onnx_graphs import BATCH, EXAMPLE_BATCH
from models.pix2pix import translation
from models.pix2pix.networks import PatchDiscriminator, Pix2PixGenerator
from models.realness import ConditionRequired, Realness, check_image, device_of


class _NoDropoutRun(translation.TestTimeRun):
    """A test-time run that normalises each image by its own statistics and drops nothing."""

    def __init__(self) -> None:
        super().__init__((0, 0), masks=[])

    def dropout(self, x: torch.Tensor) -> torch.Tensor:
        return x  # (B, C, h, w): dropout off


class _Pix2PixTestTime(nn.Module):
    """pix2pix's test-time forward with dropout off: image (N, Ci, H, W) -> (N, Co, H, W)."""

    def __init__(self, generator: Pix2PixGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        y = translation.forward(self.generator, image, _NoDropoutRun())  # (N, Co, H, W)
        return y.clamp(-1, 1)


def _patch_realness(
    d: PatchDiscriminator, images: torch.Tensor, conditions: torch.Tensor, least_squares: bool
) -> list[Realness]:
    a, b = conditions.to(device_of(d)), images.to(device_of(d))  # (B, Ca, H, W), (B, Cb, H, W)
    run = translation.TestTimeRun((b.shape[-2], b.shape[-1]), masks=[])  # no dropout in a D
    logits = translation.per_sample_sequential(d.model, torch.cat([a, b], dim=1), run).float()
    # logits: (B, 1, h, w), one per patch
    upsampled = F.interpolate(logits, size=b.shape[-2:], mode="bilinear", align_corners=False)
    scores = upsampled.clamp(0, 1) if least_squares else torch.sigmoid(upsampled)
    return [Realness(score[0].cpu(), None) for score in scores]  # (H, W) each


class Pix2PixHooks(FamilyHooks):
    """The PatchGAN's realness maps and the generator's test-time ONNX graph."""

    def check_class_label(self, discriminator: nn.Module, class_label: int | None) -> None:
        if class_label is not None:
            raise ValueError("a pix2pix discriminator takes no class label")

    def realness(
        self,
        discriminator: nn.Module,
        images: torch.Tensor,
        conditions: torch.Tensor | None,
        class_labels: list[int | None],
        *,
        least_squares: bool,
    ) -> list[Realness]:
        cfg = discriminator.config
        check_image("image", images, cfg.out_channels, None)
        if conditions is None:
            raise ConditionRequired(
                "a pix2pix discriminator judges a pair: pass the input (A) image that the image "
                "translates as the condition"
            )
        check_image("condition", conditions, cfg.in_channels, None)
        if conditions.shape[0] != images.shape[0] or conditions.shape[-2:] != images.shape[-2:]:
            raise ValueError(
                f"conditions and images must have one size, got {tuple(conditions.shape)} and "
                f"{tuple(images.shape)}"
            )
        for label in class_labels:
            self.check_class_label(discriminator, label)
        return _patch_realness(discriminator, images, conditions, least_squares)

    def onnx_graph(self, generator: nn.Module) -> OnnxGraph:
        """`image` (N, C_in, H, W) -> `translated`, H and W multiples of the total stride."""
        stride = translation.total_stride(generator)
        cfg = generator.config
        # 2 strides per side: a size of 1 stride would be specialised (see EXAMPLE_BATCH).
        image = torch.zeros(EXAMPLE_BATCH, cfg.in_channels, 2 * stride, 2 * stride)  # (2, Ci, H, W)
        batch = torch.export.Dim(BATCH, min=1)
        h, w = torch.export.Dim("h", min=1), torch.export.Dim("w", min=1)
        shapes = {"image": {0: batch, 2: stride * h, 3: stride * w}}
        extra = {"dropout": "off", "stride": stride}
        return OnnxGraph(
            _Pix2PixTestTime(generator), (image,), shapes, ["image"], ["translated"], extra
        )


HOOKS = Pix2PixHooks()
