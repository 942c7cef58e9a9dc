"""The three GAN families the shared loop trains, by command-line name."""

from training.families.pggan import PGGANFamily
from training.families.pix2pix import Pix2PixFamily
from training.families.unetgan import UNetGANFamily
from training.family import GANFamily

FAMILIES: dict[str, type[GANFamily]] = {
    family.name: family for family in (Pix2PixFamily, UNetGANFamily, PGGANFamily)
}
