"""Network definitions of the three GAN families and the checkpoint format.

Public API:
- `create(name, **config)` builds a registered network (paper defaults, overridable),
- `list_models()` names them,
- `save(model, folder, ...)` / `load(folder, device=...)` write and read the checkpoint format
  (`model.safetensors` + `config.json`; never pickle), `save_discriminator` /
  `load_discriminator` the trained discriminator a folder may carry,
- `atomic_write(path, write)` writes a file through a hidden temporary file and a rename, so
  readers never see half of it,
- `models.realness` turns a discriminator's output into a realness map of an image.

Families, one package each (`models/<family>/`: networks, hooks, test-time computation):
pix2pix (Isola et al., CVPR 2017), U-Net GAN (Schonfeld et al., CVPR 2020) and Progressive GAN
(Karras et al., ICLR 2018), plus any the family table's `GANSERVE_FAMILY_MODULES` rows add;
`models.family` is the protocol the capability modules call them through.
"""

from models.checkpoint import (
    CheckpointError,
    ModelCard,
    NoDiscriminator,
    atomic_write,
    check_card,
    load,
    load_discriminator,
    read_card,
    save,
    save_discriminator,
)
from models.family import load_families
from models.registry import architecture_of, create, get_architecture, list_models

load_families()  # every family's hooks and networks, as the family table names them

__all__ = [
    "CheckpointError",
    "ModelCard",
    "NoDiscriminator",
    "architecture_of",
    "atomic_write",
    "check_card",
    "create",
    "get_architecture",
    "list_models",
    "load",
    "load_discriminator",
    "read_card",
    "save",
    "save_discriminator",
]
