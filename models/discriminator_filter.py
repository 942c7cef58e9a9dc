"""Discriminator-guided sampling: a trained discriminator picks which generator samples to keep.

A GAN's discriminator is trained until the end to tell the generator's images from real ones;
after training it still knows where the generator misses. Two ways of using it to filter samples
of the sampling families (U-Net GAN, Progressive GAN):

- `top_filter`, "keep the most real": draw ceil(count / keep) candidates, keep the `count` that
  the discriminator scores highest. The candidates are exactly the latents a plain sample job
  with that seed and ceil(count / keep) images draws (`models.sampling.sample_inputs`). When
  the candidates' classes are drawn at random, the ranking is within each class and every class
  keeps its share of the candidates: a class-conditional D's logit has a per-class offset, and
  one ranking across classes kept almost no 0, 4 or 6 of the digits demo (measured
  2026-12-04: SWD 1.77x the unfiltered set's; see docs/performance.md).
- `drs_filter`: Discriminator Rejection Sampling (Azadi, Olsson, Darrell, Goodfellow, Odena,
  "Discriminator Rejection Sampling", ICLR 2019, Algorithm 1). An optimal GAN discriminator's
  logit is D~(x) = log(p_data(x) / p_g(x)), so rejection sampling with acceptance probability
  p_data / (M p_g) = exp(D~(x) - D~*_M) would turn the generator's distribution into the
  data's. In practice (their section 3.2):

  - burn-in: D~*_M is the highest logit among `burn_in` candidates, raised whenever a higher
    logit is seen later (each candidate is judged against the maximum up to and including it);
  - F(x) = D~(x) - D~*_M - log(1 - exp(D~(x) - D~*_M - epsilon)), the logit of the acceptance
    probability exp(D~ - D~*_M), with `epsilon` keeping the log finite at the maximum;
  - gamma, which shifts the overall acceptance rate: the paper sets it dynamically to the 95th
    percentile of F over a batch (also the re-implementations' default:
    uber-research/metropolis-hastings-gans `mhgan/mh.py`, `shift_percent=95.0`;
    shinseung428/DRS_Tensorflow `sample.py`, "set gamma dynamically (95th percentile of F)",
    which runs its CelebA model at the 80th). Here the batch is the burn-in batch, the
    largest one a job scores, re-evaluated under the current D~*_M; the later, smaller batches
    reuse it, so their acceptance does not swing with a few dozen candidates' percentile;
  - a candidate is accepted when u <= sigmoid(F(x) - gamma), u ~ U(0, 1) drawn from a CPU
    torch.Generator seeded from the job's seed.

  The burn-in candidates are the first candidates judged (the paper keeps its burn-in apart;
  reusing it spares a job `burn_in` generator passes, and with the running maximum the rule
  is the same). Candidates come in batches: the first `burn_in` are a plain sample job's
  latents for the seed, each later batch of `DRS_BATCH` is drawn from a seed derived from the
  job's seed and the batch's number, so the same seed accepts the same latents. Drawing stops
  when `count` are accepted or after `max_candidates` more candidates than the burn-in; then the
  highest-scoring rejected candidates fill the result up (`stats["filled_up"]`).

Scores (`realness_scores`) are the discriminator's logits:

- U-Net GAN's D^U (Schonfeld, Schiele, Khoreva, CVPR 2020): the encoder's global logit, plus
  `pixel_weight` times the mean of the decoder's per-pixel logit map. A class-conditional D
  judges each image under the class it was drawn with. With the hinge loss (the basic U-Net
  GAN) the logit is a margin score, trained towards +-1 rather than to log(p_data / p_g).
- Progressive GAN's critic (Karras et al., ICLR 2018) is a WGAN-GP critic: its score is an
  unbounded real number whose differences estimate a Wasserstein potential, not a calibrated
  log density ratio. DRS on it treats the score as if it were the logit D~(x): acceptance
  exp(score - max score) as a density ratio, which it is not. It keeps the ordering (a higher
  score is accepted more often) but the acceptance rates have no probabilistic meaning; their
  steepness depends on the critic's scale (the drift penalty keeps it near a few units). The
  critic's minibatch standard deviation layer makes an image's score depend on its group of
  `mbstd_group_size` batch-mates; here every image is judged in a group with the same
  `group_mates`: mbstd_group_size - 1 fixed samples of the generator (seed
  `models.pggan.hooks.MATES_SEED`, no truncation), as the critic judged groups of generated images
  in training. An image's score therefore depends on it alone.

Scores are batch-invariant (every batch padded as `models.batch_invariance` says) and
deterministic; the networks run in eval mode under no_grad, in whatever autocast context the
caller set (the worker's fast path), and are left in the mode they were in. Images are the
generator's, as `models.sampling.generate` gives them (clamped to [-1, 1]): what the user gets
is what the discriminator judged.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from core.params import (
    DEFAULT_BURN_IN,
    DEFAULT_KEEP,
    DEFAULT_MAX_CANDIDATES,
    DEFAULT_PERCENTILE,
    MAX_FILTER_CANDIDATES,
    MIN_BURN_IN,
)
from models.family import families_with, hooks_of, overrides, supports
from models.realness import check_class_label
from models.registry import architecture_of
from models.sampling import generate, sample_inputs
from models.stopping import ShouldStop, check_stop

DRS_EPSILON = 1e-6  # uber-research/metropolis-hastings-gans' value; the paper gives none
DRS_BATCH = 64  # candidates per batch after the burn-in
MAX_CANDIDATES = MAX_FILTER_CANDIDATES  # top: most candidates; DRS: most burn-in, most after
SCORE_BATCH = 64  # images per discriminator pass, and per generator pass of the candidates
_BATCH_STREAM, _UNIFORM_STREAM = 1, 2  # DRS's derived random streams


@dataclass(frozen=True)
class Filtered:
    """What a filter kept, in the order the candidates were drawn.

    `z` (count, Z) float32 and `labels` (count,) int64 or None: the kept inputs; `images`
    (count, C, S, S) float32 in [-1, 1]: their images; `scores` (count,) float32: their
    logits; all on the CPU. `stats`: numbers for the job's result (candidates drawn,
    accepted, and for DRS burn_in, filled_up, max_logit, gamma).
    """

    z: torch.Tensor
    labels: torch.Tensor | None
    images: torch.Tensor
    scores: torch.Tensor
    stats: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Scores


@contextmanager
def _evaluating(module: nn.Module) -> Iterator[None]:
    """The module in eval mode (spectral norm without power iteration), its mode restored."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def _check_images(d: nn.Module, images: torch.Tensor) -> None:
    channels, size = hooks_of(d).image_shape(d)
    expected = (channels, size, size)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise ValueError(
            f"images must be (N, {', '.join(map(str, expected))}), got {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise ValueError(f"images must be a float tensor in [-1, 1], not {images.dtype}")


def _check_weight(pixel_weight: float) -> None:
    if not isinstance(pixel_weight, numbers.Real) or not math.isfinite(pixel_weight):
        raise ValueError(f"pixel_weight must be a finite number, not {pixel_weight!r}")
    if pixel_weight < 0:
        raise ValueError(f"pixel_weight must be 0 or more, not {pixel_weight}")


def _check_labels(d: nn.Module, labels: torch.Tensor | None, count: int) -> None:
    num_classes = getattr(d.config, "num_classes", 0)
    if not num_classes:
        if labels is not None:
            raise ValueError("this discriminator is unconditional: labels must be None")
        return
    if labels is None or labels.shape != (count,):
        raise ValueError(
            f"this discriminator is class-conditional ({num_classes} classes): "
            f"pass one class label per image, a ({count},) tensor"
        )
    for label in labels.tolist():
        check_class_label(d, int(label))


def group_mates(generator: nn.Module, discriminator: nn.Module) -> torch.Tensor | None:
    """The fixed batch-mates (G - 1, C, S, S) a discriminator whose score of an image depends on
    its batch-mates (Progressive GAN's critic with a minibatch standard deviation layer) judges
    every image with, drawn by `generator` (its family's hook); None for discriminators that
    judge each image alone."""
    return hooks_of(discriminator, "discriminator").group_mates(generator, discriminator)


@torch.no_grad()
def realness_scores(
    discriminator: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    pixel_weight: float = 0.0,
    group_mates: torch.Tensor | None = None,
) -> torch.Tensor:
    """The discriminator's logits (N,) float32 on the CPU for `images` (N, C, S, S) in [-1, 1].

    U-Net GAN D: the global logit plus `pixel_weight` times the mean per-pixel logit, each
    image judged under its label in `labels` (N,) (None for unconditional models). Progressive
    GAN critic: its score; with a minibatch standard deviation layer, pass `group_mates`
    (`group_mates(generator, critic)`), the fixed images every image is judged in a group with
    (module doc). Other families: their `scorer` hook. An image's score does not depend on the
    other images passed.
    """
    d = discriminator
    if not supports(d, "scorer", "discriminator"):
        raise ValueError(
            f"realness scores need a {families_with('scorer')} discriminator, "
            f"not {type(d).__name__}"
        )
    _check_images(d, images)
    _check_weight(pixel_weight)
    _check_labels(d, labels, images.shape[0])
    hooks = hooks_of(d)
    if group_mates is not None and overrides(hooks, "group_mates"):
        _check_images(d, group_mates)
    with _evaluating(d):
        score = hooks.scorer(d, pixel_weight=float(pixel_weight), group_mates=group_mates)
        chunks = []
        for start in range(0, images.shape[0], SCORE_BATCH):
            part = images[start : start + SCORE_BATCH]  # (b, C, S, S)
            part_labels = None if labels is None else labels[start : start + SCORE_BATCH]
            chunks.append(score(part, part_labels))
    return torch.cat(chunks) if chunks else torch.empty(0)  # (N,)


# ---------------------------------------------------------------------------------------------
# Filters


def _check_pair(generator: nn.Module, discriminator: nn.Module) -> None:
    """The generator and discriminator of one sampling model."""
    if not supports(generator, "scorer", "generator"):
        raise ValueError(
            f"discriminator-guided sampling needs a {families_with('scorer')} generator, "
            f"not {type(generator).__name__}"
        )
    g_arch = architecture_of(generator)
    try:
        d_arch = architecture_of(discriminator)
    except TypeError:
        d_arch = None
    if d_arch is None or d_arch.family != g_arch.family or d_arch.role != "discriminator":
        raise ValueError(
            f"{type(discriminator).__name__} is not the discriminator of a "
            f"{type(generator).__name__}"
        )
    g_cfg, d_cfg = generator.config, discriminator.config
    if g_cfg.channels != d_cfg.channels or g_cfg.num_classes != getattr(d_cfg, "num_classes", 0):
        raise ValueError(
            "the generator and discriminator disagree on channels or classes: "
            f"{g_cfg.channels}/{g_cfg.num_classes} and {d_cfg.channels}/"
            f"{getattr(d_cfg, 'num_classes', 0)}"
        )


def _check_count(name: str, value: int, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{name} must be an integer of at least {least}, not {value!r}")


def _check_fraction(name: str, value: float, low: float, high: float, *, open_low: bool) -> None:
    ok = isinstance(value, numbers.Real) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and value <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must lie in {bracket}{low}, {high}], not {value!r}")


@dataclass
class _Batch:
    """Candidates of one draw: inputs, images, scores, and the draw index of each."""

    z: torch.Tensor  # (B, Z)
    labels: torch.Tensor | None  # (B,)
    images: torch.Tensor  # (B, C, S, S)
    scores: torch.Tensor  # (B,) float32
    index: torch.Tensor  # (B,) int64

    def rows(self, keep: torch.Tensor) -> _Batch:
        """The candidates at positions `keep` (k,)."""
        labels = None if self.labels is None else self.labels[keep]
        return _Batch(self.z[keep], labels, self.images[keep], self.scores[keep], self.index[keep])

    @staticmethod
    def joined(batches: list[_Batch]) -> _Batch:
        labels = None if batches[0].labels is None else torch.cat([b.labels for b in batches])
        return _Batch(
            torch.cat([b.z for b in batches]),
            labels,
            torch.cat([b.images for b in batches]),
            torch.cat([b.scores for b in batches]),
            torch.cat([b.index for b in batches]),
        )

    def best(self, count: int) -> _Batch:
        """The `count` highest-scoring candidates (earlier draws first among equal scores)."""
        order = torch.sort(self.scores, descending=True, stable=True).indices[:count]
        return self.rows(order)

    def best_per_class(self, count: int) -> _Batch:
        """The `count` highest-scoring candidates, each class keeping its share of the
        candidates (largest remainders): a class-conditional D's logit carries a per-class
        offset (its class projection), so one ranking across classes would skew the class mix
        towards the classes it scores high."""
        if self.labels is None:
            return self.best(count)
        classes, sizes = torch.unique(self.labels, return_counts=True)  # (K',), (K',)
        quotas = _apportion(sizes.tolist(), count)
        chosen = [
            self.rows(torch.nonzero(self.labels == c)[:, 0]).best(quota)
            for c, quota in zip(classes.tolist(), quotas, strict=True)
            if quota
        ]
        return _Batch.joined(chosen)

    def in_draw_order(self) -> _Batch:
        return self.rows(torch.argsort(self.index))

    def result(self, stats: dict[str, Any]) -> Filtered:
        return Filtered(self.z, self.labels, self.images, self.scores, stats)


class _Judge:
    """Generates candidates' images and scores them, on the same fast path as plain samples,
    `SCORE_BATCH` at a time, asking `should_stop` before each (`models.stopping.Stopped`)."""

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        pixel_weight: float,
        should_stop: ShouldStop | None = None,
    ) -> None:
        _check_pair(generator, discriminator)
        _check_weight(pixel_weight)
        self.generator = generator
        self.discriminator = discriminator
        self.should_stop = should_stop
        check_stop(should_stop, "discriminator-guided sampling")
        mates = group_mates(generator, discriminator)
        if mates is not None:
            _check_images(discriminator, mates)
        with _evaluating(discriminator):  # a weight or mates its family cannot use: refused now
            self.score = hooks_of(discriminator).scorer(
                discriminator, pixel_weight=float(pixel_weight), group_mates=mates
            )
        self.drawn = 0

    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None) -> _Batch:
        images, scores = [], []
        for start in range(0, z.shape[0], SCORE_BATCH):  # images and scores are batch-invariant
            check_stop(self.should_stop, "discriminator-guided sampling")
            rows = slice(start, start + SCORE_BATCH)
            part_labels = None if labels is None else labels[rows]  # (b,)
            part = generate(self.generator, z[rows], part_labels)  # (b, C, S, S) in [-1, 1]
            images.append(part)
            _check_images(self.discriminator, part)
            _check_labels(self.discriminator, part_labels, part.shape[0])
            with _evaluating(self.discriminator):
                scores.append(self.score(part, part_labels))  # (b,), as `realness_scores` gives
        images_all, scores_all = torch.cat(images), torch.cat(scores)  # (B, C, S, S), (B,)
        index = torch.arange(self.drawn, self.drawn + z.shape[0])  # (B,)
        self.drawn += z.shape[0]
        return _Batch(z, labels, images_all, scores_all, index)


