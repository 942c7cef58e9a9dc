"""The one table of model families: every other place derives what it needs from it.

- pix2pix: Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial
  Networks", CVPR 2017 (U-Net generator, 70x70 PatchGAN, L1 + cGAN; 256 px at batch 1).
- unetgan: Schonfeld, Schiele, Khoreva, "A U-Net Based Discriminator for Generative Adversarial
  Networks", CVPR 2020 (BigGAN generator, U-Net discriminator, CutMix consistency; 128 px at
  batch 50).
- pggan: Karras, Aila, Laine, Lehtinen, "Progressive Growing of GANs for Improved Quality,
  Stability, and Variation", ICLR 2018 (growing from 4x4, WGAN-GP; up to 1024 px at batch 16).

A family's row says its name in prose (`title`: error messages name families by it), what it
does (`task`), what it trains on (`dataset_kinds`), what its models can do beyond that (the
capability flags below), its hyperparameters (`config`, in `core.training_config`), the image
sizes its networks are built for (`image_sizes`), the run options its own schedule sets instead
(`schedule_sets`), which of its hyperparameters rebuild its generator (`generator_fields`: run
config field -> generator config field, what a fine-tune run takes from its model,
`core.fine_tune`; empty for a family whose runs cannot start from a model), the papers' image
size and batch (`paper_run`: the training CLI's defaults), the defaults of a training run
submitted over the API (`service_defaults`, small enough for a CPU) and its demo model (`demo`:
the `training.demo` dataset and the run that `ganserve up` starts on it), and where the rest of
the family lives: its package in `models` (`models_package`: networks, test-time computation,
the `hooks` module of `models.family`) and its training module (`training_module`: a
`training.family.GANFamily`). Adding a family is that package, this row and that module
(docs/design/families.md); a family kept outside ganserve adds its row through
`GANSERVE_FAMILY_MODULES`.

The capability flags (false unless a row says otherwise; the gateway, the workers and the web page
read them, never a family's name):

- `inspectable`: its discriminator draws a realness map (`POST /v1/inspections`; PGGAN's WGAN
  critic scores whole images only).
- `paired_discriminator`: its discriminator judges an (input, output) pair, so inspecting an
  image needs the input it was translated from (pix2pix's conditional PatchGAN).
- `filterable`: its discriminator can rank and filter generated samples (`filter` of
  `POST /v1/samples`: discriminator rejection sampling, Azadi et al., ICLR 2019).
- `projectable`: an image can be projected into its latent space (`POST /v1/projections`).
- `exportable`: its generator exports to ONNX (`POST /v1/models/{id}/exports`, `onnx`).
- `conditional`: its models may be class-conditional (take class labels; PGGAN here is
  unconditional). Whether one model is, is its `num_classes`.

Torch-free.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, get_args

from core.datasets import DatasetKind
from core.training_config import PGGANConfig, Pix2PixConfig, UNetGANConfig

POWERS_OF_TWO = tuple(2**k for k in range(3, 11))  # 8 .. 1024

Task = Literal["translate", "sample"]
# The capability flags of a family (fields of `Family`, see the module docstring).
Capability = Literal[
    "inspectable", "paired_discriminator", "filterable", "projectable", "exportable", "conditional"
]
CAPABILITIES: tuple[Capability, ...] = get_args(Capability)


@dataclass(frozen=True)
class Demo:
    """A demo model: the `training.demo` dataset to build and the run's config on it."""

    dataset: str
    config: dict[str, Any]


@dataclass(frozen=True)
class Family:
    """One model family (see the module docstring for each field)."""

    name: str
    title: str
    task: Task
    dataset_kinds: tuple[DatasetKind, ...]
    config: type
    image_sizes: tuple[int, ...]
    paper_run: dict[str, Any]
    service_defaults: dict[str, Any]
    demo: Demo | None  # None: no demo model
    schedule_sets: tuple[str, ...] = ()
    generator_fields: tuple[tuple[str, str], ...] = ()
    inspectable: bool = False
    paired_discriminator: bool = False
    filterable: bool = False
    projectable: bool = False
    exportable: bool = False
    conditional: bool = False
    models_package: str = ""  # its package in `models` (unset: models.<name>)
    training_module: str = ""  # its `GANFamily` module (unset: training.families.<name>)

    def __post_init__(self) -> None:
        if not self.models_package:
            object.__setattr__(self, "models_package", f"models.{self.name}")
        if not self.training_module:
            object.__setattr__(self, "training_module", f"training.families.{self.name}")


