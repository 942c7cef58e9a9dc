"""Settings of every ganserve process, read from `GANSERVE_*` environment variables.

Served by a cached function (`get_settings`) rather than an import-time singleton, as in the
full-stack-fastapi-template, so tests and launchers can change the environment first. This module
must stay torch-free: the gateway imports it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration shared by the gateway, the workers and the command line."""

    model_config = SettingsConfigDict(env_prefix="GANSERVE_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./var"),
        description="Storage root: models, datasets, uploads, results and training runs.",
    )

    inception_weights: Path | None = Field(
        default=None,
        description="Inception-v3 weights for FID, KID and IS (pt_inception-2015-12-05-6726825d"
        ".pth or a .safetensors conversion); without them those metrics are reported unavailable.",
    )

    @property
    def models_dir(self) -> Path:
        """Where model folders (`model.safetensors` + `config.json`) live."""
        return self.data_dir / "models"


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once from the environment."""
    return Settings()