@torch.no_grad()
def top_filter(
    generator: nn.Module,
    discriminator: nn.Module,
    *,
    count: int,
    seed: int,
    class_label: int | None = None,
    truncation: float | None = None,
    keep: float = DEFAULT_KEEP,
    pixel_weight: float = 0.0,
    should_stop: ShouldStop | None = None,
) -> Filtered:
    """Keep the most real: the `count` highest-scoring of ceil(count / keep) candidates, the
    latents of a plain sample job with this seed and that many images (module doc); with
    random classes, each class keeps its share of the candidates (`_Batch.best_per_class`).
    `should_stop` is asked before every `SCORE_BATCH` candidates: True raises
    `models.stopping.Stopped`."""
    _check_count("count", count, 1)
    _check_fraction("keep", keep, 0.0, 1.0, open_low=True)
    judge = _Judge(generator, discriminator, pixel_weight, should_stop)
    candidates = math.ceil(count / keep - 1e-9)  # count / keep up to rounding, at least count
    if candidates > MAX_CANDIDATES:
        raise ValueError(
            f"keep {keep} would draw {candidates} candidates for {count} images; "
            f"at most {MAX_CANDIDATES} are drawn"
        )
    z, labels = sample_inputs(
        generator.config, candidates, seed, class_label=class_label, truncation=truncation
    )
    drawn = judge(z, labels)
    kept = drawn.best_per_class(count).in_draw_order()
    return kept.result({"candidates": candidates, "accepted": count})


