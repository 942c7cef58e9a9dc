"""Network definitions of the three GAN families and the checkpoint format.

Public API:
- `create(name, **config)` builds a registered network (paper defaults, overridable),
- `list_models()` names them,
- `save(model, folder, ...)` / `load(folder, device=...)` write and read the checkpoint format
  (`model.safetensors` + `config.json`; never pickle).

Families: pix2pix (Isola et al., CVPR 2017), U-Net GAN (Schonfeld et al., CVPR 2020) and
Progressive GAN (Karras et al., ICLR 2018).
"""

from models import pggan, pix2pix, unetgan  # noqa: F401  (registers the architectures)
from models.checkpoint import CheckpointError, ModelCard, load, read_card, save
from models.registry import architecture_of, create, get_architecture, list_models

__all__ = [
    "CheckpointError",
    "ModelCard",
    "architecture_of",
    "create",
    "get_architecture",
    "list_models",
    "load",
    "read_card",
    "save",
]
