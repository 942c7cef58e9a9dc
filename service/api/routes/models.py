"""The models available for translation and sampling."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import SettingsDep
from service.catalog import ModelInfo, list_models, read_model
from service.errors import ApiError
from service.schemas import ModelList, error_responses

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", responses=error_responses(401))
def get_models(settings: SettingsDep) -> ModelList:
    """Every model: id, family, task, image size, channels, classes, metrics, the run behind it."""
    return ModelList(models=list_models(settings.models_dir))


@router.get("/{model_id}", responses=error_responses(401, 404))
def get_model(model_id: str, settings: SettingsDep) -> ModelInfo:
    """One model; 404 `not_found` when there is no model of that id."""
    info = read_model(settings.models_dir, model_id)
    if info is None:
        raise ApiError(404, "not_found", f"There is no model {model_id!r}.")
    return info