def _apportion(sizes: list[int], count: int) -> list[int]:
    """`count` split over groups in proportion to their `sizes` (Hamilton's largest remainders,
    earlier groups first among equal remainders); each share at most its group's size."""
    total = sum(sizes)
    exact = [size * count / total for size in sizes]
    shares = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda k: shares[k] - exact[k])
    for k in by_remainder[: count - sum(shares)]:
        shares[k] += 1
    return shares


def _stream_seed(seed: int, *key: int) -> int:
    """A 64-bit seed of an independent random stream derived from the job's seed and `key`."""
    words = np.random.SeedSequence([seed, *key]).generate_state(2, dtype=np.uint32)
    return int(words[0]) | int(words[1]) << 32


def _f(logits: torch.Tensor, max_logit: torch.Tensor, epsilon: float) -> torch.Tensor:
    """F(x) = D~ - D~*_M - log(1 - exp(D~ - D~*_M - eps)) in float64 (any broadcast shape)."""
    delta = logits - max_logit  # <= 0
    return delta - torch.log(-torch.expm1(delta - epsilon))


class _Rejection:
    """DRS's state: the burn-in logits, the running maximum D~*_M, the uniform draws."""

    def __init__(
        self, burn_in_logits: torch.Tensor, percentile: float, epsilon: float, seed: int
    ) -> None:
        self.burn_in = burn_in_logits.double()  # (N_b,)
        self.max_logit = self.burn_in.max()
        self.quantile = percentile / 100
        self.epsilon = epsilon
        self.uniforms = torch.Generator().manual_seed(_stream_seed(seed, _UNIFORM_STREAM))
        self.gamma = float(self._gammas(self.max_logit[None])[0])

    def _gammas(self, maxima: torch.Tensor) -> torch.Tensor:
        """gamma under each running maximum (B,): the percentile of F over the burn-in."""
        unique, where = torch.unique(maxima, return_inverse=True)  # few distinct maxima
        f = _f(self.burn_in[None, :], unique[:, None], self.epsilon)  # (U, N_b)
        return torch.quantile(f, self.quantile, dim=1)[where]  # (B,)

    def accept(self, logits: torch.Tensor) -> torch.Tensor:
        """Which of the next candidates, with these logits (B,), are accepted: (B,) bool."""
        d = logits.double()  # (B,)
        maxima = torch.cummax(torch.cat([self.max_logit[None], d]), dim=0).values[1:]  # (B,)
        self.max_logit = maxima[-1]
        gammas = self._gammas(maxima)  # (B,)
        self.gamma = float(gammas[-1])
        p = torch.sigmoid(_f(d, maxima, self.epsilon) - gammas)  # (B,)
        u = torch.rand(d.shape[0], generator=self.uniforms, dtype=torch.float64)  # (B,)
        return u <= p


