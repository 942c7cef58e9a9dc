"""The toy family's hooks (`models.family`): realness maps, scores, features, ONNX."""

from __future__ import annotations

import torch
from torch import nn

from models.family import FamilyHooks, OnnxGraph, Scorer
from models.onnx_graphs import sampler_graph
from models.realness import Realness, check_image, device_of
from tests.toy_family.models import networks  # noqa: F401  (registers the networks)


class ToyHooks(FamilyHooks):
    """Every capability: D's pixel map, its global logit, its features; G as a sampler."""

    def image_shape(self, network: nn.Module) -> tuple[int, int]:
        return network.config.channels, network.config.image_size

    def realness(self, discriminator, images, conditions, class_labels, *, least_squares):
        cfg = discriminator.config
        check_image("image", images, cfg.channels, cfg.image_size)
        for label in class_labels:
            self.check_class_label(discriminator, label)
        with torch.no_grad():
            logits, pixels = discriminator(images.to(device_of(discriminator)))
        maps = torch.sigmoid(pixels.float())[:, 0].cpu()  # (B, S, S)
        scores = torch.sigmoid(logits.float()).tolist()
        return [Realness(maps[i], float(scores[i])) for i in range(images.shape[0])]

    def scorer(self, discriminator, *, pixel_weight, group_mates) -> Scorer:
        if group_mates is not None:
            raise ValueError("this discriminator judges each image alone: it takes no group_mates")

        def score(images: torch.Tensor, _labels: torch.Tensor | None) -> torch.Tensor:
            logits, pixels = discriminator(images.to(device_of(discriminator)))
            return (logits + pixel_weight * pixels.mean(dim=(1, 2, 3))).float().cpu()  # (B,)

        return score

    def features(self, discriminator: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
        return discriminator.encode(images)

    def onnx_graph(self, generator: nn.Module) -> OnnxGraph:
        return sampler_graph(generator)


HOOKS = ToyHooks()
