"""U-Net GAN's hooks (`models.family`): what its U-Net discriminator and BigGAN generator give.

Schonfeld, Schiele, Khoreva, "A U-Net Based Discriminator for Generative Adversarial Networks",
CVPR 2020. D^U's encoder gives a global real/fake logit of the whole image (with a class
projection for class-conditional models); its decoder gives a per-pixel logit map, trained by
the per-pixel GAN loss and CutMix consistency to mark exactly the fake pixels of a mixed image.
So it draws realness maps (sigmoid of the pixel logits), scores images for discriminator-guided
sampling (the global logit plus a weight times the mean pixel logit), and lends its encoder's
feature maps to projection's feature loss. The generator (BigGAN's) has a shared class
embedding (latent paths blend its rows) and exports as a sampler graph. Every batch through D
is padded as `models.batch_invariance` says, so an image's result does not depend on its
batch-mates.
"""

from __future__ import annotations

import torch
from torch import nn

from models.batch_invariance import pad_rows
from models.family import FamilyHooks, OnnxGraph, Scorer
from models.onnx_graphs import sampler_graph
from models.realness import Realness, check_image, device_of
from models.unetgan.networks import UNetGANDiscriminator


def _choose_classes(
    d: UNetGANDiscriminator, bottleneck: torch.Tensor, class_labels: list[int | None]
) -> list[int | None]:
    """The class to judge each image as: the given one, else the one under which D finds it most
    real (from the encoder's bottleneck (B, C, 4, 4))."""
    if not d.config.num_classes:
        return [None] * len(class_labels)
    likeliest = d.class_logits(bottleneck).argmax(dim=1).tolist()  # (B, K) -> (B,)
    return [
        label if label is not None else int(best)
        for label, best in zip(class_labels, likeliest, strict=True)
    ]


def _realness(
    d: UNetGANDiscriminator, images: torch.Tensor, class_labels: list[int | None]
) -> list[Realness]:
    rows = images.shape[0]
    (padded,) = pad_rows(images.to(device_of(d)))  # (B', C, S, S), B' a multiple of ROW_ALIGN
    features = d.encode(padded)  # per resolution, down to (B', C, 4, 4)
    labels = _choose_classes(
        d, features[-1], class_labels + [class_labels[0]] * (len(padded) - rows)
    )
    y = None if labels[0] is None else torch.tensor(labels, device=features[-1].device)  # (B',)
    global_logits = d.global_logits(features[-1], y)  # (B',)
    pixel_logits = d.pixel_logits(d.decode(features), y)  # (B', 1, S, S)
    maps = torch.sigmoid(pixel_logits.float())[:rows, 0].cpu()  # (B, S, S)
    scores = torch.sigmoid(global_logits.float())[:rows].tolist()
    return [Realness(maps[i], float(scores[i]), labels[i]) for i in range(rows)]


def _scores(
    d: UNetGANDiscriminator, images: torch.Tensor, labels: torch.Tensor | None, weight: float
) -> torch.Tensor:
    """Global logit + weight * mean pixel logit, (B,) float32 on the CPU, for B images."""
    rows = images.shape[0]
    device = device_of(d)
    inputs = [images.to(device)] + ([] if labels is None else [labels.to(device)])
    padded = pad_rows(*inputs)  # (B', C, S, S) and (B',), B' a multiple of ROW_ALIGN
    x, y = padded[0], (padded[1] if labels is not None else None)
    features = d.encode(x)  # per resolution, down to (B', C, 4, 4)
    scores = d.global_logits(features[-1], y).float()  # (B',)
    if weight:
        pixels = d.pixel_logits(d.decode(features), y).float()  # (B', 1, S, S)
        scores = scores + weight * pixels.mean(dim=(1, 2, 3))  # (B',)
    return scores[:rows].cpu()


class UNetGANHooks(FamilyHooks):
    """Realness maps, scores and features of D^U; the class embedding and ONNX graph of G."""

    def image_shape(self, network: nn.Module) -> tuple[int, int]:
        return network.config.channels, network.config.image_size

    def check_class_label(self, discriminator: nn.Module, class_label: int | None) -> None:
        num_classes = discriminator.config.num_classes
        if not num_classes and class_label is not None:
            raise ValueError("this discriminator is unconditional: it takes no class label")
        if num_classes and class_label is not None and not 0 <= class_label < num_classes:
            raise ValueError(f"class_label must lie in 0..{num_classes - 1}, not {class_label}")

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
        check_image("image", images, cfg.channels, cfg.image_size)
        if conditions is not None:
            raise ValueError("a U-Net GAN discriminator takes no condition image")
        for label in class_labels:
            self.check_class_label(discriminator, label)
        was_training = discriminator.training
        discriminator.eval()  # spectral norm: no power iteration, its vectors stay as trained
        try:
            return _realness(discriminator, images, class_labels)
        finally:
            discriminator.train(was_training)

    def scorer(
        self,
        discriminator: nn.Module,
        *,
        pixel_weight: float,
        group_mates: torch.Tensor | None,
    ) -> Scorer:
        if group_mates is not None:
            raise ValueError("this discriminator judges each image alone: it takes no group_mates")
        weight = float(pixel_weight)
        return lambda images, labels: _scores(discriminator, images, labels, weight)

    def features(self, discriminator: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
        return discriminator.encode(images)  # per resolution, fine to coarse

    def class_embedding_table(self, generator: nn.Module) -> torch.Tensor:
        if generator.shared is None:
            return super().class_embedding_table(generator)
        return generator.shared.weight  # (K, E)

    def onnx_graph(self, generator: nn.Module) -> OnnxGraph:
        return sampler_graph(generator)


HOOKS = UNetGANHooks()
