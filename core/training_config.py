"""Training-run configuration, torch-free: what a run may set, with its bounds, checked once.

`Pix2PixConfig`, `UNetGANConfig` and `PGGANConfig` are the families' hyperparameters with the
papers' defaults (Isola et al. 2017; Schonfeld et al. 2020 and its reference scripts; Karras et
al. 2018 and its reference code), `FIELD_BOUNDS` their bounds. The run options every family
shares are `core.training_runs.RunConfig`, whose `check_config` checks a job's `config` object
against both: the gateway at submission (a bad field is a 422 naming it), the worker again when
the run starts (records written before this check). Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# The reference's single-GPU preset (config.py, 'preset-v2-1gpu', fp32 caps applied):
# minibatch_dict {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4} and
# max_minibatch_per_gpu {..., 1024: 4}.
REFERENCE_BATCH_SIZES = "4:128,8:128,16:128,32:64,64:32,128:16,256:8,512:4,1024:4"
# The reference TrainingSchedule's minibatch_base: the batch size of resolutions not listed.
REFERENCE_BATCH_BASE = 16
# The reference's lod_training_kimg = lod_transition_kimg = 600 kimg.
REFERENCE_PHASE_IMAGES = 600_000

# The most steps anything in a run counts (its length, decays, warm-ups, intervals): some ten
# times the longest runs of the papers (U-Net GAN and BigGAN: a few hundred thousand).
MAX_STEPS = 10_000_000

# Bounds of the families' numeric hyperparameters by name (`core.training_runs.check_config`
# enforces them, with non-finite numbers refused): wide enough for every run the papers and
# their reference code describe, narrow enough that no request allocates networks without bound
# or trains on a meaningless number (p_mix_max: `UNetGANConfig`'s own check). Sizes stay within
# what a model card may say (`core.model_folder`); latent_dim within `core.params.MAX_LATENT_DIM`.
FIELD_BOUNDS: dict[str, dict[str, float]] = {
    "lambda_l1": {"ge": 0, "le": 10_000},
    "gan_weight": {"ge": 0, "le": 1000},
    "lr": {"gt": 0, "le": 1},
    "g_lr": {"gt": 0, "le": 1},
    "d_lr": {"gt": 0, "le": 1},
    "beta1": {"ge": 0, "lt": 1},
    "beta2": {"ge": 0, "lt": 1},
    "adam_eps": {"gt": 0, "le": 1},
    "decay_steps": {"ge": 0, "le": MAX_STEPS},
    "width": {"ge": 1, "le": 1024},
    "patch": {"ge": 1, "le": 286},
    "load_size": {"ge": 0, "le": 4096},
    "latent_dim": {"ge": 1, "le": 4096},
    "warmup_steps": {"ge": 0, "le": MAX_STEPS},
    "consistency_weight": {"ge": 0, "le": 1000},
    "ema_decay": {"ge": 0, "lt": 1},
    "ema_start": {"ge": 0, "le": MAX_STEPS},
    "fmap_base": {"ge": 1, "le": 16_384},
    "fmap_max": {"ge": 1, "le": 4096},
    "mbstd_group_size": {"ge": 0, "le": 64},
    "lambda_gp": {"ge": 0, "le": 10_000},
    "drift": {"ge": 0, "le": 1000},
    "phase_images": {"ge": 1, "le": 100_000_000},
    "batch_base": {"ge": 1, "le": 4096},
}


@dataclass(frozen=True)
class Pix2PixConfig:
    """pix2pix hyperparameters; the defaults are the paper's."""

    direction: Literal["AtoB", "BtoA"] = field(
        default="AtoB", metadata={"help": "translate A to B (AtoB) or B to A (BtoA)"}
    )
    lambda_l1: float = field(default=100.0, metadata={"help": "weight of the L1 term"})
    gan_weight: float = field(
        default=1.0,
        metadata={"help": "weight of G's cGAN term (0: the paper's L1-only ablation)"},
    )
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate of G and D"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1"})
    beta2: float = field(default=0.999, metadata={"help": "Adam beta2"})
    decay_steps: int = field(
        default=0, metadata={"help": "decay the lr linearly to 0 over the last N steps (0: off)"}
    )
    gan_mode: Literal["vanilla", "lsgan"] = field(
        default="vanilla", metadata={"help": "GAN loss: vanilla (the paper's) or lsgan"}
    )
    width: int = field(default=64, metadata={"help": "base width of G and D (the paper's 64)"})
    patch: int = field(default=70, metadata={"help": "PatchGAN receptive field: 1, 16, 70, 286"})
    norm: Literal["batch", "instance"] = field(default="batch", metadata={"help": "norm layers"})
    load_size: int = field(
        default=0, metadata={"help": "jitter: resize to this before cropping (0: size*286/256)"}
    )
    no_augment: bool = field(
        default=False, metadata={"help": "turn off the paper's random jitter and mirroring"}
    )


