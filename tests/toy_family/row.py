"""The toy family's row of the family table (torch-free: the gateway reads it)."""

from dataclasses import dataclass, field

from core.datasets import DatasetKind
from core.families import Family


@dataclass
class ToyConfig:
    """The toy family's hyperparameters."""

    latent_dim: int = field(default=8, metadata={"help": "size of z"})
    width: int = field(default=8, metadata={"help": "channels of G's and D's 4x4 layer"})
    lr: float = field(default=2e-3, metadata={"help": "Adam learning rate of G and D"})


FAMILY = Family(
    name="toy",
    title="toy",
    task="sample",
    dataset_kinds=(DatasetKind.images,),
    config=ToyConfig,
    image_sizes=(8, 16),
    paper_run={"image_size": 16, "batch_size": 8},
    service_defaults={"image_size": 16, "batch_size": 8, "steps": 20},
    demo=None,
    inspectable=True,
    filterable=True,
    projectable=True,
    exportable=True,
    models_package="tests.toy_family.models",
    training_module="tests.toy_family.training",
)
