"""The architecture registry behind `models.create` and `models.list_models`.

In the spirit of `timm.create_model`: every network registers itself under a name together with
the dataclass that configures it (nanoGPT's "config beside the model"), so a checkpoint's
`config.json` holding that name and the config's fields is enough to rebuild the network.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

Role = Literal["generator", "discriminator"]
Task = Literal["translate", "sample"]


@dataclass(frozen=True)
class Architecture:
    """One registered network: its name, family, role and how to build it."""

    name: str
    family: str
    role: Role
    task: Task
    module: type[nn.Module]
    config_class: type

    def build_config(self, **fields: Any) -> Any:
        """Return the config dataclass from keyword fields, rejecting unknown ones clearly."""
        known = {f.name for f in dataclasses.fields(self.config_class)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(
                f"{self.name} has no config field(s) {', '.join(unknown)}; "
                f"valid fields: {', '.join(sorted(known))}"
            )
        return self.config_class(**fields)


_REGISTRY: dict[str, Architecture] = {}


def register(
    name: str, *, family: str, role: Role, task: Task, config: type
) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register an `nn.Module` whose `__init__` takes one `config` instance."""

    def decorate(module: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} is registered twice")
        _REGISTRY[name] = Architecture(name, family, role, task, module, config)
        module.architecture = name  # type: ignore[attr-defined]
        return module

    return decorate


def list_models() -> list[str]:
    """Names of every registered architecture, sorted."""
    return sorted(_REGISTRY)


def get_architecture(name: str) -> Architecture:
    """Look an architecture up by name; unknown names raise `ValueError` listing the valid ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; valid names: {', '.join(list_models())}"
        ) from None


def create(name: str, **config: Any) -> nn.Module:
    """Build the network registered as `name`; keyword arguments override the paper's defaults."""
    arch = get_architecture(name)
    return arch.module(arch.build_config(**config))


def architecture_of(model: nn.Module) -> Architecture:
    """The registered architecture a built network belongs to."""
    name = getattr(type(model), "architecture", None)
    if name is None:
        raise TypeError(f"{type(model).__name__} is not a registered ganserve architecture")
    return get_architecture(name)
