"""Projection (GAN inversion): the latent z from which a sampling generator redraws an image.

The idea of StyleGAN2's projector (Karras, Laine, Aittala, Hellsten, Lehtinen, Aila, "Analyzing
and Improving the Image Quality of StyleGAN", CVPR 2020, section 5, and its code,
NVlabs/stylegan2-ada-pytorch `projector.py`) and of Image2StyleGAN (Abdal, Qin, Wonka, ICCV 2019):
keep the trained generator G fixed and optimise its input by gradient descent until G's image
matches the target. Here the input is z itself (U-Net GAN's BigGAN G and Progressive GAN's G
have no mapping network and no per-layer noise to optimise).

- Start: z0 ~ N(0, 1) from a CPU generator seeded by `seed`, so a projection repeats.
- Optimiser: Adam (betas 0.9, 0.999) on z with the projector's schedule: peak rate 0.1, a
  linear ramp-up over the first 5 % of the steps, a cosine ramp-down over the last 25 %. The
  projector's noise on the latent and its noise regulariser are left out (no noise inputs).
- Loss, per image: MSE of G(z) against the target on [-1, 1] images, plus 1 - MS-SSIM (Wang,
  Simoncelli, Bovik, "Multi-scale structural similarity for image quality assessment",
  Asilomar 2003; torchmetrics, on [0, 1] images, Gaussian window sigma 1.5 and the standard
  betas, the first n renormalised to sum 1, with n scales and a window fitted to small images),
  plus `PRIOR_WEIGHT` * (mean(z^2) - 1)^2, which keeps z on the shell where N(0, 1) latents lie.
  Given a discriminator D, plus `FEATURE_WEIGHT` times an LPIPS-style feature distance: the
  squared distance of D's channel vectors, each scaled to unit length, summed over channels,
  averaged over positions and over D's feature maps (U-Net D: its encoder's outputs;
  Progressive GAN D: its down-blocks' outputs at the final stage, down to 4x4; the last, 4x4
  output block is left out, its minibatch standard deviation would tie the images of a batch
  together). Everything is measured on G's output clamped to [-1, 1], as it is shown (a no-op
  for U-Net GAN's tanh; Progressive GAN's linear output is clipped as its samples are, so a
  target drawn from G has its clipped pixels matched exactly), against the target clamped too.
- Class-conditional generators without a class: a search phase (the first `SEARCH_FRACTION` of
  the steps) optimises one latent per class in one batch, all from the same z0; G and D run in
  eval mode (batch norm on its running averages, spectral norm without power iteration), so the
  rows do not interact and each follows the path it would follow alone. The class whose row has
  the lowest loss after the search is kept, and its row alone is optimised for the remaining
  steps (a fresh Adam, the same global schedule).

G's and D's parameters get no gradients (`backward(inputs=[z])`); their `requires_grad` is never
changed, and every submodule's train/eval mode is restored on exit. Projection runs in float32
on G's device (D's too); results come back on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    structural_similarity_index_measure,
)

from core.params import MAX_PROJECTION_STEPS as MAX_STEPS
from models.family import families_with, hooks_of, supports
from models.stopping import Stopped

LEARNING_RATE = 0.1
RAMP_UP = 0.05  # fraction of the steps over which the rate ramps up linearly
RAMP_DOWN = 0.25  # fraction of the steps over which it ramps down (cosine) to zero
SEARCH_FRACTION = 0.2  # share of the steps spent on the class search
FEATURE_WEIGHT = 0.5
PRIOR_WEIGHT = 0.01
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, scales fine to coarse
SSIM_SIGMA = 1.5
MAX_WINDOW = 11  # the standard Gaussian window, 11x11
MIN_MS_SSIM_WINDOW = 7  # fewer scales rather than a window below this one


class ProjectionStopped(Stopped):
    """should_stop() returned True: the caller cancelled."""


@dataclass(frozen=True)
class ProjectionStep:
    """Progress after `step` of `total` steps: the current latent's loss and reconstruction.

    `image` (C, H, W) float32 on the CPU in [-1, 1]; `psnr` in dB against the target; during a
    class search, the best class so far and its row.
    """

    step: int
    total: int
    loss: float
    psnr: float
    image: torch.Tensor
    class_label: int | None


@dataclass(frozen=True)
class Projection:
    """The latent found, z (1, Z) float32 on the CPU, and the class used (None: unconditional).

    `losses[k]` is the loss of the latent that step k + 1 started from (the class search's best
    row during the search), so `losses[0] == start_loss`; `final_loss` is the loss of `z`.
    """

    z: torch.Tensor
    class_label: int | None
    losses: list[float]
    start_loss: float
    final_loss: float


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two images in [-1, 1] (data range 2); inf if equal."""
    _check_pair(a, b)
    mse = float((a.detach().double() - b.detach().double()).square().mean())
    return math.inf if mse == 0 else 10 * math.log10(4 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Structural similarity of two images in [-1, 1], (1, C, H, W) or (C, H, W); 1 if equal.

    Gaussian window (sigma 1.5) of 11x11, or the largest odd size that fits a smaller image.
    """
    _check_pair(a, b)
    a4, b4 = (x.detach().float().reshape(1, *x.shape[-3:]) for x in (a, b))  # (1, C, H, W)
    side = min(a4.shape[-2:])
    window = min(MAX_WINDOW, side - 1 + side % 2)
    value = structural_similarity_index_measure(
        _unit(a4), _unit(b4), sigma=SSIM_SIGMA, kernel_size=window, data_range=1.0
    )
    return float(value)


def project(
    generator: nn.Module,
    target: torch.Tensor,
    *,
    steps: int,
    seed: int,
    class_label: int | None = None,
    discriminator: nn.Module | None = None,
    on_step: Callable[[ProjectionStep], None] | None = None,
    report_every: int = 10,
    should_stop: Callable[[], bool] | None = None,
) -> Projection:
    """Project `target` (1, C, S, S) in [-1, 1] into `generator`'s latent space (module doc).

    `class_label`: the class of a conditional generator (None: search every class). `on_step`
    gets a `ProjectionStep` every `report_every` steps and at the last one; `should_stop` is
    asked before every step, True raises `ProjectionStopped`.
    """
    shape = _image_shape(generator)
    _check_target(target, shape)
    _check_steps(steps, report_every)
    num_classes = generator.config.num_classes
    _check_class(num_classes, class_label)
    if discriminator is not None:
        _check_discriminator(discriminator, shape)
    device = next(generator.parameters()).device
    start = torch.Generator().manual_seed(seed)
    z0 = torch.randn((1, generator.config.latent_dim), generator=start).to(device)  # (1, Z)
    with (
        _evaluating(generator, discriminator),
        torch.autocast(device.type, enabled=False),
        torch.enable_grad(),
    ):
        objective = _Objective(
            generator, target.to(device, torch.float32).clamp(-1, 1), discriminator
        )
        run = _Run(objective, steps, on_step, report_every, should_stop)
        if num_classes and class_label is None:
            z0, class_label = _search_class(run, z0, num_classes)
        y = None if class_label is None else torch.tensor([class_label], device=device)  # (1,)
        z = run.optimise(z0, y, until=steps)  # (1, Z)
        with torch.no_grad():
            final_loss = float(objective(z, y)[0][0])
    return Projection(z.float().cpu(), class_label, run.losses, run.losses[0], final_loss)


class _Objective:
    """The loss of every row of a latent batch against one target, and G's images."""

    def __init__(
        self, generator: nn.Module, target: torch.Tensor, discriminator: nn.Module | None
    ) -> None:
        self.generator = generator
        self.target = target  # (1, C, S, S)
        self.window, self.betas = _ms_ssim_window(target.shape[-1])
        self.features = None if discriminator is None else _feature_maps(discriminator)
        with torch.no_grad():
            self.target_features = (
                [] if self.features is None else [_unit_channels(f) for f in self.features(target)]
            )

    def __call__(
        self, z: torch.Tensor, y: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents z (B, Z), labels y (B,) or None -> losses (B,), images (B, C, S, S)."""
        images = self.generator(z) if y is None else self.generator(z, y)  # (B, C, S, S)
        images = images.clamp(-1, 1)  # (B, C, S, S)
        target = self.target.expand_as(images)  # (B, C, S, S)
        loss = (images - target).square().mean(dim=(1, 2, 3))  # (B,)
        loss = loss + 1 - self._ms_ssim(images, target)  # (B,)
        loss = loss + PRIOR_WEIGHT * (z.square().mean(dim=1) - 1).square()  # (B,)
        if self.features is not None:
            loss = loss + FEATURE_WEIGHT * self._feature_distance(images)  # (B,)
        return loss, images

    def _ms_ssim(self, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """MS-SSIM (B,) of images and target (B, C, S, S) in [-1, 1], mapped to [0, 1]."""
        return multiscale_structural_similarity_index_measure(
            _unit(images),
            _unit(target),
            sigma=SSIM_SIGMA,
            kernel_size=self.window,
            betas=self.betas,
            data_range=1.0,
            reduction="none",
        )

    def _feature_distance(self, images: torch.Tensor) -> torch.Tensor:
        """Mean over D's maps of the per-position squared distance of unit channel vectors, (B,)."""
        distances = [
            (_unit_channels(f) - t).square().sum(dim=1).mean(dim=(1, 2))  # (B,)
            for f, t in zip(self.features(images), self.target_features, strict=True)
        ]
        return torch.stack(distances).mean(dim=0)  # (B,)


class _Run:
    """The steps of one projection: schedule, losses, progress reports and cancellation."""

    def __init__(
        self,
        objective: _Objective,
        total: int,
        on_step: Callable[[ProjectionStep], None] | None,
        report_every: int,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.objective = objective
        self.total = total
        self.on_step = on_step
        self.report_every = report_every
        self.should_stop = should_stop
        self.done = 0
        self.losses: list[float] = []

    def optimise(self, z0: torch.Tensor, y: torch.Tensor | None, *, until: int) -> torch.Tensor:
        """Adam on a copy of z0 (B, Z) from step `done + 1` to `until`; the latents reached."""
        z = z0.detach().clone().requires_grad_(True)  # (B, Z)
        optimiser = torch.optim.Adam([z], lr=LEARNING_RATE)
        for step in range(self.done + 1, until + 1):
            if self.should_stop is not None and self.should_stop():
                raise ProjectionStopped(f"projection stopped before step {step} of {self.total}")
            for group in optimiser.param_groups:
                group["lr"] = _learning_rate(step, self.total)
            loss, _ = self.objective(z, y)  # (B,)
            self.losses.append(float(loss.detach().min()))
            optimiser.zero_grad(set_to_none=True)
            loss.sum().backward(inputs=[z])  # rows independent: each gets its own gradient
            optimiser.step()
            self.done = step
            if self.on_step is not None and (step % self.report_every == 0 or step == self.total):
                self.on_step(self._report(z.detach(), y))
        return z.detach()

    @torch.no_grad()
    def best_row(
        self, z: torch.Tensor, y: torch.Tensor | None
    ) -> tuple[int, torch.Tensor, torch.Tensor]:
        """The row of z (B, Z) with the lowest loss, its loss () and its image (C, S, S)."""
        loss, images = self.objective(z, y)  # (B,), (B, C, S, S)
        best = int(loss.argmin())
        return best, loss[best], images[best]

    def _report(self, z: torch.Tensor, y: torch.Tensor | None) -> ProjectionStep:
        best, loss, image = self.best_row(z, y)
        image = image.float().cpu()  # (C, S, S)
        return ProjectionStep(
            step=self.done,
            total=self.total,
            loss=float(loss),
            psnr=psnr(image, self.objective.target[0].cpu()),
            image=image,
            class_label=None if y is None else int(y[best]),
        )


def _search_class(run: _Run, z0: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, int]:
    """One latent per class, all from z0 (1, Z), for the search steps; the best row (1, Z) and
    its class."""
    labels = torch.arange(num_classes, device=z0.device)  # (K,)
    search_steps = max(1, round(run.total * SEARCH_FRACTION))
    z = run.optimise(z0.expand(num_classes, -1), labels, until=search_steps)  # (K, Z)
    best, _, _ = run.best_row(z, labels)
    return z[best : best + 1], best


def _learning_rate(step: int, total: int) -> float:
    """The projector's rate at 1-based `step`: linear ramp-up, flat, cosine ramp-down to 0."""
    t = (step - 0.5) / total  # the step's midpoint, in (0, 1)
    down = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1 - t) / RAMP_DOWN))
    return LEARNING_RATE * down * min(1.0, t / RAMP_UP)


