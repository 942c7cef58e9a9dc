"""A model family's hooks: what its networks can do beyond drawing images, behind one protocol.

The capability modules of `models` work on any family's networks: realness maps
(`models.realness`), discriminator-guided sampling (`models.discriminator_filter`), projection
into the latent space (`models.projection`), class embeddings for latent paths
(`models.latent_paths`) and ONNX export (`models.onnx_export`). They hold the capability's own
computation (the paper it implements is cited there) and ask the network's family for the parts
that depend on its architecture through `hooks_of(network)`; none of them imports a family
package. A family lives in one package `models/<family>/`: its networks (registered with
`models.registry.register`), their test-time computation where the paper has one, the mapping
of a reference checkpoint where there is one, and a `hooks` module whose `HOOKS` object
subclasses `FamilyHooks` and overrides the hooks of the capabilities the family has. A hook
it leaves alone raises `Unsupported`, naming the families that have the capability.

The families are registered in one place, the family table (`core.families.FAMILY_TABLE`, plus
the rows `GANSERVE_FAMILY_MODULES` names): each row names its package (`models_package`);
`load_families` imports every package's `hooks` module once, which also registers the
family's networks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from core.families import FAMILIES, titles
from models.registry import Role, architecture_of

if TYPE_CHECKING:
    from models.realness import Realness

Scorer = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
"""Scores (B,) float32 on the CPU of images (B, C, S, S) with their labels (B,) or None."""


class Unsupported(ValueError):
    """The network's family has no such capability."""


@dataclass(frozen=True)
class OnnxGraph:
    """What `models.onnx_export` traces for one generator: the module to export (the
    generator wrapped as it is called), example inputs, `torch.export` dynamic shapes, the
    graph's input and output names, and what the export's description adds."""

    wrapper: nn.Module
    args: tuple[torch.Tensor, ...]
    dynamic_shapes: dict[str, Any]
    input_names: list[str]
    output_names: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


class FamilyHooks:
    """One family's hooks; every one not overridden raises `Unsupported`.

    Image tensors are in [-1, 1]; a discriminator is passed as loaded (its mode is the caller's
    business unless a hook says otherwise).
    """

    def image_shape(self, network: nn.Module) -> tuple[int, int]:
        """(channels, side) of the images a sampling generator draws or its discriminator
        judges (a growing network: at its current stage)."""
        raise Unsupported(f"{_name(network)} draws no images of one fixed size")

    def check_class_label(self, discriminator: nn.Module, class_label: int | None) -> None:
        """Raise ValueError unless `class_label` fits the discriminator (None always does)."""
        if class_label is not None:
            raise ValueError("this discriminator is unconditional: it takes no class label")

    def realness(
        self,
        discriminator: nn.Module,
        images: torch.Tensor,  # (B, C, H, W)
        conditions: torch.Tensor | None,  # (B, C_A, H, W) of a pair-judging discriminator
        class_labels: list[int | None],
        *,
        least_squares: bool,
    ) -> list[Realness]:
        """One realness map per image (`models.realness.realness_batch` checked the labels'
        count); raises `models.realness.NoRealnessMap` when the discriminator gives none."""
        from models.realness import NoRealnessMap

        raise NoRealnessMap(
            f"{_name(discriminator)} scores whole images with one number and has no per-pixel "
            "or per-patch output, so it gives no realness map; "
            f"{families_with('realness')} discriminators do"
        )

    def scorer(
        self,
        discriminator: nn.Module,
        *,
        pixel_weight: float,
        group_mates: torch.Tensor | None,
    ) -> Scorer:
        """The discriminator's logit of each image, for discriminator-guided sampling
        (`models.discriminator_filter`): checks `pixel_weight` (the weight of a per-pixel map's
        mean, where there is one) and `group_mates` (see `group_mates`) and returns the scoring
        function, which leaves the discriminator's state as it was."""
        raise Unsupported(
            f"realness scores need a {families_with('scorer')} discriminator, not "
            f"{type(discriminator).__name__}"
        )

    def group_mates(self, generator: nn.Module, discriminator: nn.Module) -> torch.Tensor | None:
        """The fixed images (G - 1, C, S, S) every image is judged together with, for a
        discriminator whose score of an image depends on its batch-mates; None otherwise."""
        return None

    def features(self, discriminator: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
        """The discriminator's intermediate feature maps of images (B, C, S, S), fine to coarse
        (the feature loss of `models.projection`)."""
        raise Unsupported(
            f"the feature loss needs a {families_with('features')} discriminator, "
            f"not {type(discriminator).__name__}"
        )

    def class_embedding_table(self, generator: nn.Module) -> torch.Tensor:
        """The generator's class embedding table (K, E), one row per class."""
        titles = families_with("class_embedding_table")
        raise Unsupported(
            f"class embeddings interpolate a class-conditional {titles} generator's classes"
        )

    def onnx_graph(self, generator: nn.Module) -> OnnxGraph:
        """What ONNX export traces for this generator (`models.onnx_graphs.sampler_graph` for
        a generator of latents)."""
        raise Unsupported(f"cannot export {_name(generator)}")


def _name(network: nn.Module) -> str:
    """A network's registered architecture name, else its class name."""
    try:
        return architecture_of(network).name
    except TypeError:
        return type(network).__name__


def overrides(hooks: FamilyHooks, hook: str) -> bool:
    """Whether a family's hooks implement `hook` (else it raises `Unsupported`)."""
    return getattr(type(hooks), hook) is not getattr(FamilyHooks, hook)


def families_with(hook: str) -> str:
    """The families whose hooks implement `hook`, in prose ("U-Net GAN or Progressive GAN")."""
    having = [FAMILIES[name] for name, hooks in load_families().items() if overrides(hooks, hook)]
    return titles(having) if having else "no known"


@cache
def load_families() -> dict[str, FamilyHooks]:
    """Every family's hooks by family name, in table order (imports each package's `hooks`
    module once, which registers its networks)."""
    found = {}
    for name, row in FAMILIES.items():
        module = importlib.import_module(f"{row.models_package}.hooks")
        found[name] = module.HOOKS
    return found


def hooks_named(family: str) -> FamilyHooks:
    """The hooks of the family `family`; unknown names raise ValueError listing the known."""
    families = load_families()
    if family not in families:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(families)}")
    return families[family]


def supports(network: nn.Module, hook: str, role: Role) -> bool:
    """Whether `network` is a registered `role` network whose family implements `hook`."""
    try:
        return overrides(hooks_of(network, role), hook)
    except Unsupported:
        return False


def hooks_of(network: nn.Module, role: Role | None = None) -> FamilyHooks:
    """The hooks of a registered network's family; `Unsupported` for any other module, and for
    a network of another role than `role` (when given)."""
    try:
        arch = architecture_of(network)
    except TypeError:
        raise Unsupported(
            f"{type(network).__name__} is not a registered ganserve network"
        ) from None
    if role is not None and arch.role != role:
        raise Unsupported(f"{arch.name} is a {arch.role}, not a {role}")
    return hooks_named(arch.family)