FAMILY_TABLE: tuple[Family, ...] = (
    Family(
        name="pix2pix",
        title="pix2pix",
        task="translate",
        dataset_kinds=(DatasetKind.paired,),
        inspectable=True,
        paired_discriminator=True,
        filterable=False,
        projectable=False,
        exportable=True,
        conditional=False,
        config=Pix2PixConfig,
        image_sizes=POWERS_OF_TWO,  # the U-Net encodes down to 1x1
        generator_fields=(("width", "base_width"), ("norm", "norm")),
        paper_run={"image_size": 256, "batch_size": 1},
        service_defaults={"image_size": 64, "batch_size": 4, "steps": 500},
        # Label map -> photo (a Cityscapes-like task from bundled photos). Instance norm: a step
        # normalises each image by its own statistics, exactly as a translation job does at
        # test time. Usable after its first checkpoint (about 30 s), the target after ~4 min.
        demo=Demo(
            "labels2photo",
            {
                "image_size": 64,
                "batch_size": 4,
                "width": 32,
                "norm": "instance",
                "steps": 20000,
                "checkpoint_every": 100,
            },
        ),
    ),
    Family(
        name="unetgan",
        title="U-Net GAN",
        task="sample",
        dataset_kinds=(DatasetKind.images, DatasetKind.labeled),
        inspectable=True,
        paired_discriminator=False,
        filterable=True,
        projectable=True,
        exportable=True,
        conditional=True,
        config=UNetGANConfig,
        image_sizes=(32, 64, 128, 256),  # BigGAN's width tables (models.unetgan)
        generator_fields=(
            ("latent_dim", "latent_dim"),
            ("width", "width"),
            ("shared_init", "shared_init"),
        ),
        paper_run={"image_size": 128, "batch_size": 50},
        service_defaults={
            "image_size": 32,
            "batch_size": 16,
            "steps": 500,
            "width": 32,
            "latent_dim": 64,
            "warmup_steps": 100,
            "ema_start": 0,
            "ema_decay": 0.99,
        },
        # Class-conditional digits. G's class embedding starts N(0, 1) (`shared_init`), so the
        # class is as loud as z in every conditional batch norm from the first step (with
        # BigGAN's orthogonal init, 800 steps left samples at chance); no mirroring (a mirrored
        # 3 is no 3); BigGAN's two time-scale rates (D 2x G).
        demo=Demo(
            "digits",
            {
                "image_size": 32,
                "batch_size": 16,
                "width": 8,
                "latent_dim": 32,
                "shared_init": "normal",
                "g_lr": 0.0002,
                "d_lr": 0.0004,
                "mirror": False,
                "steps": 8000,
                "warmup_steps": 500,
                "ema_start": 200,
                "ema_decay": 0.995,
                "checkpoint_every": 100,
            },
        ),
    ),
    Family(
        name="pggan",
        title="Progressive GAN",
        task="sample",
        dataset_kinds=(DatasetKind.images, DatasetKind.labeled),
        inspectable=False,
        paired_discriminator=False,
        filterable=True,
        projectable=True,
        exportable=True,
        conditional=False,  # models.pggan is unconditional (num_classes 0)
        config=PGGANConfig,
        image_sizes=POWERS_OF_TWO,  # grown from 4x4 by doubling
        # the growth schedule sets the run's length and batch sizes (`phase_images`, `batch_sizes`)
        schedule_sets=("steps", "batch_size"),
        paper_run={"image_size": 1024},
        service_defaults={
            "image_size": 32,
            "latent_dim": 128,
            "fmap_base": 1024,
            "fmap_max": 128,
            "phase_images": 2000,
            "batch_sizes": "4:32,8:32,16:32,32:16",
        },
        demo=Demo(
            "faces",
            {
                "image_size": 32,
                "phase_images": 4000,
                "fmap_base": 512,
                "fmap_max": 64,
                "latent_dim": 64,
                "batch_sizes": "4:16,8:16,16:16,32:16",
                "ema_decay": 0.99,
                "mirror": True,
                "checkpoint_every": 100,
            },
        ),
    ),
)

# Read from the environment when this module is first imported (before any `Settings`): the
# table is a constant of each process. Documented as the setting `family_modules`.
FAMILY_MODULES_ENV = "GANSERVE_FAMILY_MODULES"


def _added_rows() -> tuple[Family, ...]:
    """The rows of the modules `GANSERVE_FAMILY_MODULES` names (comma-separated import paths,
    each module holding one torch-free `FAMILY` row): families kept outside this package."""
    rows = []
    for path in filter(
        None, (p.strip() for p in os.environ.get(FAMILY_MODULES_ENV, "").split(","))
    ):
        try:
            row = importlib.import_module(path).FAMILY
        except (ImportError, AttributeError) as error:
            raise RuntimeError(
                f"{FAMILY_MODULES_ENV} names {path!r}, which is no importable module with a "
                f"FAMILY row: {error}"
            ) from error
        if not isinstance(row, Family) or row.name in {f.name for f in FAMILY_TABLE + tuple(rows)}:
            raise RuntimeError(f"{path}.FAMILY must be a Family with a new name, not {row!r}")
        rows.append(row)
    return tuple(rows)


FAMILY_TABLE += _added_rows()
FAMILIES: dict[str, Family] = {family.name: family for family in FAMILY_TABLE}
FamilyName = StrEnum("FamilyName", {name: name for name in FAMILIES})
FamilyName.__doc__ = "The model families a training run can train."


def titles(families: Iterable[Family]) -> str:
    """The families' titles as prose: "a", "a or b", "a, b or c" ("" for none)."""
    names = [family.title for family in families]
    return " or ".join(filter(None, [", ".join(names[:-1]), *names[-1:]]))


def capable_titles(capability: Capability) -> str:
    """The titles of the families with the capability flag, as prose ("a or b")."""
    return titles(f for f in FAMILY_TABLE if getattr(f, capability))