@dataclass(frozen=True)
class UNetGANConfig:
    """U-Net GAN hyperparameters; the defaults are the reference's training scripts'."""

    latent_dim: int = field(default=128, metadata={"help": "size of z (the reference's dim_z)"})
    width: int = field(
        default=64, metadata={"help": "base width of G and D (the reference's G_ch / D_ch)"}
    )
    shared_init: str = field(
        default="ortho",
        metadata={
            "help": "init of G's shared class embedding: ortho (BigGAN's) or normal (N(0, 1): "
            "the class as loud as z from the start, for short runs)"
        },
    )
    g_lr: float = field(default=5e-5, metadata={"help": "Adam learning rate of G"})
    d_lr: float = field(default=2e-4, metadata={"help": "Adam learning rate of D"})
    beta1: float = field(default=0.0, metadata={"help": "Adam beta1 (BigGAN's 0)"})
    beta2: float = field(default=0.999, metadata={"help": "Adam beta2"})
    adam_eps: float = field(default=1e-6, metadata={"help": "Adam epsilon (BigGAN's 1e-6)"})
    cutmix: bool = field(
        default=True,
        metadata={
            "help": "CutMix consistency regularisation with the non-saturating loss (the "
            "paper's full model); off: the basic U-Net GAN with the hinge loss"
        },
    )
    p_mix_max: float = field(
        default=0.5, metadata={"help": "probability of a CutMix batch after the warm-up"}
    )
    warmup_steps: int = field(
        default=2000,
        metadata={
            "help": "steps over which the CutMix probability rises linearly from 0 to p_mix_max "
            "(the reference ramps over 20 epochs on FFHQ and CelebA)"
        },
    )
    consistency_weight: float = field(
        default=1.0, metadata={"help": "weight of the CutMix consistency loss (lambda)"}
    )
    mix_only: bool = field(
        default=False,
        metadata={
            "help": "a CutMix step trains D on the CutMix losses only, without the plain "
            "real/fake terms (the reference's --full_batch_mixup)"
        },
    )
    ema_decay: float = field(default=0.9999, metadata={"help": "EMA decay of G's weights"})
    ema_start: int = field(
        default=21000, metadata={"help": "step from which the EMA averages (before: copies G)"}
    )
    unconditional: bool = field(
        default=False, metadata={"help": "train unconditionally even on class sub-folders"}
    )
    mirror: bool = field(default=True, metadata={"help": "random horizontal flips of the data"})

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_mix_max <= 1.0:
            raise ValueError(f"p_mix_max must lie in [0, 1], not {self.p_mix_max}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, not {self.warmup_steps}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), not {self.ema_decay}")


@dataclass(frozen=True)
class PGGANConfig:
    """Progressive GAN hyperparameters; the defaults are the paper's and its reference code's."""

    latent_dim: int = field(default=512, metadata={"help": "size of the latent vector z"})
    fmap_base: int = field(
        default=8192, metadata={"help": "feature maps: min(fmap_base / 2**level, fmap_max)"}
    )
    fmap_max: int = field(default=512, metadata={"help": "most feature maps of any layer"})
    mbstd_group_size: int = field(
        default=4, metadata={"help": "minibatch stddev group size in D (below 2: off)"}
    )
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate of G and D"})
    beta1: float = field(default=0.0, metadata={"help": "Adam beta1"})
    beta2: float = field(default=0.99, metadata={"help": "Adam beta2"})
    adam_eps: float = field(default=1e-8, metadata={"help": "Adam epsilon"})
    lambda_gp: float = field(default=10.0, metadata={"help": "weight of the gradient penalty"})
    drift: float = field(
        default=0.001, metadata={"help": "eps_drift: weight of E[D(real)^2] in D's loss"}
    )
    phase_images: int = field(
        default=REFERENCE_PHASE_IMAGES,
        metadata={"help": "real images per fade-in and per stable phase (sets the run length)"},
    )
    batch_sizes: str = field(
        default=REFERENCE_BATCH_SIZES,
        metadata={"help": "batch size per resolution, 'RES:BATCH,...' (replaces --batch-size)"},
    )
    batch_base: int = field(
        default=REFERENCE_BATCH_BASE,
        metadata={"help": "batch size of resolutions not in --batch-sizes"},
    )
    ema_decay: float = field(
        default=0.999, metadata={"help": "decay of the EMA of G's weights (0: no EMA)"}
    )
    mirror: bool = field(
        default=False, metadata={"help": "random x-flips of the real images (faces, scenes)"}
    )