@torch.no_grad()
def drs_filter(
    generator: nn.Module,
    discriminator: nn.Module,
    *,
    count: int,
    seed: int,
    class_label: int | None = None,
    truncation: float | None = None,
    burn_in: int = DEFAULT_BURN_IN,
    percentile: float = DEFAULT_PERCENTILE,  # Azadi et al. 2019: gamma at the 95th percentile
    epsilon: float = DRS_EPSILON,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,  # drawn after the burn-in, at most
    pixel_weight: float = 0.0,
    should_stop: ShouldStop | None = None,
) -> Filtered:
    """Discriminator Rejection Sampling (Azadi et al., ICLR 2019): `count` accepted candidates,
    filled up with the highest-scoring rejected ones when `max_candidates` candidates after
    the `burn_in` batch were not enough (module doc). `should_stop` is asked before every
    `SCORE_BATCH` candidates: True raises `models.stopping.Stopped`."""
    _check_count("count", count, 1)
    _check_count("burn_in", burn_in, MIN_BURN_IN)
    _check_count("max_candidates", max_candidates, 0)
    if burn_in > MAX_CANDIDATES or max_candidates > MAX_CANDIDATES:
        raise ValueError(f"burn_in and max_candidates must be at most {MAX_CANDIDATES} each")
    _check_fraction("percentile", percentile, 0.0, 100.0, open_low=False)
    if not isinstance(epsilon, numbers.Real) or not 0 < epsilon < math.inf:
        raise ValueError(f"epsilon must be a small positive number, not {epsilon!r}")
    judge = _Judge(generator, discriminator, pixel_weight, should_stop)
    config = generator.config
    draw = {"class_label": class_label, "truncation": truncation}
    batch = judge(*sample_inputs(config, burn_in, seed, **draw))  # the burn-in batch
    rejection = _Rejection(batch.scores, percentile, epsilon, seed)
    accepted: list[_Batch] = []
    rejected: _Batch | None = None
    have, number = 0, 0
    while True:
        take = rejection.accept(batch.scores)  # (B,) bool
        positions = torch.nonzero(take).squeeze(1)[: count - have]  # (k,)
        accepted.append(batch.rows(positions))
        have += positions.numel()
        if have == count:
            break
        pool = batch.rows(torch.nonzero(~take).squeeze(1))  # this batch's rejected
        pool = pool if rejected is None else _Batch.joined([rejected, pool])
        rejected = pool.best(count - have)  # the best rejected so far, enough to fill up
        left = burn_in + max_candidates - judge.drawn
        if left <= 0:
            break
        number += 1
        z, labels = sample_inputs(
            config, DRS_BATCH, _stream_seed(seed, _BATCH_STREAM, number), **draw
        )
        batch = judge(z[:left], None if labels is None else labels[:left])
    filled_up = have < count
    if filled_up:
        accepted.append(rejected.best(count - have))
    kept = _Batch.joined(accepted).in_draw_order()
    stats = {
        "candidates": judge.drawn,
        "accepted": have,
        "burn_in": burn_in,
        "filled_up": filled_up,
        "max_logit": float(rejection.max_logit),
        "gamma": rejection.gamma,
    }
    return kept.result(stats)
