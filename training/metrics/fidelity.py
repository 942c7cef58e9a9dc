"""FID, KID and Inception Score through torchmetrics, on the local FID Inception network.

- FID, Fréchet Inception Distance (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update
  Rule Converge to a Local Nash Equilibrium"): Fréchet distance between Gaussians fitted to the
  2048-d pool3 features of real and generated images; torchmetrics' `FrechetInceptionDistance`.
- KID, Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs"): unbiased MMD²
  with the cubic polynomial kernel on the same features, mean and std over random subsets;
  torchmetrics' `KernelInceptionDistance`.
- IS, Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs"):
  exp(E KL(p(y|x) || p(y))) of the generated images' class posteriors, mean and std over splits;
  torchmetrics' `InceptionScore`, fed torch-fidelity's default "logits_unbiased" (fc without bias).

The network is `training.metrics.inception.FIDInception` (Szegedy et al. Inception-v3 in its FID
variant) with weights from a local file (`GANSERVE_INCEPTION_WEIGHTS`); nothing is downloaded.
Each image goes through the network once; its features and logits are then handed to the
torchmetrics metrics through a pass-through `feature` module, so the statistics (means,
covariances, Fréchet distance, MMD, KL) are all torchmetrics' own.

One exactness-preserving shortcut: when both sets together hold fewer images than the 2048 feature
dimensions, FID is computed on the features expressed in an orthonormal basis of a subspace that
contains every centred feature vector and the difference of the means. Means' distance, traces and
the eigenvalues of Σ_r Σ_f are unchanged by that isometry, so the value is the FID of the 2048-d
features, but torchmetrics' eigendecomposition runs on an (n_r + n_f + 1)-square matrix instead of
a 2048-square one (a minute of CPU on small machines). KID always sees the 2048-d features (its
kernel's default scale depends on the dimension).

Result (`compute_fidelity`): a dict of floats, keys per requested metric:
"fid" -> "fid"; "kid" -> "kid_mean", "kid_std"; "is" -> "is_mean", "is_std". When the Inception
weights are unavailable it instead maps each requested metric name ("fid", "kid", "is") to the
string "unavailable: <how to provide the weights>"; `is_unavailable` tells the two apart.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from training.metrics.inception import FIDInception, InceptionUnavailable, load_inception

METRICS = ("fid", "kid", "is")
"""The metric names `compute_fidelity` understands."""

UNAVAILABLE_PREFIX = "unavailable: "


def is_unavailable(value: float | str) -> bool:
    """Whether a result value is an "unavailable: <message>" string rather than a number."""
    return isinstance(value, str) and value.startswith(UNAVAILABLE_PREFIX)


class PrecomputedFeatures(nn.Module):
    """Pass-through `feature` module: torchmetrics is given features already extracted.

    `num_features` spares torchmetrics' FID its probe with a dummy image.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def _chunks(batches: Iterable[Tensor], batch_size: int) -> Iterator[Tensor]:
    for batch in batches:
        if not isinstance(batch, Tensor) or batch.dim() != 4:
            shape = tuple(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__
            raise ValueError(f"expected image batches shaped (N, C, H, W), got {shape}")
        yield from batch.split(batch_size)


def _extract(
    net: FIDInception, batches: Iterable[Tensor], batch_size: int, *, logits: bool
) -> tuple[Tensor, Tensor | None]:
    """All features (N, 2048) and, if asked, unbiased logits (N, 1008) of an image stream."""
    features, all_logits = [], []
    for chunk in _chunks(batches, batch_size):
        if logits:
            f, lg = net.features_and_logits(chunk, unbiased=True)
            all_logits.append(lg)
        else:
            f = net.features(chunk)
        features.append(f)
    if not features:
        return torch.empty(0, net.num_features), None
    return torch.cat(features), (torch.cat(all_logits) if logits else None)


def _fid_basis(real: Tensor, fake: Tensor) -> Tensor | None:
    """Orthonormal (d, k) basis containing all centred features and the means' difference.

    None when k would not be smaller than d (then the full features are used).
    """
    n_real, n_fake, dim = real.shape[0], fake.shape[0], real.shape[1]
    if n_real + n_fake + 1 >= dim:
        return None
    real64, fake64 = real.double(), fake.double()
    mu_real, mu_fake = real64.mean(0, keepdim=True), fake64.mean(0, keepdim=True)
    spanning = torch.cat([real64 - mu_real, fake64 - mu_fake, mu_real - mu_fake]).T  # (d, k)
    basis, _ = torch.linalg.qr(spanning, mode="reduced")  # orthonormal even if rank-deficient
    return basis


def _fid(real: Tensor, fake: Tensor, device: torch.device) -> float:
    basis = _fid_basis(real, fake)
    if basis is not None:
        real, fake = real.double() @ basis, fake.double() @ basis
    metric = FrechetInceptionDistance(feature=PrecomputedFeatures(real.shape[1])).to(device)
    metric.update(real.to(device), real=True)
    metric.update(fake.to(device), real=False)
    return float(metric.compute())


def _kid(
    real: Tensor, fake: Tensor, subset_size: int, subsets: int, device: torch.device
) -> tuple[float, float]:
    size = min(subset_size, real.shape[0], fake.shape[0])
    with warnings.catch_warnings():  # "KID saves all features in a buffer": we know
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(
            feature=PrecomputedFeatures(real.shape[1]), subsets=subsets, subset_size=size
        ).to(device)
    metric.update(real.to(device), real=True)
    metric.update(fake.to(device), real=False)
    mean, std = metric.compute()
    return float(mean), float(std)


def _inception_score(logits: Tensor, splits: int, device: torch.device) -> tuple[float, float]:
    splits = max(1, min(splits, logits.shape[0] // 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        metric = InceptionScore(feature=PrecomputedFeatures(logits.shape[1]), splits=splits)
    metric = metric.to(device)
    metric.update(logits.to(device))
    with warnings.catch_warnings():  # std() of a single split: reported as 0 below
        warnings.simplefilter("ignore", UserWarning)
        mean, std = metric.compute()
    return float(mean), (float(std) if splits > 1 else 0.0)


def compute_fidelity(
    real: Iterable[Tensor],
    fake: Iterable[Tensor],
    *,
    weights: Path | str | FIDInception | None,
    metrics: Sequence[str] = METRICS,
    device: torch.device | str = "cpu",
    kid_subset_size: int = 1000,
    kid_subsets: int = 100,
    is_splits: int = 10,
    batch_size: int = 50,
    seed: int | None = 0,
) -> dict[str, float | str]:
    """FID and KID between `real` and `fake`, IS of `fake`, as a flat dict (see Returns).

    Args:
        real, fake: iterables of uint8 image batches (N, C, H, W) in [0, 255], C = 1 or 3; any
            size (resized to 299x299). `real` is not read when only "is" is asked for.
        weights: path of the Inception weights (`load_inception`), an already loaded
            `FIDInception`, or None when none are configured (`GANSERVE_INCEPTION_WEIGHTS`).
        metrics: any of "fid", "kid", "is".
        kid_subset_size: KID subset size, clamped to the sizes of both sets.
        kid_subsets, is_splits: torchmetrics' `subsets` and `splits` (torch-fidelity's defaults);
            IS uses at most half as many splits as there are fake images.
        batch_size: images per forward pass through the network.
        seed: seeds the random subsets of KID and the permutation of IS (None: global RNG).

    Returns:
        {"fid": float, "kid_mean": float, "kid_std": float, "is_mean": float, "is_std": float},
        restricted to the requested metrics; or, when the weights are missing or invalid,
        {name: "unavailable: <message>"} for each requested metric name.

    Raises:
        ValueError: unknown metric names, badly shaped batches, or too few images (FID and KID
            need two of each set, IS one fake image).
    """
    asked = list(dict.fromkeys(metrics))
    unknown = [m for m in asked if m not in METRICS]
    if unknown or not asked:
        raise ValueError(f"unknown or no metrics {unknown or asked}; choose from {METRICS}")
    device = torch.device(device)
    try:
        if isinstance(weights, FIDInception):
            net = weights.to(device).eval()
        else:
            net = load_inception(weights, device)
    except InceptionUnavailable as err:
        return {name: f"{UNAVAILABLE_PREFIX}{err}" for name in asked}

    needs_real = "fid" in asked or "kid" in asked
    fake_features, fake_logits = _extract(net, fake, batch_size, logits="is" in asked)
    real_features = (
        _extract(net, real, batch_size, logits=False)[0] if needs_real else torch.empty(0)
    )
    minimum = 2 if needs_real else 1
    if fake_features.shape[0] < minimum or (needs_real and real_features.shape[0] < 2):
        raise ValueError(
            f"too few images for {', '.join(asked)}: {real_features.shape[0]} real, "
            f"{fake_features.shape[0]} fake (FID and KID need at least 2 of each, IS 1 fake)"
        )

    result: dict[str, float | str] = {}
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.default_generator.manual_seed(seed)
        if "fid" in asked:
            result["fid"] = _fid(real_features, fake_features, device)
        if "kid" in asked:
            result["kid_mean"], result["kid_std"] = _kid(
                real_features, fake_features, kid_subset_size, kid_subsets, device
            )
        if "is" in asked:
            assert fake_logits is not None
            result["is_mean"], result["is_std"] = _inception_score(fake_logits, is_splits, device)
    return result
