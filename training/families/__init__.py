"""The GAN families the shared loop trains: `training_family(name)`, by their name in the family
table (`core.families`, which lists them and their order)."""

from core.families import FAMILIES
from training.families.pggan import PGGANFamily
from training.families.pix2pix import Pix2PixFamily
from training.families.unetgan import UNetGANFamily
from training.family import GANFamily

_TRAINED: dict[str, type[GANFamily]] = {
    family.name: family for family in (Pix2PixFamily, UNetGANFamily, PGGANFamily)
}


def training_family(name: str) -> type[GANFamily]:
    """The training of the family `name`; ValueError naming the families for an unknown one."""
    if name not in FAMILIES or name not in _TRAINED:
        raise ValueError(f"unknown family {name!r}; choose one of {', '.join(FAMILIES)}")
    return _TRAINED[name]