def _ms_ssim_window(size: int) -> tuple[int, tuple[float, ...]]:
    """The window and betas of MS-SSIM on SxS images: the most scales (up to 5) whose coarsest
    image still holds a window of 7 or more (up to 11), else one scale and the largest window."""
    scales = next(
        (
            n
            for n in range(len(MS_SSIM_BETAS), 1, -1)
            if _largest_window(size, n) >= MIN_MS_SSIM_WINDOW
        ),
        1,
    )
    betas = MS_SSIM_BETAS[:scales]
    return _largest_window(size, scales), tuple(beta / sum(betas) for beta in betas)


def _largest_window(size: int, scales: int) -> int:
    """The largest odd window (up to 11) that fits the coarsest of `scales` scales of SxS images
    and passes torchmetrics' own checks (side >= 2**scales, side // (scales - 1)**2 > window - 1);
    1 if none does."""
    if size < 2**scales:
        return 1
    coarsest = size // 2 ** (scales - 1)
    torchmetrics_limit = size // max(1, scales - 1) ** 2
    return next(
        (w for w in range(MAX_WINDOW, 1, -2) if w <= coarsest and w - 1 < torchmetrics_limit), 1
    )


def _feature_maps(discriminator: nn.Module) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    """D's intermediate feature maps of images (B, C, S, S), fine to coarse (its family's)."""
    hooks = hooks_of(discriminator)
    return lambda images: hooks.features(discriminator, images)


