"""The GAN families the shared loop trains: `training_family(name)`, by their name in the family
table (`core.families`, which lists them and their order).

Each row names its training module (`training_module`: `training.families.<name>` for the
families of this package); the module defines the family's `training.family.GANFamily` subclass,
whose `name` is the row's. Modules are imported on first use.
"""

import importlib
from functools import cache

from core.families import FAMILIES
from training.family import GANFamily


def training_family(name: str) -> type[GANFamily]:
    """The training of the family `name`; ValueError naming the families for an unknown one."""
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; choose one of {', '.join(FAMILIES)}")
    return _from_module(name, FAMILIES[name].training_module)


@cache
def _from_module(name: str, module_name: str) -> type[GANFamily]:
    """The `GANFamily` subclass named `name` that the module `module_name` defines."""
    module = importlib.import_module(module_name)
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, GANFamily)
        and value.__module__ == module_name
        and getattr(value, "name", None) == name
    ]
    if len(found) != 1:
        raise ValueError(
            f"{module_name} must define one GANFamily subclass named {name!r}, not {len(found)}"
        )
    return found[0]