def _unit_channels(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) with every position's channel vector scaled to unit length."""
    return features / (features.norm(dim=1, keepdim=True) + 1e-8)


def _unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return (images + 1) / 2


@contextmanager
def _evaluating(*networks: nn.Module | None) -> Iterator[None]:
    """Every given network in eval mode; each submodule's own mode restored on exit."""
    modes = [(m, m.training) for net in networks if net is not None for m in net.modules()]
    for module, _ in modes:
        module.training = False
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _image_shape(generator: nn.Module) -> tuple[int, int]:
    """(channels, side) of the generator's images (a growing one: at its current stage)."""
    if not supports(generator, "image_shape", "generator"):
        raise ValueError(
            f"projection needs a sampling generator ({families_with('image_shape')}), "
            f"not {type(generator).__name__}"
        )
    return hooks_of(generator).image_shape(generator)


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.ndim not in (3, 4) or (a.ndim == 4 and a.shape[0] != 1):
        raise ValueError(
            f"expected two images of one shape, (1, C, H, W) or (C, H, W), "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def _check_target(target: torch.Tensor, shape: tuple[int, int]) -> None:
    channels, size = shape
    expected = (1, channels, size, size)
    if not isinstance(target, torch.Tensor) or tuple(target.shape) != expected:
        got = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
        raise ValueError(
            f"the target must be one image of the generator's size and channels, "
            f"{expected}, got {got}"
        )
    if not target.is_floating_point():
        raise ValueError(f"the target must be a float tensor in [-1, 1], not {target.dtype}")
    if not bool(torch.isfinite(target).all()):
        raise ValueError("the target holds non-finite values (NaN or infinity)")


def _check_steps(steps: int, report_every: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer from 1 to {MAX_STEPS}, not {steps!r}")
    if isinstance(report_every, bool) or not isinstance(report_every, int) or report_every < 1:
        raise ValueError(f"report_every must be a positive integer, not {report_every!r}")


def _check_class(num_classes: int, class_label: int | None) -> None:
    if class_label is None:
        return
    if not num_classes:
        raise ValueError("this generator is unconditional: it takes no class label")
    if isinstance(class_label, bool) or not isinstance(class_label, int):
        raise ValueError(f"class_label must be an integer, not {class_label!r}")
    if not 0 <= class_label < num_classes:
        raise ValueError(f"class_label must lie in 0..{num_classes - 1}, not {class_label}")


def _check_discriminator(discriminator: nn.Module, shape: tuple[int, int]) -> None:
    if not supports(discriminator, "features", "discriminator"):
        raise ValueError(
            f"the feature loss needs a {families_with('features')} discriminator, "
            f"not {type(discriminator).__name__}"
        )
    channels, size = shape
    cfg = discriminator.config
    if (cfg.channels, cfg.image_size) != (channels, size):
        raise ValueError(
            f"the discriminator judges {cfg.channels}-channel {cfg.image_size}x{cfg.image_size} "
            f"images, the generator draws {channels}-channel {size}x{size} ones"
        )
